// Bad input to the daemon's commands and sockets: one clear line, a stable code, the pool untouched.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer } from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { auditPool } from '../support/pool-audit.js';
import { s3Client, s3Error, waitForWritesInFlight } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';

function oneErrorLine(stderr: string, code: string): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${stderr}`);
  assert.match(lines[0] as string, new RegExp(`^shardpool: error ${code}: `));
}

test('serve and user refuse bad input with one line and a stable code', async (t) => {
  const root = await makeTempDir(t, 'serve-input');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+2' });
  for (const [args, code] of [
    [['--listen', 'nowhere'], 'USAGE_INVALID'],
    [['--listen', '127.0.0.1:70000'], 'USAGE_INVALID'],
    [['--metrics-listen', 'x:y'], 'USAGE_INVALID'],
    [['--scrub-interval', 'weekly'], 'USAGE_INVALID'],
    [['--scrub-rate', '0'], 'USAGE_INVALID'],
  ] as const) {
    const result = await runCli(['serve', '--pool', pool, ...args]);
    assert.equal(result.code, 2, `serve ${args.join(' ')}`);
    oneErrorLine(result.stderr, code);
  }
  // An address in use.
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const busy = await runCli(['serve', '--pool', pool, '--listen', `127.0.0.1:${port}`, '--metrics-listen', 'off']);
  assert.equal(busy.code, 2);
  oneErrorLine(busy.stderr, 'SERVE_FAILED');
  const missing = await runCli(['serve', '--pool', path.join(root, 'no-pool')]);
  oneErrorLine(missing.stderr, 'POOL_NOT_FOUND');

  await runCliOk(['user', 'add', '--pool', pool, 'ops']);
  const twice = await runCli(['user', 'add', '--pool', pool, 'ops']);
  assert.equal(twice.code, 2);
  oneErrorLine(twice.stderr, 'USER_ALREADY_EXISTS');
  const badName = await runCli(['user', 'add', '--pool', pool, 'bad name!']);
  oneErrorLine(badName.stderr, 'USAGE_INVALID');
  const noPool = await runCli(['user', 'list', '--pool', path.join(root, 'no-pool')]);
  oneErrorLine(noPool.stderr, 'POOL_NOT_FOUND');
  // Nothing was changed by any of it: the pool still opens, holds its one user and no objects.
  const users = JSON.parse((await runCliOk(['user', 'list', '--pool', pool, '--json'])).stdout.toString('utf8')) as unknown[];
  assert.equal(users.length, 1);
  assert.equal(JSON.parse((await runCliOk(['status', '--pool', pool, '--json'])).stdout.toString('utf8')).objectCount, 0);
});

test('garbage on the command socket is refused without harming the daemon', async (t) => {
  const root = await makeTempDir(t, 'serve-socket');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+2' });
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  for (const payload of [Buffer.from('not a frame at all, just text\n'), Buffer.from([0x48, 0, 0, 0, 5, 0x7b, 0x7d, 0x7d, 0x7d, 0x7d]), Buffer.from([0x48, 0xff, 0xff, 0xff, 0xff])]) {
    await new Promise<void>((resolve) => {
      const socket = connect(path.join(pool, 'serve.sock'));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.on('connect', () => socket.write(payload));
      setTimeout(() => socket.destroy(), 500);
    });
  }
  // Still serving: a command goes through and the process is alive.
  const ls = await runCli(['ls', '--pool', pool]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.equal(daemon.child.exitCode, null);
  assert.equal(await daemon.stop(), 0);
});

/** Sends raw HTTP on one connection; resolves with everything the server sent and how many body bytes got out. */
function rawExchange(endpoint: string, head: string, bodyBytes: number, then?: string): Promise<{ received: string; sentBody: number; closedEarly: boolean }> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    let sentBody = 0;
    let closed = false;
    const finish = () => resolve({ received, sentBody, closedEarly: sentBody < bodyBytes });
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (then !== undefined && sentBody >= bodyBytes && (received.match(/HTTP\/1\.1 /g) ?? []).length >= 2) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('connect', async () => {
      socket.write(head);
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      while (sentBody < bodyBytes && !closed) {
        const piece = chunk.subarray(0, Math.min(chunk.length, bodyBytes - sentBody));
        if (!socket.write(piece)) await new Promise((drained) => socket.once('drain', drained).once('close', drained));
        if (!closed) sentBody += piece.length;
      }
      if (!closed && then !== undefined) socket.write(then);
      else if (!closed) setTimeout(() => socket.end(), 1000);
    });
  });
}

test('a refused upload is answered and its body drained: the connection is reused, or cut past 64 MiB', async (t) => {
  const { REFUSED_BODY_DRAIN_BYTES_MAX } = await import('../../src/serve/s3/s3-server.js');
  const root = await makeTempDir(t, 'serve-drain');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+2' });
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const host = `Host: ${new URL(daemon.s3Endpoint).host}\r\n`;
  // Unsigned, so refused (403) before a byte of the body is read; the body ends within the limit, so the client
  // finishes sending, reads the answer, and its next request on the same connection is answered too.
  const small = 8 * 1024 * 1024;
  const reused = await rawExchange(daemon.s3Endpoint, `PUT /b/k HTTP/1.1\r\n${host}Content-Length: ${small}\r\n\r\n`, small, `GET / HTTP/1.1\r\n${host}\r\n`);
  assert.equal(reused.sentBody, small, 'the whole body went out');
  assert.equal((reused.received.match(/HTTP\/1\.1 403/g) ?? []).length, 2, `two answers on one connection: ${reused.received.slice(0, 200)}`);
  assert.match(reused.received, /<Code>AccessDenied<\/Code>/);
  // A body far past the limit: answered, then the connection is cut once the limit is passed.
  const huge = 4 * REFUSED_BODY_DRAIN_BYTES_MAX;
  const cut = await rawExchange(daemon.s3Endpoint, `PUT /b/k HTTP/1.1\r\n${host}Content-Length: ${huge}\r\n\r\n`, huge);
  assert.match(cut.received, /^HTTP\/1\.1 403/);
  assert.ok(cut.closedEarly, 'the server cut the connection');
  assert.ok(cut.sentBody > REFUSED_BODY_DRAIN_BYTES_MAX / 2 && cut.sentBody < huge, `cut after about 64 MiB, at ${cut.sentBody}`);
  assert.equal(daemon.child.exitCode, null);
  assert.equal(await daemon.stop(), 0);
});

/** Rejects if `promise` has not settled within timeoutMs (so a write held back forever fails the test, not hangs it). */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends a request head announcing `announcedBytes` and then only `sentBytes` of body; resolves with what came back once the server closes. */
function stalledUpload(url: URL, announcedBytes: number, sentBytes: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(received));
    socket.on('connect', () => {
      socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${announcedBytes}\r\n\r\n`);
      socket.write(Buffer.alloc(sentBytes, 0x62));
      // ...and nothing more, never ending: only the server can end this exchange.
    });
  });
}

test('a PUT whose body stalls is answered RequestTimeout, stores nothing, and holds back no other write or maintenance', { timeout: 60_000 }, async (t) => {
  const root = await makeTempDir(t, 'serve-stall');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'staller');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off', '--body-idle-timeout', '500ms']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'slow' }));
  const url = new URL(await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'slow', Key: 'stalled' }), { expiresIn: 60 }));
  const stalled = stalledUpload(url, 10 * 1024 * 1024, 1024);
  // While the stalled put is in flight, maintenance and another PUT go on beside it (neither waits for a write), and
  // the stalled one is cut after the idle timeout.
  await waitForWritesInFlight(daemon.opsEndpoint, 1);
  const maintenance = runCli(['trim', '--pool', pool]);
  const after = randomBytes(100 * 1024);
  const second = s3.send(new PutObjectCommand({ Bucket: 'slow', Key: 'after', Body: after }));
  const answer = await within(stalled, 10_000, 'the stalled upload');
  assert.match(answer, /^HTTP\/1\.1 400 /, answer);
  assert.match(answer, /<Code>RequestTimeout<\/Code>/);
  assert.match(answer, /Connection: close/i);
  const trimmed = await within(maintenance, 20_000, 'maintenance beside the stalled upload');
  assert.equal(trimmed.code, 0, trimmed.stderr);
  await within(second, 20_000, 'a PUT beside the stalled upload');
  assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'slow', Key: 'stalled' })))).name, 'NoSuchKey');
  assert.equal(await daemon.stop(), 0);
  await auditPool(pool, { expected: new Map([['slow/after', after]]), noOrphans: true, context: 'after the stalled upload' });
});
