// Encryption at rest as command-line S3 clients from Debian ask for it (installed by .ci/run): s3cmd
// --server-side-encryption (SSE-S3) and rclone with --s3-server-side-encryption AES256 and --s3-sse-customer-key
// (SSE-C), single and multipart, each client's own checks of what it downloads, and no plaintext on the disks.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { bodyBytes, s3Client, s3Error } from '../support/s3-client.js';
import { filesHolding, markedBytes, MARKER } from '../support/sse.js';
import { makeTempDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

async function missingTools(): Promise<string | undefined> {
  for (const [tool, flag] of [['s3cmd', '--version'], ['rclone', 'version'], ['openssl', 'version']] as const) {
    try {
      await run(tool, [flag]);
    } catch {
      return `${tool} is not installed (bash .ci/run installs it)`;
    }
  }
  return undefined;
}

const missing = await missingTools();
if (missing && process.env['CI'] === 'true') throw new Error(`under CI the encryption client test must run: ${missing}`);

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A TLS front for the daemon (as the reverse proxy docs/operations.md asks for): clients refuse to send SSE-C keys
 * over plain HTTP. A self-signed certificate made with openssl; connections are piped through unchanged.
 */
async function tlsFront(t: TestContext, root: string, target: string): Promise<string> {
  const keyFile = path.join(root, 'tls.key');
  const certFile = path.join(root, 'tls.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1']);
  const [host, port] = target.replace('http://', '').split(':') as [string, string];
  const sockets = new Set<Socket>();
  const server = createTlsServer({ key: await fs.readFile(keyFile), cert: await fs.readFile(certFile) }, (client) => {
    const upstream = connect(Number(port), host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address() as { port: number };
  return `https://127.0.0.1:${address.port}`;
}

test('s3cmd and rclone store objects encrypted at rest (SSE-S3, SSE-C) and read them back', { skip: missing }, async (t) => {
  const root = await makeTempDir(t, 's3-sse-clients');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'clients');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());
  const host = daemon.s3Endpoint.replace('http://', '');
  // The AWS SDK in rclone takes a CA bundle from the environment, which a plain-HTTP endpoint cannot use.
  const env = { ...process.env };
  delete env['AWS_CA_BUNDLE'];
  const exec = async (tool: string, args: string[]) => {
    try {
      return (await run(tool, args, { cwd: root, maxBuffer: 16 * MiB, env })).stdout;
    } catch (error) {
      const failure = error as { stdout?: string; stderr?: string };
      throw new Error(`${tool} ${args.join(' ')} failed: ${failure.stderr ?? ''}${failure.stdout ?? ''}`);
    }
  };
  const s3cfg = path.join(root, 's3cfg');
  await fs.writeFile(
    s3cfg,
    [
      '[default]',
      `access_key = ${keys.accessKeyId}`,
      `secret_key = ${keys.secretAccessKey}`,
      `host_base = ${host}`,
      `host_bucket = ${host}`,
      'use_https = False',
      'signature_v2 = False',
      'bucket_location = us-east-1',
      '',
    ].join('\n'),
  );
  const rcloneConf = path.join(root, 'rclone.conf');
  await fs.writeFile(
    rcloneConf,
    [
      '[pool]',
      'type = s3',
      'provider = Other',
      `access_key_id = ${keys.accessKeyId}`,
      `secret_access_key = ${keys.secretAccessKey}`,
      `endpoint = ${await tlsFront(t, root, daemon.s3Endpoint)}`,
      'region = us-east-1',
      'force_path_style = true',
      '',
    ].join('\n'),
  );
  const s3cmd = (...args: string[]) => exec('s3cmd', ['-c', s3cfg, '--no-progress', ...args]);
  const rclone = (...args: string[]) => exec('rclone', ['--config', rcloneConf, '--no-check-certificate', '--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', ...args]);
  const small = markedBytes(300_001);
  const large = markedBytes(11 * MiB + 5);
  await fs.writeFile(path.join(root, 'small.bin'), small);
  await fs.writeFile(path.join(root, 'large.bin'), large);

  await s3cmd('mb', 's3://enc');
  await t.test('s3cmd --server-side-encryption: SSE-S3 puts, single and multipart, and gets checked by its MD5', async () => {
    await s3cmd('put', '--server-side-encryption', 'small.bin', 's3://enc/s3cmd/small.bin');
    await s3cmd('put', '--server-side-encryption', '--multipart-chunk-size-mb=5', 'large.bin', 's3://enc/s3cmd/large.bin');
    for (const name of ['small', 'large']) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'enc', Key: `s3cmd/${name}.bin` }));
      assert.equal(head.ServerSideEncryption, 'AES256', `${name} is stored with SSE-S3`);
      await s3cmd('get', '--force', `s3://enc/s3cmd/${name}.bin`, `${name}.s3cmd`);
      assert.equal(sha256(await fs.readFile(path.join(root, `${name}.s3cmd`))), sha256(name === 'small' ? small : large));
    }
    assert.match(await s3cmd('ls', 's3://enc/s3cmd/'), new RegExp(`\\b${small.length}\\b`), 'listed with its plaintext size');
    assert.deepEqual(await filesHolding(root, MARKER), []);
  });

  await t.test('rclone with --s3-server-side-encryption AES256 and with --s3-sse-customer-key (SSE-C)', async () => {
    const customerKey = randomBytes(32);
    const ssec = ['--s3-sse-customer-algorithm', 'AES256', '--s3-sse-customer-key-base64', customerKey.toString('base64')];
    await rclone('copyto', '--s3-server-side-encryption', 'AES256', 'large.bin', 'pool:enc/rclone/sse-s3.bin');
    await rclone('copyto', ...ssec, 'small.bin', 'pool:enc/rclone/sse-c-small.bin');
    await rclone('copyto', ...ssec, 'large.bin', 'pool:enc/rclone/sse-c-large.bin');
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'enc', Key: 'rclone/sse-s3.bin' }))).ServerSideEncryption, 'AES256');
    // Without the customer key the object is refused, with it it reads.
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'enc', Key: 'rclone/sse-c-small.bin' })))).name, 'InvalidRequest');
    const direct = await s3.send(new GetObjectCommand({ Bucket: 'enc', Key: 'rclone/sse-c-large.bin', SSECustomerAlgorithm: 'AES256', SSECustomerKey: customerKey.toString('base64') }));
    assert.equal(sha256(await bodyBytes(direct.Body)), sha256(large));
    await rclone('copyto', '--s3-server-side-encryption', 'AES256', 'pool:enc/rclone/sse-s3.bin', 'sse-s3.rclone');
    await rclone('copyto', ...ssec, 'pool:enc/rclone/sse-c-small.bin', 'sse-c-small.rclone');
    await rclone('copyto', ...ssec, 'pool:enc/rclone/sse-c-large.bin', 'sse-c-large.rclone');
    assert.equal(sha256(await fs.readFile(path.join(root, 'sse-s3.rclone'))), sha256(large));
    assert.equal(sha256(await fs.readFile(path.join(root, 'sse-c-small.rclone'))), sha256(small));
    assert.equal(sha256(await fs.readFile(path.join(root, 'sse-c-large.rclone'))), sha256(large));
    // rclone's listing shows the plaintext's sizes.
    const listed = JSON.parse(await rclone('lsjson', 'pool:enc/rclone/')) as Array<{ Name: string; Size: number }>;
    assert.deepEqual(
      listed.map((entry) => [entry.Name, entry.Size]).sort(),
      [['sse-c-large.bin', large.length], ['sse-c-small.bin', small.length], ['sse-s3.bin', large.length]],
    );
    assert.deepEqual(await filesHolding(root, MARKER), []);
  });
});
