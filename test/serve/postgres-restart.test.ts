// A daemon whose catalog is in PostgreSQL, and the PostgreSQL server going away and coming back while it serves:
// requests in the meantime fail cleanly (503, nothing acknowledged), a put cut mid-way leaves nothing visible, and
// the daemon serves again as soon as the server is back, without a restart; afterwards the pool audits clean.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import { runCli, runCliOk } from '../support/cli.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { postgresCluster } from '../support/postgres.js';
import { bodyBytes, heldBody, s3Client, s3Error, waitForWritesInFlight } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';

test('PostgreSQL stopped and restarted under a serving daemon: puts fail cleanly, then it serves again without a restart', async (t) => {
  const cluster = await postgresCluster(t);
  if (!cluster) return;
  const database = await cluster.createDatabase();
  const root = await makeTempDir(t, 'pg-restart');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'ec:2+1', '--extent-size', '64KiB', '--catalog', database]);
  for (let index = 1; index <= 3; index += 1) {
    await fs.mkdir(path.join(root, `disk${index}`));
    await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, `disk${index}`)]);
  }
  const keys = await addUser(pool, 'pg');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());
  // Whatever happens below, the test's cluster is left running for the rest of the process.
  t.after(() => cluster.startServer().catch(() => undefined));
  await s3.send(new CreateBucketCommand({ Bucket: 'pg-bucket' }));
  const kept = randomBytes(200_000);
  await s3.send(new PutObjectCommand({ Bucket: 'pg-bucket', Key: 'kept', Body: kept }));

  // A put whose body is still arriving when the server goes away: its commit cannot happen.
  const cut = randomBytes(150_000);
  const held = heldBody(cut);
  const cutPut = s3Error(s3.send(new PutObjectCommand({ Bucket: 'pg-bucket', Key: 'cut', Body: held.stream, ContentLength: cut.length })));
  await waitForWritesInFlight(daemon.opsEndpoint, 1);
  await cluster.stopServer();
  held.release();
  const cutError = await cutPut;
  assert.equal(cutError.$metadata.httpStatusCode, 503, `${cutError.name}: ${cutError.message}`);
  assert.match(cutError.message, /CATALOG_UNREACHABLE/);
  // While it is down: a new put and a get are refused the same way, and the daemon stays up.
  const downPut = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'pg-bucket', Key: 'down', Body: Buffer.from('x') })));
  assert.equal(downPut.$metadata.httpStatusCode, 503);
  const downGet = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'pg-bucket', Key: 'kept' })));
  assert.equal(downGet.$metadata.httpStatusCode, 503);

  await cluster.startServer();
  const after = randomBytes(100_000);
  await s3.send(new PutObjectCommand({ Bucket: 'pg-bucket', Key: 'after', Body: after }));
  assert.ok((await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'pg-bucket', Key: 'kept' }))).Body)).equals(kept));
  assert.ok((await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'pg-bucket', Key: 'after' }))).Body)).equals(after));
  for (const key of ['cut', 'down']) {
    const missing = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'pg-bucket', Key: key })));
    assert.ok(missing instanceof S3ServiceException && missing.name === 'NoSuchKey', `${key}: never acknowledged, never visible`);
  }
  assert.equal(await daemon.stop('SIGTERM'), 0);
  // The next write-open finishes what the cut put left (its intent and fragments); then nothing is left over.
  const recover = await runCli(['recover', '--pool', pool, '--json']);
  assert.equal(recover.code, 0, recover.stdout.toString() + recover.stderr.toString());
  const scrub = await runCli(['scrub', '--pool', pool, '--json', '--no-progress']);
  assert.equal(scrub.code, 0, scrub.stdout.toString());
});
