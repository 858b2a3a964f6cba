// The fragment service refuses whatever is not a pool node's signed, fresh request, and its client refuses whatever
// is not the asked node's signed answer to that request; a node that is not there fails fast as NODE_UNREACHABLE.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Disk } from '../../src/disk/disk.js';
import { FragmentClient } from '../../src/disk/remote/fragment-client.js';
import { AUTH_HEADERS, encodeFrame, newNonce, requestStringToSign, sha256Hex, sign } from '../../src/disk/remote/protocol.js';
import { openRemoteDisk } from '../../src/disk/remote/remote-disk.js';
import { isShardpoolError, type ErrorCode } from '../../src/errors.js';
import { newUuid } from '../../src/format/uuid.js';
import { NonceWindow } from '../../src/serve/fragment-service.js';
import { writeTestFragment } from '../support/device-fragments.js';
import { openTempDirectoryDisk, serveDisks } from '../support/fragment-service.js';
import { makeTempDir } from '../support/temp-dir.js';

const POOL_UUID = '1a2b3c4d-0000-4000-8000-00000000abcd';

function localDisk(t: TestContext): Promise<Disk> {
  return openTempDirectoryDisk(t, POOL_UUID, 'fragsvc');
}

function rejectsWith(code: ErrorCode, reason?: string) {
  return (error: unknown) => {
    assert.ok(isShardpoolError(error, code), `expected ${code}, got ${String(error)}`);
    if (reason !== undefined) assert.equal(error.details.reason, reason, error.message);
    return true;
  };
}

interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request exactly as given (headers and body), for the tests that tamper with what a client would send. */
function rawRequest(baseUrl: string, options: { method: string; path: string; headers: Record<string, string | number>; body: Buffer }): Promise<RawAnswer> {
  const url = new URL(options.path, baseUrl);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ hostname: url.hostname, port: url.port, method: options.method, path: options.path, headers: options.headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

/** The headers a pool node would send for this body, signed with `key` at `timeMs`. */
function signedHeaders(key: Buffer, options: { method: string; path: string; body: Buffer; timeMs?: number; nonce?: string }): Record<string, string | number> {
  const timeMs = options.timeMs ?? Date.now();
  const nonce = options.nonce ?? newNonce();
  const bodySha256 = sha256Hex([options.body]);
  return {
    'content-length': options.body.length,
    [AUTH_HEADERS.node]: 'caller',
    [AUTH_HEADERS.time]: String(timeMs),
    [AUTH_HEADERS.nonce]: nonce,
    [AUTH_HEADERS.bodySha256]: bodySha256,
    [AUTH_HEADERS.signature]: sign(key, requestStringToSign({ method: options.method, pathWithQuery: options.path, node: 'caller', timeMs, nonce, bodySha256 })),
  };
}

function errorOf(answer: RawAnswer): { code: string; details: Record<string, unknown> } {
  const jsonLength = answer.body.readUInt32LE(0);
  return (JSON.parse(answer.body.subarray(4, 4 + jsonLength).toString('utf8')) as { error: { code: string; details: Record<string, unknown> } }).error;
}

async function listen(t: TestContext, server: Server | NetServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a client holding another cluster key is refused', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const stranger = served.client({ clusterKey: randomBytes(32) });
  await assert.rejects(
    openRemoteDisk({ nodeName: served.nodeName, baseUrl: served.service.url, poolUuid: POOL_UUID, diskUuid: disk.diskUuid, kind: 'directory', path: disk.path, client: stranger }),
    rejectsWith('CLUSTER_AUTH_FAILED'),
  );
});

test('a body that differs from the one signed is refused, and nothing is written', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const requestPath = `/v1/disks/${disk.diskUuid}/delete-version`;
  const victim = (await writeTestFragment(disk, 'kept', Buffer.from('still here'))).versionId;
  await disk.flush();
  const signedBody = Buffer.concat(encodeFrame({ versionId: newUuid() }));
  const tampered = Buffer.concat(encodeFrame({ versionId: victim }));
  assert.equal(signedBody.length, tampered.length);
  const answer = await rawRequest(served.service.url, { method: 'POST', path: requestPath, headers: signedHeaders(served.clusterKey, { method: 'POST', path: requestPath, body: signedBody }), body: tampered });
  assert.equal(answer.status, 401);
  assert.equal(errorOf(answer).code, 'CLUSTER_AUTH_FAILED');
  assert.equal(errorOf(answer).details.reason, 'body-hash');
  assert.equal(await disk.deleteVersion(victim), 1, 'the tampered request deleted nothing');
});

test('a request signed for another path is refused', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const body = Buffer.concat(encodeFrame({}));
  const headers = signedHeaders(served.clusterKey, { method: 'POST', path: `/v1/disks/${disk.diskUuid}/space`, body });
  const answer = await rawRequest(served.service.url, { method: 'POST', path: `/v1/disks/${disk.diskUuid}/flush`, headers, body });
  assert.equal(answer.status, 401);
  assert.equal(errorOf(answer).details.reason, 'signature');
});

test('a request whose time is outside the ±30 s window is refused, either way', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  for (const offsetMs of [-31_000, 31_000]) {
    const skewed = served.client({ nowMs: () => Date.now() + offsetMs });
    await assert.rejects(served.remote(disk, skewed), rejectsWith('CLUSTER_AUTH_FAILED'), `clock off by ${offsetMs} ms`);
  }
  const slightly = served.client({ nowMs: () => Date.now() - 20_000 });
  assert.equal((await served.remote(disk, slightly)).diskUuid, disk.diskUuid, 'within the window is accepted');
});

test('a request replayed within the window is refused', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const requestPath = `/v1/disks/${disk.diskUuid}/space`;
  const body = Buffer.concat(encodeFrame({}));
  const headers = signedHeaders(served.clusterKey, { method: 'POST', path: requestPath, body });
  const first = await rawRequest(served.service.url, { method: 'POST', path: requestPath, headers, body });
  assert.equal(first.status, 200);
  const again = await rawRequest(served.service.url, { method: 'POST', path: requestPath, headers, body });
  assert.equal(again.status, 401);
  assert.equal(errorOf(again).details.reason, 'replayed');
});

test('the replay window forgets a nonce only after twice the skew, and refuses rather than forget early when full', () => {
  const window = new NonceWindow(2, 60_000);
  assert.equal(window.admit('a', 0), true);
  assert.equal(window.admit('a', 59_999), false);
  assert.equal(window.admit('b', 1000), true);
  assert.throws(() => window.admit('c', 2000), rejectsWith('NODE_REQUEST_INVALID', 'busy'));
  assert.equal(window.admit('c', 60_000), true, 'a is forgotten at 60 s, making room');
  assert.equal(window.size, 2);
});

test('a body larger than its call accepts is refused before it is read', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const requestPath = `/v1/disks/${disk.diskUuid}/write`;
  const body = Buffer.alloc(16);
  const headers = { ...signedHeaders(served.clusterKey, { method: 'POST', path: requestPath, body }), 'content-length': 200 * 1024 * 1024 };
  const url = new URL(requestPath, served.service.url);
  // Only the headers and a little of the body are sent: the refusal comes without waiting for the rest.
  const answer = await new Promise<RawAnswer>((resolve, reject) => {
    const request = httpRequest({ hostname: url.hostname, port: url.port, method: 'POST', path: requestPath, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    request.on('error', reject);
    request.write(body);
  });
  assert.equal(answer.status, 413);
  assert.equal(errorOf(answer).code, 'NODE_REQUEST_INVALID');
  assert.equal(errorOf(answer).details.reason, 'too-large');
});

test('an answer not signed with the cluster key is refused, as is a signed answer recorded from another request', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  // A host that is not a pool node, answering in the node's name with a key of its own.
  const impostorKey = randomBytes(32);
  let recorded: { status: number; headers: IncomingHttpHeaders; body: Buffer } | undefined;
  const impostor = createServer((request, response) => {
    request.resume();
    if (recorded) {
      response.writeHead(recorded.status, recorded.headers);
      response.end(recorded.body);
      return;
    }
    const body = Buffer.concat(encodeFrame({ result: { poolUuid: POOL_UUID, node: served.nodeName, disks: [] } }));
    const bodySha256 = sha256Hex([body]);
    response.writeHead(200, { [AUTH_HEADERS.node]: served.nodeName, [AUTH_HEADERS.bodySha256]: bodySha256, [AUTH_HEADERS.signature]: sign(impostorKey, `forged ${bodySha256}`) });
    response.end(body);
  });
  const impostorUrl = await listen(t, impostor);
  const client = served.client();
  const open = () => openRemoteDisk({ nodeName: served.nodeName, baseUrl: impostorUrl, poolUuid: POOL_UUID, diskUuid: disk.diskUuid, kind: 'directory', path: disk.path, client });
  await assert.rejects(open(), rejectsWith('CLUSTER_AUTH_FAILED', 'answer-signature'));
  // A real, signed answer of the node, played back to a later request: bound to the earlier request's nonce.
  const requestPath = '/v1/node';
  const real = await rawRequest(served.service.url, { method: 'GET', path: requestPath, headers: signedHeaders(served.clusterKey, { method: 'GET', path: requestPath, body: Buffer.alloc(0) }), body: Buffer.alloc(0) });
  assert.equal(real.status, 200);
  recorded = real;
  await assert.rejects(open(), rejectsWith('CLUSTER_AUTH_FAILED', 'answer-signature'));
});

test('an answer from another node than the one asked is refused', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk], { nodeName: 'node-b' });
  await assert.rejects(
    openRemoteDisk({ nodeName: 'node-a', baseUrl: served.service.url, poolUuid: POOL_UUID, diskUuid: disk.diskUuid, kind: 'directory', path: disk.path, client: served.client() }),
    rejectsWith('CLUSTER_AUTH_FAILED', 'answer-signature'),
  );
});

test('a node answering for another pool is refused, and a disk it does not serve is offline', async (t) => {
  const disk = await localDisk(t);
  const otherPool = newUuid();
  const served = await serveDisks(t, [disk], { poolUuid: otherPool });
  const client = served.client({ poolUuid: POOL_UUID });
  await assert.rejects(
    openRemoteDisk({ nodeName: served.nodeName, baseUrl: served.service.url, poolUuid: POOL_UUID, diskUuid: disk.diskUuid, kind: 'directory', path: disk.path, client }),
    rejectsWith('DISK_BELONGS_TO_OTHER_POOL'),
  );
  const right = served.client({ poolUuid: otherPool });
  await assert.rejects(
    openRemoteDisk({ nodeName: served.nodeName, baseUrl: served.service.url, poolUuid: otherPool, diskUuid: newUuid(), kind: 'directory', path: '/elsewhere', client: right }),
    rejectsWith('DISK_OFFLINE'),
  );
});

test('a node that is down is NODE_UNREACHABLE at once, and one that never answers within the timeout', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const remote = await served.remote(disk);
  await served.service.close();
  let started = Date.now();
  await assert.rejects(remote.space(), (error) => {
    assert.ok(isShardpoolError(error, 'NODE_UNREACHABLE'), String(error));
    assert.equal(error.details.node, served.nodeName);
    assert.equal(error.details.url, served.service.url);
    return true;
  });
  assert.ok(Date.now() - started < 2000, 'a refused connection fails fast');

  // A listener that takes the connection, reads the request and then says nothing (it reads on, so it sees the
  // client hang up, and closes).
  const silent = createNetServer((socket) => socket.resume());
  const silentUrl = await listen(t, silent);
  const client = served.client({ idleTimeoutMs: 300 });
  started = Date.now();
  await assert.rejects(client.call({ node: served.nodeName, baseUrl: silentUrl }, { method: 'GET', path: '/v1/node' }), rejectsWith('NODE_UNREACHABLE'));
  assert.ok(Date.now() - started < 3000, `a silent node is given up on after its timeout (took ${Date.now() - started} ms)`);
});

test('errors of the owning disk arrive with their own code', async (t) => {
  const disk = await localDisk(t);
  const served = await serveDisks(t, [disk]);
  const remote = await served.remote(disk);
  await assert.rejects(
    remote.readFragment({ versionId: newUuid(), extentIndex: 0, fragmentIndex: 0, locationBytes: 0, storedBytes: 100 }),
    (error) => {
      assert.ok(isShardpoolError(error, 'FRAGMENT_MISSING'));
      assert.equal(error.details.node, served.nodeName, 'naming the node it came from');
      return true;
    },
  );
});

test('over https, a client trusting the CA of the node certificate works, and one without it is refused', async (t) => {
  const root = await makeTempDir(t, 'fragsvc-tls');
  const keyFile = path.join(root, 'node.key');
  const certFile = path.join(root, 'node.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  const disk = await localDisk(t);
  const tls = { cert: await fs.readFile(certFile, 'utf8'), key: await fs.readFile(keyFile, 'utf8') };
  const served = await serveDisks(t, [disk], { service: { tls } });
  assert.ok(served.service.url.startsWith('https://'));
  const trusting = await FragmentClient.open({ poolUuid: POOL_UUID, nodeName: 'caller', clusterKey: served.clusterKey, caFile: certFile });
  t.after(() => trusting.close());
  const remote = await served.remote(disk, trusting);
  const { versionId } = await writeTestFragment(remote, 'over tls', Buffer.from('sealed'));
  await remote.flush();
  assert.equal(await remote.deleteVersion(versionId), 1);
  await assert.rejects(served.remote(disk, served.client()), rejectsWith('CLUSTER_AUTH_FAILED', 'tls'));
});
