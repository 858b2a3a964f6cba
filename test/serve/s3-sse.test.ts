// Server-side encryption at rest through the S3 API (AWS SDK against `shardpool serve` in a child process): SSE-S3
// and SSE-C round trips, ranges, multipart uploads, copies between kinds, what S3 refuses (a missing or wrong key,
// SSE-KMS, bucket default encryption), and the bytes on the disks never holding the plaintext.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketEncryptionCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { bodyBytes, md5, s3Client, s3Error } from '../support/s3-client.js';
import { rawS3Request } from '../support/s3-raw.js';
import { customerKey, filesHolding, markedBytes, MARKER } from '../support/sse.js';
import { makeTempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;
const ssec = (key: ReturnType<typeof customerKey>) => ({ SSECustomerAlgorithm: key.SSECustomerAlgorithm, SSECustomerKey: key.SSECustomerKey });
const copySourceSsec = (key: ReturnType<typeof customerKey>) => ({
  CopySourceSSECustomerAlgorithm: key.SSECustomerAlgorithm,
  CopySourceSSECustomerKey: key.SSECustomerKey,
});

async function getBytes(s3: S3Client, key: string, extra: Record<string, string> = {}): Promise<Buffer> {
  return bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key, ...extra }))).Body);
}

test('objects are encrypted at rest with SSE-S3 and SSE-C, and read back only as S3 allows', async (t) => {
  const root = await makeTempDir(t, 's3-sse');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'alice');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());
  const raw = (request: Parameters<typeof rawS3Request>[2]) => rawS3Request(daemon.s3Endpoint, keys, request);
  await s3.send(new CreateBucketCommand({ Bucket: 'bkt' }));
  // Over three 64 KiB chunks and a short one, across the pool's 64 KiB extents.
  const data = markedBytes(3 * 65536 + 1234);
  const alice = customerKey();

  await t.test('a plaintext object shows its marker on the disks (the scan below can see plaintext)', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'plain', Body: data }));
    assert.ok((await filesHolding(root, MARKER)).length > 0);
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'plain', Body: Buffer.from('gone') }));
  });

  await t.test('SSE-S3: stored encrypted, answered with its header, its ETag the MD5 of the plaintext and its plaintext size', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'sse-s3', Body: data, ServerSideEncryption: 'AES256' }));
    assert.equal(put.ServerSideEncryption, 'AES256');
    assert.equal(put.ETag, `"${md5(data).toString('hex')}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-s3' }));
    assert.equal(got.ServerSideEncryption, 'AES256');
    assert.equal(got.ContentLength, data.length);
    assert.ok((await bodyBytes(got.Body)).equals(data));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'sse-s3' }));
    assert.equal(head.ContentLength, data.length);
    assert.equal(head.ServerSideEncryption, 'AES256');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'bkt', Prefix: 'sse-s3' }));
    assert.equal(listed.Contents?.[0]?.Size, data.length);
    const keyFile = await fs.stat(path.join(pool, 'sse-keys.json'));
    assert.equal(keyFile.mode & 0o777, 0o600, 'the pool key file is private to its owner');
    assert.deepEqual(await filesHolding(root, MARKER), [], 'no fragment holds the plaintext');
  });

  await t.test('SSE-C: the key is checked by its MD5, never stored, required on GET and HEAD; a wrong one is 403', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'sse-c', Body: data, ...ssec(alice) }));
    assert.equal(put.SSECustomerAlgorithm, 'AES256');
    assert.equal(put.SSECustomerKeyMD5, alice.md5);
    assert.notEqual(put.ETag, `"${md5(data).toString('hex')}"`, 'an SSE-C ETag is no MD5 of the plaintext');
    assert.match(put.ETag ?? '', /^"[0-9a-f]{32}"$/);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-c', ...ssec(alice) }));
    assert.equal(got.SSECustomerKeyMD5, alice.md5);
    assert.equal(got.ETag, put.ETag);
    assert.ok((await bodyBytes(got.Body)).equals(data));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'sse-c', ...ssec(alice) }));
    assert.equal(head.ContentLength, data.length);
    const missing = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-c' })));
    assert.equal(missing.name, 'InvalidRequest');
    assert.equal(missing.$metadata.httpStatusCode, 400);
    assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'sse-c' })))).$metadata.httpStatusCode, 400);
    const wrong = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-c', ...ssec(customerKey()) })));
    assert.equal(wrong.name, 'AccessDenied');
    assert.equal(wrong.$metadata.httpStatusCode, 403);
    // A key for an object stored without one is refused as well.
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-s3', ...ssec(alice) })))).name, 'InvalidRequest');
    const catalogFiles = (await fs.readdir(pool)).filter((name) => name.startsWith('catalog'));
    for (const name of catalogFiles) {
      const bytes = await fs.readFile(path.join(pool, name));
      assert.ok(!bytes.includes(Buffer.from(alice.SSECustomerKey)) && !bytes.includes(Buffer.from(alice.SSECustomerKey, 'base64')), `${name} never holds the customer key`);
    }
    assert.deepEqual(await filesHolding(root, MARKER), []);
    assert.deepEqual(await filesHolding(root, Buffer.from(alice.SSECustomerKey, 'base64')), [], 'the customer key is on no disk');
  });

  await t.test('range GETs of encrypted objects answer the plaintext bytes, across chunk boundaries', async () => {
    const ranges: ReadonlyArray<[string, number, number]> = [
      ['bytes=0-0', 0, 1],
      ['bytes=65530-65545', 65530, 65546],
      ['bytes=65536-131071', 65536, 131072],
      ['bytes=100-190000', 100, 190001],
      ['bytes=190000-999999', 190000, data.length],
      [`bytes=${data.length - 1}-`, data.length - 1, data.length],
      ['bytes=-1300', data.length - 1300, data.length],
    ];
    for (const [range, start, end] of ranges) {
      const s3Range = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-s3', Range: range }));
      assert.equal(s3Range.ContentRange, `bytes ${start}-${end - 1}/${data.length}`, range);
      assert.ok((await bodyBytes(s3Range.Body)).equals(data.subarray(start, end)), `SSE-S3 ${range}`);
      assert.ok((await getBytes(s3, 'sse-c', { Range: range, ...ssec(alice) })).equals(data.subarray(start, end)), `SSE-C ${range}`);
    }
    const beyond = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'sse-s3', Range: `bytes=${data.length}-` })));
    assert.equal(beyond.$metadata.httpStatusCode, 416, 'a range past the plaintext is unsatisfiable');
  });

  await t.test('empty objects are encrypted too, and read back empty', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'empty-s3', Body: Buffer.alloc(0), ServerSideEncryption: 'AES256' }));
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'empty-c', Body: Buffer.alloc(0), ...ssec(alice) }));
    assert.equal((await getBytes(s3, 'empty-s3')).length, 0);
    assert.equal((await getBytes(s3, 'empty-c', ssec(alice))).length, 0);
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'empty-c', ...ssec(alice) }))).ContentLength, 0);
  });

  await t.test('multipart uploads with SSE-C (every part carries the key) and with SSE-S3', async () => {
    const parts = [markedBytes(5 * MiB + 3), randomBytes(70_000)];
    const whole = Buffer.concat(parts);
    for (const kind of ['SSE-C', 'SSE-S3'] as const) {
      const key = `multi-${kind}`;
      const encryption = kind === 'SSE-C' ? ssec(alice) : {};
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: key, ...(kind === 'SSE-C' ? encryption : { ServerSideEncryption: 'AES256' }) }));
      if (kind === 'SSE-C') assert.equal(created.SSECustomerKeyMD5, alice.md5);
      else assert.equal(created.ServerSideEncryption, 'AES256');
      const uploadId = created.UploadId as string;
      if (kind === 'SSE-C') {
        const bare = await s3Error(s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: key, UploadId: uploadId, PartNumber: 1, Body: parts[0] })));
        assert.equal(bare.name, 'InvalidRequest', 'a part of an SSE-C upload without the key');
        const other = await s3Error(s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: key, UploadId: uploadId, PartNumber: 1, Body: parts[0], ...ssec(customerKey()) })));
        assert.equal(other.name, 'InvalidRequest', 'a part with another key');
      }
      const etags: string[] = [];
      for (const [index, part] of parts.entries()) {
        const uploaded = await s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: key, UploadId: uploadId, PartNumber: index + 1, Body: part, ...encryption }));
        etags.push(uploaded.ETag as string);
      }
      const completed = await s3.send(
        new CompleteMultipartUploadCommand({ Bucket: 'bkt', Key: key, UploadId: uploadId, MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) } }),
      );
      assert.match(completed.ETag ?? '', /-2"$/);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key, ...encryption }));
      assert.equal(got.ContentLength, whole.length);
      assert.ok((await bodyBytes(got.Body)).equals(whole), `${kind} multipart object reads back whole`);
      const across = 5 * MiB - 10;
      assert.ok((await getBytes(s3, key, { Range: `bytes=${across}-${across + 100}`, ...encryption })).equals(whole.subarray(across, across + 101)), `${kind} range across parts`);
      const second = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key, PartNumber: 2, ...encryption }));
      assert.equal(second.PartsCount, 2);
      assert.ok((await bodyBytes(second.Body)).equals(parts[1] as Buffer), `${kind} part 2`);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'bkt', Prefix: key }));
      assert.equal(listed.Contents?.[0]?.Size, whole.length);
      if (kind === 'SSE-C') assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key })))).name, 'InvalidRequest');
    }
    assert.deepEqual(await filesHolding(root, MARKER), []);
  });

  await t.test('CopyObject decrypts its source with the source key and encrypts the target as asked', async () => {
    const bob = customerKey();
    // SSE-C → SSE-S3
    const toS3 = await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-s3', CopySource: '/bkt/sse-c', ...copySourceSsec(alice), ServerSideEncryption: 'AES256' }));
    assert.equal(toS3.ServerSideEncryption, 'AES256');
    assert.equal(toS3.CopyObjectResult?.ETag, `"${md5(data).toString('hex')}"`, 'out of SSE-C, the ETag is the MD5 of the plaintext again');
    assert.ok((await getBytes(s3, 'copy-s3')).equals(data));
    // SSE-S3 → SSE-C with another key
    const toC = await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-c', CopySource: '/bkt/copy-s3', ...ssec(bob) }));
    assert.equal(toC.SSECustomerKeyMD5, bob.md5);
    assert.ok((await getBytes(s3, 'copy-c', ssec(bob))).equals(data));
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'copy-c', ...ssec(alice) })))).name, 'AccessDenied');
    // SSE-C → plaintext (no target encryption asked: none)
    await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-plain', CopySource: '/bkt/copy-c', ...copySourceSsec(bob) }));
    const plain = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'copy-plain' }));
    assert.equal(plain.ServerSideEncryption, undefined);
    assert.ok((await bodyBytes(plain.Body)).equals(data));
    // An object re-encrypted onto itself (a change of encryption is a change).
    await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-plain', CopySource: '/bkt/copy-plain', ...ssec(alice) }));
    assert.ok((await getBytes(s3, 'copy-plain', ssec(alice))).equals(data));
    // The source's key is required to copy an SSE-C object, and must be the right one.
    assert.equal((await s3Error(s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-x', CopySource: '/bkt/sse-c' })))).name, 'InvalidRequest');
    assert.equal((await s3Error(s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-x', CopySource: '/bkt/sse-c', ...copySourceSsec(bob) })))).name, 'AccessDenied');
    assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'copy-x' })))).name, 'NotFound');
    // A multipart SSE-C object copied to SSE-S3 keeps its part layout.
    const copiedMulti = await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-multi', CopySource: '/bkt/multi-SSE-C', ...copySourceSsec(alice), ServerSideEncryption: 'AES256' }));
    assert.match(copiedMulti.CopyObjectResult?.ETag ?? '', /-2"$/);
    assert.equal((await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'copy-multi', PartNumber: 2 }))).ContentLength, 70_000);
    assert.deepEqual(await filesHolding(root, MARKER), [], 'copies into encryption leave no plaintext either');
  });

  await t.test('SSE-KMS, malformed SSE headers and bucket default encryption are refused, never ignored', async () => {
    const refused: ReadonlyArray<[Record<string, string>, number, string]> = [
      [{ 'x-amz-server-side-encryption': 'aws:kms' }, 501, 'NotImplemented'],
      [{ 'x-amz-server-side-encryption': 'aws:kms:dsse' }, 501, 'NotImplemented'],
      [{ 'x-amz-server-side-encryption': 'AES256', 'x-amz-server-side-encryption-bucket-key-enabled': 'true' }, 501, 'NotImplemented'],
      [{ 'x-amz-server-side-encryption': 'DES' }, 400, 'InvalidArgument'],
      [{ 'x-amz-server-side-encryption-customer-algorithm': 'AES128', 'x-amz-server-side-encryption-customer-key': alice.SSECustomerKey, 'x-amz-server-side-encryption-customer-key-md5': alice.md5 }, 400, 'InvalidEncryptionAlgorithmError'],
      [{ 'x-amz-server-side-encryption-customer-algorithm': 'AES256', 'x-amz-server-side-encryption-customer-key': randomBytes(16).toString('base64'), 'x-amz-server-side-encryption-customer-key-md5': alice.md5 }, 400, 'InvalidArgument'],
      [{ 'x-amz-server-side-encryption-customer-algorithm': 'AES256', 'x-amz-server-side-encryption-customer-key': alice.SSECustomerKey }, 400, 'InvalidArgument'],
      [{ 'x-amz-server-side-encryption': 'AES256', 'x-amz-server-side-encryption-customer-algorithm': 'AES256', 'x-amz-server-side-encryption-customer-key': alice.SSECustomerKey, 'x-amz-server-side-encryption-customer-key-md5': alice.md5 }, 400, 'InvalidArgument'],
      [{ 'x-amz-copy-source-server-side-encryption-customer-algorithm': 'AES256' }, 400, 'InvalidArgument'],
    ];
    for (const [headers, status, code] of refused) {
      const answer = await raw({ method: 'PUT', path: '/bkt/refused', headers, body: 'plaintext' });
      assert.equal(answer.status, status, JSON.stringify(headers));
      assert.match(answer.body.toString(), new RegExp(`<Code>${code}</Code>`), JSON.stringify(headers));
    }
    assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'refused' })))).name, 'NotFound');
    const sseOnGet = await raw({ method: 'GET', path: '/bkt/sse-s3', headers: { 'x-amz-server-side-encryption': 'AES256' } });
    assert.equal(sseOnGet.status, 400, 'SSE-S3 is not asked for on a read');
    const defaults = await s3Error(
      s3.send(new PutBucketEncryptionCommand({ Bucket: 'bkt', ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } })),
    );
    assert.equal(defaults.$metadata.httpStatusCode, 501, 'bucket default encryption is refused');
  });
});
