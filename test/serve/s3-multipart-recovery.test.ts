// Multipart uploads across a crash of the daemon: Complete killed after its commit (SHARDPOOL_KILL_AT), and part
// objects that no upload can reach any more (left by an older shardpool or a crash), removed when the daemon opens
// the pool.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Pool } from '../../src/pool/pool.js';
import { S3Catalog } from '../../src/serve/s3/s3-catalog.js';
import { MULTIPART_KEY_PREFIX, partKeyOf } from '../../src/serve/s3/s3-names.js';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { auditPool } from '../support/pool-audit.js';
import { bodyBytes, hiddenPartKeys, multipartEtag, openCatalog, s3Client, s3Error } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;

test('a daemon killed in Complete after its commit leaves the object, no upload and no parts; a retried Complete gets the same answer', async (t) => {
  const root = await makeTempDir(t, 's3-complete-crash');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'crasher');
  const doomed = await startDaemon(t, pool, ['--scrub-interval', 'off'], { env: { SHARDPOOL_KILL_AT: 'multipart.completed' } });
  const s3 = s3Client(doomed.s3Endpoint, keys);
  t.after(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'crash' }));
  const uploadId = (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'crash', Key: 'big.bin' }))).UploadId as string;
  const parts = [randomBytes(5 * MiB), randomBytes(1000)];
  const completeParts: Array<{ ETag: string; PartNumber: number }> = [];
  for (const [index, part] of parts.entries()) {
    const uploaded = await s3.send(new UploadPartCommand({ Bucket: 'crash', Key: 'big.bin', UploadId: uploadId, PartNumber: index + 1, Body: part }));
    completeParts.push({ ETag: uploaded.ETag as string, PartNumber: index + 1 });
  }
  const complete = () =>
    s3.send(new CompleteMultipartUploadCommand({ Bucket: 'crash', Key: 'big.bin', UploadId: uploadId, MultipartUpload: { Parts: completeParts } }));
  await assert.rejects(complete(), 'the daemon dies before it can answer');
  assert.equal(await doomed.exited(), 'SIGKILL', 'killed at multipart.completed');

  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const again = s3Client(daemon.s3Endpoint, keys);
  t.after(() => again.destroy());
  const etag = multipartEtag(parts);
  const got = await again.send(new GetObjectCommand({ Bucket: 'crash', Key: 'big.bin' }));
  assert.equal(got.ETag, etag);
  assert.ok((await bodyBytes(got.Body)).equals(Buffer.concat(parts)), 'the committed object reads back whole');
  assert.equal((await again.send(new ListMultipartUploadsCommand({ Bucket: 'crash' }))).Uploads, undefined, 'no upload is listed');
  assert.equal((await s3Error(again.send(new ListPartsCommand({ Bucket: 'crash', Key: 'big.bin', UploadId: uploadId })))).name, 'NoSuchUpload');
  const catalog = await openCatalog(pool);
  try {
    assert.deepEqual(await hiddenPartKeys(catalog), []);
  } finally {
    await catalog.close();
  }
  // The client never saw an answer and retries: the object is that upload's result, so the answer is the same.
  const retried = await again.send(
    new CompleteMultipartUploadCommand({ Bucket: 'crash', Key: 'big.bin', UploadId: uploadId, MultipartUpload: { Parts: completeParts } }),
  );
  assert.equal(retried.ETag, etag);
  // A retry naming other parts does not describe what is stored: the upload is simply gone.
  const wrong = [{ ETag: completeParts[1]?.ETag as string, PartNumber: 1 }];
  const refused = await s3Error(again.send(new CompleteMultipartUploadCommand({ Bucket: 'crash', Key: 'big.bin', UploadId: uploadId, MultipartUpload: { Parts: wrong } })));
  assert.equal(refused.name, 'NoSuchUpload');
  assert.equal(await daemon.stop(), 0);
  // The parts' fragments, queued as garbage by the commit, were freed by the daemon's open: nothing is left over.
  await auditPool(pool, { expected: new Map([['crash/big.bin', Buffer.concat(parts)]]), noOrphans: true, context: 'after the killed Complete' });
});

test('part objects no upload can reach, and uploads whose parts are gone, are removed when the daemon opens the pool', async (t) => {
  const root = await makeTempDir(t, 's3-abandoned-parts');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'keeper');
  // What an older shardpool could leave behind, written straight into the pool: a part object of an upload that is
  // gone, and an upload whose part row names an object that is gone (a crash in its Complete's cleanup) beside one
  // whose part is still there; and a healthy upload that must be left alone.
  const writable = await Pool.open(pool, { access: 'write', lockWaitMs: 10_000 });
  const s3Rows = S3Catalog.of(writable.catalog);
  let healthy: string;
  let healthyPartKey: string;
  let broken: string;
  try {
    await s3Rows.createBucket('keep', { owner: 'keeper', acl: 'private' });
    await writable.put(`${MULTIPART_KEY_PREFIX}0123456789abcdef0123456789abcdef/00001`, [randomBytes(3000)], { internal: true });
    broken = (await s3Rows.createUpload({ bucket: 'keep', key: 'broken', contentType: undefined, userMetadata: {} })).uploadId;
    const brokenSurvivor = partKeyOf(broken, 2, 'old');
    await writable.put(brokenSurvivor, [randomBytes(2000)], { internal: true });
    const insertPart = (partNumber: number, partKey: string) => s3Rows.replacePart({ uploadId: broken, partNumber, partKey, etag: '"x"', sizeBytes: 1 });
    await insertPart(1, partKeyOf(broken, 1, 'gone'));
    await insertPart(2, brokenSurvivor);
    healthy = (await s3Rows.createUpload({ bucket: 'keep', key: 'healthy', contentType: undefined, userMetadata: {} })).uploadId;
    healthyPartKey = partKeyOf(healthy, 1, 'kept');
    await writable.put(healthyPartKey, [randomBytes(1000)], {
      internal: true,
      inCommit: (tx) => S3Catalog.within(tx).replacePart({ uploadId: healthy, partNumber: 1, partKey: healthyPartKey, etag: '"y"', sizeBytes: 1000 }),
    });
  } finally {
    await writable.close();
  }

  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());
  await daemon.waitForLog(/removed multipart parts/);
  const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'keep' }));
  assert.deepEqual(uploads.Uploads?.map((upload) => upload.UploadId), [healthy]);
  assert.equal((await s3Error(s3.send(new ListPartsCommand({ Bucket: 'keep', Key: 'broken', UploadId: broken })))).name, 'NoSuchUpload');
  const catalog = await openCatalog(pool);
  try {
    assert.deepEqual(await hiddenPartKeys(catalog), [healthyPartKey], 'only the healthy upload keeps a part object');
  } finally {
    await catalog.close();
  }
  assert.equal(await daemon.stop(), 0);
});
