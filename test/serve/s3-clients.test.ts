// What real S3 clients send beside what the AWS SDK for JavaScript does, and what they rely on S3 answering: against
// `shardpool serve` in a child process, with requests built by hand where no SDK call can express them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { bodyBytes, multipartEtag, s3Client, s3Error } from '../support/s3-client.js';
import { rawS3Request } from '../support/s3-raw.js';
import { makeTempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;

test('S3 answers real clients as S3 does', async (t) => {
  const root = await makeTempDir(t, 's3-clients');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const keys = await addUser(pool, 'alice');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = s3Client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());
  const raw = (request: Parameters<typeof rawS3Request>[2]) => rawS3Request(daemon.s3Endpoint, keys, request);
  await s3.send(new CreateBucketCommand({ Bucket: 'bkt' }));

  await t.test('DeleteObjects decodes numeric character references in keys: "a&#38;b" deletes a&b', async () => {
    for (const spelling of ['a&#38;b', 'a&#x26;b', 'a&amp;b']) {
      await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'a&b', Body: 'x' }));
      const answer = await raw({
        method: 'POST',
        path: '/bkt',
        query: { delete: '' },
        body: `<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>${spelling}</Key></Object></Delete>`,
      });
      assert.equal(answer.status, 200, answer.body.toString());
      assert.match(answer.body.toString(), /<Deleted><Key>a&amp;b<\/Key><\/Deleted>/);
      assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'a&b' })))).name, 'NotFound', spelling);
    }
  });

  await t.test('CompleteMultipartUpload accepts ETags quoted as Go (&#34;), Java (&quot;) and Python (raw) write them', async () => {
    for (const quote of ['&#34;', '&#x22;', '&quot;', '"']) {
      const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: 'multi' }));
      const part = randomBytes(1000);
      const uploaded = await s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: 'multi', UploadId: upload.UploadId, PartNumber: 1, Body: part }));
      const etag = (uploaded.ETag as string).replaceAll('"', quote);
      const answer = await raw({
        method: 'POST',
        path: '/bkt/multi',
        query: { uploadId: upload.UploadId as string },
        body: `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>${etag}</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`,
      });
      assert.equal(answer.status, 200);
      assert.doesNotMatch(answer.body.toString(), /<Error>/, quote);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'multi' }));
      assert.equal(got.ETag, multipartEtag([part]));
      assert.deepEqual(await bodyBytes(got.Body), part);
    }
  });

  void MiB;
  assert.equal(await daemon.stop('SIGTERM'), 0);
});
