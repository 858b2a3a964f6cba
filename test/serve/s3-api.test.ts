// The S3 API as a real client sees it: @aws-sdk/client-s3 against `shardpool serve` in a child process.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { bodyBytes, md5, s3Client as client, s3Error } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;


test('the S3 API serves buckets, objects, ranges, listings and multipart uploads to the AWS SDK', async (t) => {
  const root = await makeTempDir(t, 's3');
  const pool = await createCliPool(root, { disks: 6, policy: 'ec:4+2' });
  const keys = await addUser(pool, 'alice');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = client(daemon.s3Endpoint, keys);
  t.after(() => s3.destroy());

  await t.test('buckets: create, list, duplicate, invalid name', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'photos' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'empty-one' }));
    const listed = await s3.send(new ListBucketsCommand({}));
    assert.deepEqual(listed.Buckets?.map((bucket) => bucket.Name), ['empty-one', 'photos']);
    // us-east-1 (the daemon's default region) answers 200 to a bucket its caller already owns.
    await s3.send(new CreateBucketCommand({ Bucket: 'photos' }));
    assert.equal((await s3Error(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })))).name, 'InvalidBucketName');
  });

  const data = randomBytes(300 * 1024 + 17);
  await t.test('PutObject with Content-MD5 and metadata; GetObject whole and by range; HeadObject', async () => {
    const put = await s3.send(
      new PutObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg', Body: data, ContentMD5: md5(data).toString('base64'), ContentType: 'image/jpeg', Metadata: { owner: 'alice' } }),
    );
    assert.equal(put.ETag, `"${md5(data).toString('hex')}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg' }));
    assert.deepEqual(await bodyBytes(got.Body), data);
    assert.equal(got.ContentType, 'image/jpeg');
    assert.equal(got.Metadata?.['owner'], 'alice');
    assert.equal(got.ETag, put.ETag);
    const ranged = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg', Range: 'bytes=65530-200000' }));
    assert.deepEqual(await bodyBytes(ranged.Body), data.subarray(65530, 200001));
    assert.equal(ranged.ContentRange, `bytes 65530-200000/${data.length}`);
    const suffix = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg', Range: 'bytes=-100' }));
    assert.deepEqual(await bodyBytes(suffix.Body), data.subarray(data.length - 100));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg' }));
    assert.equal(head.ContentLength, data.length);
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg', Range: `bytes=${data.length}-` })))).name, 'InvalidRange');
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'missing' })))).name, 'NoSuchKey');
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'nope', Key: 'x' })))).name, 'NoSuchBucket');
  });

  await t.test('a wrong Content-MD5 is refused with BadDigest and the object is unchanged', async () => {
    const other = randomBytes(1000);
    const error = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg', Body: other, ContentMD5: md5(data).toString('base64') })));
    assert.equal(error.name, 'BadDigest');
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'cats/tom.jpg' }));
    assert.deepEqual(await bodyBytes(got.Body), data);
  });

  await t.test('a large put into a missing bucket is answered NoSuchBucket, and the client carries on', async () => {
    const error = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: randomBytes(8 * MiB) })));
    assert.equal(error.name, 'NoSuchBucket');
    assert.equal(error.$metadata.httpStatusCode, 404);
    await s3.send(new ListBucketsCommand({}));
  });

  await t.test('a streamed body of unknown length is stored whole', async () => {
    const streamed = randomBytes(3 * MiB + 5);
    const body = Readable.from((function* () {
      for (let offset = 0; offset < streamed.length; offset += 256 * 1024) yield streamed.subarray(offset, offset + 256 * 1024);
    })());
    await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: 'streamed.bin', Body: body, ContentLength: streamed.length }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'streamed.bin' }));
    assert.deepEqual(await bodyBytes(got.Body), streamed);
  });

  await t.test('ListObjectsV2 with prefix, delimiter and continuation', async () => {
    for (const key of ['cats/felix.jpg', 'cats/kits/a.jpg', 'cats/kits/b.jpg', 'dogs/rex.jpg', 'readme.txt']) {
      await s3.send(new PutObjectCommand({ Bucket: 'photos', Key: key, Body: key }));
    }
    const top = await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Delimiter: '/' }));
    assert.deepEqual(top.CommonPrefixes?.map((entry) => entry.Prefix), ['cats/', 'dogs/']);
    assert.deepEqual(top.Contents?.map((entry) => entry.Key), ['readme.txt', 'streamed.bin']);
    const cats = await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'cats/', Delimiter: '/' }));
    assert.deepEqual(cats.Contents?.map((entry) => entry.Key), ['cats/felix.jpg', 'cats/tom.jpg']);
    assert.deepEqual(cats.CommonPrefixes?.map((entry) => entry.Prefix), ['cats/kits/']);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'photos', MaxKeys: 2, ContinuationToken: token }));
      seen.push(...(page.Contents ?? []).map((entry) => entry.Key as string));
      token = page.NextContinuationToken;
      pages += 1;
      assert.equal(page.IsTruncated, token !== undefined);
    } while (token !== undefined);
    assert.equal(pages, 4);
    assert.deepEqual(seen, ['cats/felix.jpg', 'cats/kits/a.jpg', 'cats/kits/b.jpg', 'cats/tom.jpg', 'dogs/rex.jpg', 'readme.txt', 'streamed.bin']);
    const size = top.Contents?.find((entry) => entry.Key === 'readme.txt')?.Size;
    assert.equal(size, 'readme.txt'.length);
  });

  await t.test('multipart upload: parts, list parts, complete with the S3 ETag; abort', async () => {
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'big/video.mp4', ContentType: 'video/mp4' }));
    const uploadId = created.UploadId as string;
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB + 3), randomBytes(1234)];
    const etags: string[] = [];
    for (const [index, part] of parts.entries()) {
      const uploaded = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'big/video.mp4', UploadId: uploadId, PartNumber: index + 1, Body: part }));
      etags.push(uploaded.ETag as string);
    }
    const listed = await s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'big/video.mp4', UploadId: uploadId }));
    assert.deepEqual(listed.Parts?.map((part) => [part.PartNumber, part.Size, part.ETag]), parts.map((part, index) => [index + 1, part.length, etags[index]]));
    // Parts are hidden pool objects: neither S3 listings nor the CLI's ls show them.
    const during = await s3.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: 'big/' }));
    assert.equal(during.KeyCount, 0);
    const completed = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'photos',
        Key: 'big/video.mp4',
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
        // A whole-object checksum header must not be taken for a checksum of the XML body.
        ChecksumCRC32: 'AAAAAA==',
      }),
    );
    const expectedEtag = `"${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-3"`;
    assert.equal(completed.ETag, expectedEtag);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'big/video.mp4' }));
    assert.deepEqual(await bodyBytes(got.Body), Buffer.concat(parts));
    assert.equal(got.ContentType, 'video/mp4');
    assert.equal(got.ETag, expectedEtag);
    assert.equal((await s3Error(s3.send(new ListPartsCommand({ Bucket: 'photos', Key: 'big/video.mp4', UploadId: uploadId })))).name, 'NoSuchUpload');

    const aborted = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'big/abandoned' }));
    await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'big/abandoned', UploadId: aborted.UploadId, PartNumber: 1, Body: randomBytes(1000) }));
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'photos' }));
    assert.deepEqual(open.Uploads?.map((upload) => [upload.Key, upload.UploadId]), [['big/abandoned', aborted.UploadId]]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'big/abandoned', UploadId: aborted.UploadId }));
    const tooSmall = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'photos', Key: 'big/small-parts' }));
    const small1 = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'big/small-parts', UploadId: tooSmall.UploadId, PartNumber: 1, Body: randomBytes(100) }));
    const small2 = await s3.send(new UploadPartCommand({ Bucket: 'photos', Key: 'big/small-parts', UploadId: tooSmall.UploadId, PartNumber: 2, Body: randomBytes(100) }));
    const error = await s3Error(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'photos',
          Key: 'big/small-parts',
          UploadId: tooSmall.UploadId,
          MultipartUpload: { Parts: [{ ETag: small1.ETag, PartNumber: 1 }, { ETag: small2.ETag, PartNumber: 2 }] },
        }),
      ),
    );
    assert.equal(error.name, 'EntityTooSmall');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'photos', Key: 'big/small-parts', UploadId: tooSmall.UploadId }));
  });

  await t.test('CopyObject, DeleteObject, DeleteObjects, DeleteBucket', async () => {
    const copied = await s3.send(new CopyObjectCommand({ Bucket: 'photos', Key: 'copies/tom.jpg', CopySource: 'photos/cats/tom.jpg' }));
    assert.equal(copied.CopyObjectResult?.ETag, `"${md5(data).toString('hex')}"`);
    assert.deepEqual(await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'copies/tom.jpg' }))).Body), data);
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'copies/tom.jpg' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'photos', Key: 'never-existed' }));
    assert.equal((await s3Error(s3.send(new DeleteBucketCommand({ Bucket: 'photos' })))).name, 'BucketNotEmpty');
    const all = await s3.send(new ListObjectsV2Command({ Bucket: 'photos' }));
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: 'photos', Delete: { Objects: (all.Contents ?? []).map((entry) => ({ Key: entry.Key })) } }));
    assert.equal(deleted.Deleted?.length, all.Contents?.length);
    assert.equal(deleted.Errors, undefined);
    await s3.send(new DeleteBucketCommand({ Bucket: 'photos' }));
    assert.deepEqual((await s3.send(new ListBucketsCommand({}))).Buckets?.map((bucket) => bucket.Name), ['empty-one']);
  });

  await t.test('presigned GET and PUT URLs work; tampered or expired ones are refused', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'shared' }));
    const payload = Buffer.from('presigned payload');
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'shared', Key: 'a b/ü+%.txt' }), { expiresIn: 60 });
    const put = await fetch(putUrl, { method: 'PUT', body: payload });
    assert.equal(put.status, 200, await put.text());
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'shared', Key: 'a b/ü+%.txt' }), { expiresIn: 60 });
    const got = await fetch(getUrl);
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), payload);
    const tampered = await fetch(getUrl.replace('X-Amz-Expires=60', 'X-Amz-Expires=61'));
    assert.equal(tampered.status, 403);
    assert.match(await tampered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
  });

  await t.test('unsigned, unknown-key and wrongly signed requests get 403 with an S3 XML error', async () => {
    const anonymous = await fetch(`${daemon.s3Endpoint}/shared/a`);
    assert.equal(anonymous.status, 403);
    assert.match(await anonymous.text(), /<Error><Code>AccessDenied<\/Code>/);
    const stranger = client(daemon.s3Endpoint, { accessKeyId: 'AKIDNOTAKEY000000000', secretAccessKey: 'x' });
    assert.equal((await s3Error(stranger.send(new ListBucketsCommand({})))).name, 'InvalidAccessKeyId');
    const wrongSecret = client(daemon.s3Endpoint, { accessKeyId: keys.accessKeyId, secretAccessKey: `${keys.secretAccessKey}x` });
    const error = await s3Error(wrongSecret.send(new ListBucketsCommand({})));
    assert.equal(error.name, 'SignatureDoesNotMatch');
    assert.equal(error.$metadata.httpStatusCode, 403);
    const wrongRegion = client(daemon.s3Endpoint, keys, 'eu-west-1');
    assert.equal((await s3Error(wrongRegion.send(new ListBucketsCommand({})))).$metadata.httpStatusCode, 400);
    stranger.destroy();
    wrongSecret.destroy();
    wrongRegion.destroy();
  });

  await t.test('a removed user is refused at once; user list shows no secrets', async () => {
    const bob = await addUser(pool, 'bob');
    const bobClient = client(daemon.s3Endpoint, bob);
    await bobClient.send(new ListBucketsCommand({}));
    const list = await runCliOk(['user', 'list', '--pool', pool, '--json']);
    const users = JSON.parse(list.stdout.toString('utf8')) as Array<Record<string, string>>;
    assert.deepEqual(users.map((user) => user.name), ['alice', 'bob']);
    assert.ok(!list.stdout.toString('utf8').includes(bob.secretAccessKey));
    await runCliOk(['user', 'rm', '--pool', pool, 'bob']);
    assert.equal((await s3Error(bobClient.send(new ListBucketsCommand({})))).name, 'InvalidAccessKeyId');
    const again = await runCli(['user', 'rm', '--pool', pool, 'bob']);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /USER_NOT_FOUND/);
    bobClient.destroy();
  });

  await t.test('a suffix range of an empty object is 416 InvalidRange; a non-numeric list limit is 400 InvalidArgument', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'limits' }));
    await s3.send(new PutObjectCommand({ Bucket: 'limits', Key: 'empty', Body: Buffer.alloc(0) }));
    const suffix = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'limits', Key: 'empty', Range: 'bytes=-5' })));
    assert.equal(suffix.name, 'InvalidRange');
    assert.equal(suffix.$metadata.httpStatusCode, 416);
    const uploadId = (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'limits', Key: 'k' }))).UploadId;
    /** The command with one query parameter set to a raw value the SDK's types would not allow (before signing). */
    const withQuery = <C extends { middlewareStack: { add: (...args: never[]) => unknown } }>(command: C, name: string, value: string): C => {
      (command.middlewareStack.add as (middleware: unknown, options: unknown) => void)(
        (next: (args: { request: { query: Record<string, string> } }) => unknown) => (args: { request: { query: Record<string, string> } }) => {
          args.request.query[name] = value;
          return next(args);
        },
        { step: 'build' },
      );
      return command;
    };
    for (const [command, name] of [
      [withQuery(new ListMultipartUploadsCommand({ Bucket: 'limits' }), 'max-uploads', 'abc'), 'max-uploads'],
      [withQuery(new ListMultipartUploadsCommand({ Bucket: 'limits' }), 'max-uploads', '-1'), 'max-uploads'],
      [withQuery(new ListObjectsV2Command({ Bucket: 'limits' }), 'max-keys', 'abc'), 'max-keys'],
      [withQuery(new ListPartsCommand({ Bucket: 'limits', Key: 'k', UploadId: uploadId }), 'max-parts', 'abc'), 'max-parts'],
      [withQuery(new ListPartsCommand({ Bucket: 'limits', Key: 'k', UploadId: uploadId }), 'part-number-marker', 'abc'), 'part-number-marker'],
    ] as const) {
      const error = await s3Error(s3.send(command as never));
      assert.equal(error.name, 'InvalidArgument', name);
      assert.equal(error.$metadata.httpStatusCode, 400, name);
    }
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'limits', Key: 'k', UploadId: uploadId }));
  });

  assert.equal(await daemon.stop('SIGTERM'), 0);
});
