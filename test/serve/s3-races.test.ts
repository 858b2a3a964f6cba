// Writes racing each other through `shardpool serve`, made deterministic: a request body the test holds back (its
// last byte sent only when the test says), and the daemon's /health and catalog to see what is in flight. Each race
// is run in the order that used to go wrong, and the outcome checked against what S3 promises.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { auditPool } from '../support/pool-audit.js';
import { bodyBytes, heldBody, hiddenPartKeys, multipartEtag, openCatalog, s3Client, s3Error, waitForWritesInFlight } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;

async function servedPool(t: import('node:test').TestContext, label: string) {
  const root = await makeTempDir(t, label);
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'racer');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  const catalog = await openCatalog(pool);
  t.after(async () => {
    s3.destroy();
    await catalog.close();
  });
  await s3.send(new CreateBucketCommand({ Bucket: 'race' }));
  return { pool, daemon, s3, catalog };
}

/** The outcome of a request that may succeed or fail with an S3 error: its result, or the error's code. */
async function outcome<T>(promise: Promise<T>): Promise<{ ok: T } | { error: string }> {
  try {
    return { ok: await promise };
  } catch (error) {
    if (error instanceof S3ServiceException) return { error: error.name };
    throw error;
  }
}

test('Complete writes the part versions it validated, even when a part is uploaded again while it runs', async (t) => {
  const { pool, daemon, s3, catalog } = await servedPool(t, 's3-race-parts');
  const key = 'video.mp4';
  const uploadId = (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'race', Key: key }))).UploadId as string;
  const first = randomBytes(5 * MiB);
  const partA = randomBytes(100 * 1024);
  const partB = randomBytes(100 * 1024);
  const etags: string[] = [];
  for (const [index, part] of [first, partA].entries()) {
    etags.push((await s3.send(new UploadPartCommand({ Bucket: 'race', Key: key, UploadId: uploadId, PartNumber: index + 1, Body: part }))).ETag as string);
  }
  // Part 2 uploaded again (B), its body held back: B is mid-upload while Complete validates A.
  const held = heldBody(partB);
  const reupload = outcome(
    s3.send(new UploadPartCommand({ Bucket: 'race', Key: key, UploadId: uploadId, PartNumber: 2, Body: held.stream, ContentLength: partB.length })),
  );
  await waitForWritesInFlight(daemon.opsEndpoint, 1);
  const listed = await s3.send(new ListPartsCommand({ Bucket: 'race', Key: key, UploadId: uploadId }));
  assert.deepEqual(listed.Parts?.map((part) => part.ETag), etags, 'ListParts shows A while B is still arriving');
  // Complete through a presigned URL, so the test sees its 200 status line (sent once the parts are validated)
  // before the result: only then is B let through, to commit while Complete reads its parts.
  const url = await getSignedUrl(s3, new CompleteMultipartUploadCommand({ Bucket: 'race', Key: key, UploadId: uploadId }), { expiresIn: 60 });
  const xml = `<CompleteMultipartUpload>${etags.map((etag, index) => `<Part><PartNumber>${index + 1}</PartNumber><ETag>${etag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
  const completing = await fetch(url, { method: 'POST', body: xml });
  assert.equal(completing.status, 200);
  held.release();
  const reuploaded = await reupload;
  // B either committed before Complete did (and was then discarded with the upload) or found the upload gone.
  assert.ok('ok' in reuploaded || reuploaded.error === 'NoSuchUpload', `B: ${JSON.stringify(reuploaded)}`);
  const result = await completing.text();
  const expectedEtag = multipartEtag([first, partA]);
  assert.doesNotMatch(result, /<Error>/, result);
  assert.ok(result.includes(`<ETag>${expectedEtag.replaceAll('"', '&quot;')}</ETag>`) || result.includes(`<ETag>${expectedEtag}</ETag>`), result);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'race', Key: key }));
  assert.equal(got.ETag, expectedEtag);
  assert.ok((await bodyBytes(got.Body)).equals(Buffer.concat([first, partA])), 'the object holds the validated part A, not B');
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'race' }))).Uploads, undefined);
  assert.deepEqual(await hiddenPartKeys(catalog), [], 'no part object outlives the upload');
  assert.equal(await daemon.stop(), 0);
  await auditPool(pool, { expected: new Map([[`race/${key}`, Buffer.concat([first, partA])]]), noOrphans: true, context: 'after the race' });
});

test('a part still arriving when its upload is aborted is refused with NoSuchUpload and leaves nothing behind', async (t) => {
  const { pool, daemon, s3, catalog } = await servedPool(t, 's3-race-abort');
  const key = 'abandoned.bin';
  const uploadId = (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'race', Key: key }))).UploadId as string;
  // Many parts, so that an Abort removing them one by one would be busy long after it began.
  const PARTS = 30;
  for (let partNumber = 1; partNumber <= PARTS; partNumber += 1) {
    await s3.send(new UploadPartCommand({ Bucket: 'race', Key: key, UploadId: uploadId, PartNumber: partNumber, Body: randomBytes(1024) }));
  }
  assert.equal((await hiddenPartKeys(catalog)).length, PARTS);
  const late = randomBytes(64 * 1024);
  const held = heldBody(late);
  const lateUpload = outcome(
    s3.send(new UploadPartCommand({ Bucket: 'race', Key: key, UploadId: uploadId, PartNumber: PARTS + 1, Body: held.stream, ContentLength: late.length })),
  );
  await waitForWritesInFlight(daemon.opsEndpoint, 1);
  const aborting = s3.send(new AbortMultipartUploadCommand({ Bucket: 'race', Key: key, UploadId: uploadId }));
  // The late part is let through as soon as the Abort has visibly begun removing parts.
  while ((await hiddenPartKeys(catalog)).length === PARTS) await new Promise((resolve) => setImmediate(resolve));
  held.release();
  assert.deepEqual(await lateUpload, { error: 'NoSuchUpload' });
  await aborting;
  assert.equal((await s3Error(s3.send(new ListPartsCommand({ Bucket: 'race', Key: key, UploadId: uploadId })))).name, 'NoSuchUpload');
  assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'race' }))).Uploads, undefined);
  assert.deepEqual(await hiddenPartKeys(catalog), [], 'no hidden part object is left that no S3 call could remove');
  assert.equal(await daemon.stop(), 0);
  await auditPool(pool, { expected: new Map(), noOrphans: true, context: 'after the aborted upload' });
});

test('a PUT still arriving when its bucket is deleted is refused with NoSuchBucket and does not reappear with the bucket', async (t) => {
  const { pool, daemon, s3 } = await servedPool(t, 's3-race-bucket');
  const data = randomBytes(256 * 1024);
  const held = heldBody(data);
  const put = outcome(s3.send(new PutObjectCommand({ Bucket: 'race', Key: 'late.bin', Body: held.stream, ContentLength: data.length })));
  await waitForWritesInFlight(daemon.opsEndpoint, 1);
  // Empty as far as anything committed goes, so the delete succeeds; the PUT then commits into no bucket at all.
  await s3.send(new DeleteBucketCommand({ Bucket: 'race' }));
  held.release();
  assert.deepEqual(await put, { error: 'NoSuchBucket' });
  await s3.send(new CreateBucketCommand({ Bucket: 'race' }));
  assert.equal((await s3.send(new ListObjectsV2Command({ Bucket: 'race' }))).KeyCount, 0, 'the recreated bucket is empty');
  assert.equal(await daemon.stop(), 0);
  await auditPool(pool, { expected: new Map(), noOrphans: true, context: 'after the refused put' });
});

test('PUTs with If-None-Match: * racing on one key: exactly one is stored, every other is 412 and leaves nothing', async (t) => {
  const { pool, daemon, s3 } = await servedPool(t, 's3-race-if-none-match');
  const bodies = [randomBytes(300 * 1024), randomBytes(300 * 1024), randomBytes(300 * 1024)];
  // Every body held back until all three are in flight: each passed the early check (no object yet), so the commit
  // alone decides.
  const held = bodies.map((body) => heldBody(body));
  const puts = held.map((body, index) =>
    outcome(s3.send(new PutObjectCommand({ Bucket: 'race', Key: 'once', Body: body.stream, ContentLength: (bodies[index] as Buffer).length, IfNoneMatch: '*' }))),
  );
  await waitForWritesInFlight(daemon.opsEndpoint, bodies.length);
  for (const body of held) body.release();
  const outcomes = await Promise.all(puts);
  const winners = outcomes.flatMap((result, index) => ('ok' in result ? [index] : []));
  assert.equal(winners.length, 1, JSON.stringify(outcomes));
  for (const result of outcomes) if ('error' in result) assert.equal(result.error, 'PreconditionFailed');
  const winner = bodies[winners[0] as number] as Buffer;
  assert.deepEqual(await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'race', Key: 'once' }))).Body), winner);
  // And once the key holds an object, a further If-None-Match: * is refused before its body is stored.
  assert.equal((await s3Error(s3.send(new PutObjectCommand({ Bucket: 'race', Key: 'once', Body: 'late', IfNoneMatch: '*' })))).name, 'PreconditionFailed');
  assert.equal(await daemon.stop('SIGTERM'), 0);
  await auditPool(pool, { expected: new Map([['race/once', winner]]), noOrphans: true, context: 'after the conditional race' });
});
