// What real S3 clients send beside what the AWS SDK for JavaScript does, and what they rely on S3 answering: against
// `shardpool serve` in a child process, with requests built by hand where no SDK call can express them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { bodyBytes, hiddenPartKeys, multipartEtag, openCatalog, s3Client, s3Error } from '../support/s3-client.js';
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
  const text = async (key: string): Promise<string> => (await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key }))).Body)).toString();

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

  await t.test('encryption, ACLs beyond what is in force, tagging, storage classes and object lock are refused, never ignored', async () => {
    const refused: ReadonlyArray<[Record<string, string>, number, string]> = [
      // SSE-S3 and SSE-C are done (s3-sse.test.ts); SSE-KMS is refused, and so is an SSE-C key whose MD5 is wrong.
      [{ 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'k' }, 501, 'NotImplemented'],
      [{ 'x-amz-server-side-encryption': 'aws:kms' }, 501, 'NotImplemented'],
      [
        {
          'x-amz-server-side-encryption-customer-algorithm': 'AES256',
          'x-amz-server-side-encryption-customer-key': randomBytes(32).toString('base64'),
          'x-amz-server-side-encryption-customer-key-md5': randomBytes(16).toString('base64'),
        },
        400,
        'InvalidArgument',
      ],
      [{ 'x-amz-acl': 'public-read-write' }, 501, 'NotImplemented'],
      [{ 'x-amz-acl': 'no-such-acl' }, 400, 'InvalidArgument'],
      [{ 'x-amz-grant-read': 'uri="http://acs.amazonaws.com/groups/global/AllUsers"' }, 501, 'NotImplemented'],
      [{ 'x-amz-tagging': 'a=b' }, 501, 'NotImplemented'],
      [{ 'x-amz-storage-class': 'GLACIER' }, 501, 'NotImplemented'],
      [{ 'x-amz-storage-class': 'COLD' }, 400, 'InvalidStorageClass'],
      [{ 'x-amz-object-lock-mode': 'GOVERNANCE', 'x-amz-object-lock-retain-until-date': '2030-01-01T00:00:00Z' }, 501, 'NotImplemented'],
      [{ 'x-amz-object-lock-legal-hold': 'ON' }, 501, 'NotImplemented'],
      [{ 'x-amz-website-redirect-location': '/other' }, 501, 'NotImplemented'],
    ];
    for (const [headers, status, code] of refused) {
      const what = JSON.stringify(headers);
      const put = await raw({ method: 'PUT', path: '/bkt/refused', headers, body: 'plaintext' });
      assert.equal(put.status, status, what);
      assert.match(put.body.toString(), new RegExp(`<Code>${code}</Code>`), what);
      const multipart = await raw({ method: 'POST', path: '/bkt/refused', query: { uploads: '' }, headers });
      assert.equal(multipart.status, status, what);
      const copy = await raw({ method: 'PUT', path: '/bkt/refused', headers: { ...headers, 'x-amz-copy-source': '/bkt/multi' } });
      assert.equal(copy.status, status, what);
      assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'refused' })))).name, 'NotFound', what);
    }
    // What holds is accepted: no anonymous access (private), full control for the bucket's owner, STANDARD.
    for (const headers of [{ 'x-amz-acl': 'private' }, { 'x-amz-acl': 'bucket-owner-full-control' }, { 'x-amz-storage-class': 'STANDARD' }] as Array<Record<string, string>>) {
      assert.equal((await raw({ method: 'PUT', path: '/bkt/accepted', headers, body: 'x' })).status, 200, JSON.stringify(headers));
    }
    // A read asking to decrypt with a customer key an object stored without one: as S3 answers.
    const customerKey = randomBytes(32);
    const read = await raw({
      method: 'GET',
      path: '/bkt/accepted',
      headers: {
        'x-amz-server-side-encryption-customer-algorithm': 'AES256',
        'x-amz-server-side-encryption-customer-key': customerKey.toString('base64'),
        'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(customerKey).digest('base64'),
      },
    });
    assert.equal(read.status, 400);
    assert.match(read.body.toString(), /<Code>InvalidRequest<\/Code>/);
    assert.equal((await raw({ method: 'PUT', path: '/public-bucket', headers: { 'x-amz-acl': 'public-read-write' } })).status, 501);
    assert.equal((await raw({ method: 'PUT', path: '/locked-bucket', headers: { 'x-amz-bucket-object-lock-enabled': 'true' } })).status, 501);
    assert.equal((await raw({ method: 'PUT', path: '/private-bucket', headers: { 'x-amz-acl': 'private' } })).status, 200);
    // Versions: only "null" exists.
    assert.equal((await raw({ method: 'GET', path: '/bkt/accepted', query: { versionId: 'null' } })).status, 200);
    const version = await raw({ method: 'GET', path: '/bkt/accepted', query: { versionId: '3HL4kqtJlcpXroDTDmJ' } });
    assert.equal(version.status, 404);
    assert.match(version.body.toString(), /<Code>NoSuchVersion<\/Code>/);
  });

  await t.test('If-None-Match: * and If-Match on PutObject and CompleteMultipartUpload are honoured', async () => {
    const first = await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'cond', Body: 'first', IfNoneMatch: '*' }));
    const refused = await s3Error(s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'cond', Body: 'second', IfNoneMatch: '*' })));
    assert.equal(refused.name, 'PreconditionFailed');
    assert.equal(refused.$metadata.httpStatusCode, 412);
    assert.equal((await s3Error(s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'cond', Body: 'third', IfMatch: '"0123"' })))).name, 'PreconditionFailed');
    assert.equal(await text('cond'), 'first');
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'cond', Body: 'fourth', IfMatch: first.ETag }));
    assert.equal(await text('cond'), 'fourth');
    assert.equal((await s3Error(s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'no-such-key', Body: 'x', IfMatch: first.ETag })))).name, 'NoSuchKey');
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: 'cond' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: 'cond', UploadId: upload.UploadId, PartNumber: 1, Body: 'part' }));
    const complete = (headers: Record<string, string>) =>
      raw({
        method: 'POST',
        path: '/bkt/cond',
        query: { uploadId: upload.UploadId as string },
        headers,
        body: `<CompleteMultipartUpload><Part><ETag>${part.ETag as string}</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`,
      });
    const completeRefused = await complete({ 'if-none-match': '*' });
    assert.equal(completeRefused.status, 412);
    assert.match(completeRefused.body.toString(), /<Code>PreconditionFailed<\/Code>/);
    assert.equal(await text('cond'), 'fourth');
    assert.equal((await complete({ 'if-match': '"ffff"' })).status, 412);
    assert.equal((await complete({ 'if-match': '*' })).status, 200);
    assert.equal(await text('cond'), 'part');
  });

  await t.test('CopyObject honours x-amz-copy-source-if-match, -if-none-match, -if-modified-since and -if-unmodified-since', async () => {
    const source = await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'copy-source', Body: 'source' }));
    const etag = source.ETag as string;
    const past = new Date(Date.now() - 3600_000);
    const future = new Date(Date.now() + 3600_000);
    const copy = (conditions: Partial<ConstructorParameters<typeof CopyObjectCommand>[0]>) =>
      s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'copy-target', CopySource: 'bkt/copy-source', ...conditions }));
    for (const conditions of [
      { CopySourceIfMatch: '"0123"' },
      { CopySourceIfNoneMatch: etag },
      { CopySourceIfModifiedSince: future },
      { CopySourceIfUnmodifiedSince: past },
      { CopySourceIfNoneMatch: etag, CopySourceIfModifiedSince: past },
    ]) {
      const error = await s3Error(copy(conditions));
      assert.equal(error.$metadata.httpStatusCode, 412, JSON.stringify(conditions));
      assert.equal((await s3Error(s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'copy-target' })))).name, 'NotFound');
    }
    // If-Match decides over If-Unmodified-Since, as S3 documents.
    for (const conditions of [{ CopySourceIfMatch: etag }, { CopySourceIfNoneMatch: '"0123"' }, { CopySourceIfModifiedSince: past }, { CopySourceIfUnmodifiedSince: future }, { CopySourceIfMatch: etag, CopySourceIfUnmodifiedSince: past }]) {
      await copy(conditions);
      assert.equal(await text('copy-target'), 'source');
      await s3.send(new DeleteObjectCommand({ Bucket: 'bkt', Key: 'copy-target' }));
    }
  });

  await t.test('a retried CompleteMultipartUpload that already succeeded answers 200 with the same result; repeated part numbers are InvalidPartOrder', async () => {
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: 'retried' }));
    const parts = [randomBytes(5 * MiB), randomBytes(1000)];
    const etags: string[] = [];
    for (const [index, part] of parts.entries()) {
      etags.push((await s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: 'retried', UploadId: upload.UploadId, PartNumber: index + 1, Body: part }))).ETag as string);
    }
    const complete = (numbers: number[]) =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'bkt',
          Key: 'retried',
          UploadId: upload.UploadId,
          MultipartUpload: { Parts: numbers.map((number) => ({ PartNumber: number, ETag: etags[number - 1] })) },
        }),
      );
    assert.equal((await s3Error(complete([1, 1, 2]))).name, 'InvalidPartOrder');
    assert.equal((await s3Error(complete([2, 1]))).name, 'InvalidPartOrder');
    const first = await complete([1, 2]);
    const again = await complete([1, 2]);
    assert.equal(again.ETag, first.ETag);
    assert.equal(again.ETag, multipartEtag(parts));
    assert.equal(again.Key, 'retried');
    assert.equal(again.Bucket, 'bkt');
    // The retry as rclone (Go's encoding/xml) spells it: the same answer, not 404 NoSuchUpload.
    const goRetry = await raw({
      method: 'POST',
      path: '/bkt/retried',
      query: { uploadId: upload.UploadId as string },
      body: `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${etags
        .map((etag, index) => `<Part><ETag>${etag.replaceAll('"', '&#34;')}</ETag><PartNumber>${index + 1}</PartNumber></Part>`)
        .join('')}</CompleteMultipartUpload>`,
    });
    assert.equal(goRetry.status, 200, goRetry.body.toString());
    assert.match(goRetry.body.toString(), new RegExp(`<ETag>${(first.ETag as string).replaceAll('"', '&quot;')}</ETag>`));
  });

  await t.test('ListObjects (V1) with encoding-type=url leaves its Prefix as given; V2 encodes it', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'dir one/a+b', Body: 'x' }));
    const v1 = await raw({ method: 'GET', path: '/bkt', query: { prefix: 'dir one/', 'encoding-type': 'url' } });
    assert.match(v1.body.toString(), /<Prefix>dir one\/<\/Prefix>/);
    assert.match(v1.body.toString(), /<Key>dir%20one\/a%2Bb<\/Key>/);
    const v2 = await raw({ method: 'GET', path: '/bkt', query: { 'list-type': '2', prefix: 'dir one/', 'encoding-type': 'url' } });
    assert.match(v2.body.toString(), /<Prefix>dir%20one\/<\/Prefix>/);
  });

  await t.test('ListBuckets pages with max-buckets and continuation-token, and filters by prefix; CreateBucket of an owned bucket is 200', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) await s3.send(new CreateBucketCommand({ Bucket: name }));
    assert.equal((await raw({ method: 'PUT', path: '/page-a' })).status, 200, 'us-east-1 answers 200 for a bucket you own');
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await s3.send(new ListBucketsCommand({ MaxBuckets: 2, Prefix: 'page-', ContinuationToken: token }));
      names.push(...(page.Buckets ?? []).map((bucket) => bucket.Name as string));
      token = page.ContinuationToken;
      pages += 1;
    } while (token !== undefined);
    assert.deepEqual(names, ['page-a', 'page-b', 'page-c']);
    assert.equal(pages, 2);
    assert.equal((await raw({ method: 'GET', path: '/', query: { 'max-buckets': '0' } })).status, 400);
  });

  await t.test('Expect: an empty header is no expectation; 100 Continue only once a request is authenticated and its body wanted', async () => {
    const empty = await raw({ method: 'PUT', path: '/bkt/expect-empty', headers: { expect: '' }, body: 'x' });
    assert.equal(empty.status, 200);
    const anonymous = await raw({ method: 'PUT', path: '/bkt/expect-anonymous', sign: false, expectContinue: true, body: 'secret' });
    assert.equal(anonymous.status, 403);
    assert.equal(anonymous.continued, false, 'no 100 Continue before the 403');
    const missingBucket = await raw({ method: 'PUT', path: '/no-such-bucket/k', expectContinue: true, body: 'x' });
    assert.equal(missingBucket.status, 404);
    assert.equal(missingBucket.continued, false);
    const accepted = await raw({ method: 'PUT', path: '/bkt/expect-ok', expectContinue: true, body: 'body' });
    assert.equal(accepted.status, 200);
    assert.equal(accepted.continued, true);
    assert.equal(await text('expect-ok'), 'body');
  });

  await t.test('a raw Latin-1 byte in an x-amz-meta-* value is signed as sent and comes back as sent', async () => {
    const put = await raw({ method: 'PUT', path: '/bkt/latin1', headers: { 'x-amz-meta-city': 'Z\u00fcrich' }, body: 'x' });
    assert.equal(put.status, 200, put.body.toString());
    const head = await raw({ method: 'HEAD', path: '/bkt/latin1' });
    assert.equal(head.headers['x-amz-meta-city'], 'Z\u00fcrich');
  });

  await t.test('a bucket holding only unfinished multipart uploads is deleted with them, and their parts freed', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'uploads-only' }));
    for (const key of ['one', 'two']) {
      const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads-only', Key: key }));
      await s3.send(new UploadPartCommand({ Bucket: 'uploads-only', Key: key, UploadId: upload.UploadId, PartNumber: 1, Body: randomBytes(100_000) }));
    }
    await s3.send(new DeleteBucketCommand({ Bucket: 'uploads-only' }));
    assert.equal((await s3Error(s3.send(new ListMultipartUploadsCommand({ Bucket: 'uploads-only' })))).name, 'NoSuchBucket');
    const catalog = await openCatalog(pool);
    try {
      assert.deepEqual(await hiddenPartKeys(catalog), []);
      assert.deepEqual(await catalog.listGarbage(), [], 'the parts were collected, not left queued');
    } finally {
      await catalog.close();
    }
    await s3.send(new CreateBucketCommand({ Bucket: 'uploads-only' }));
    assert.equal((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'uploads-only' }))).Uploads, undefined, 'the uploads did not come back with the name');
  });

  await t.test('Cache-Control, Content-Disposition, Content-Encoding, Content-Language and Expires are stored, copied and returned; response-* overrides them', async () => {
    const stored = {
      CacheControl: 'max-age=60',
      ContentDisposition: 'attachment; filename="a.txt"',
      ContentEncoding: 'gzip',
      ContentLanguage: 'de',
      Expires: new Date('2037-01-01T00:00:00Z'),
    };
    const same = (got: { CacheControl?: string; ContentDisposition?: string; ContentEncoding?: string; ContentLanguage?: string; ExpiresString?: string }, what: string) =>
      assert.deepEqual(
        [got.CacheControl, got.ContentDisposition, got.ContentEncoding, got.ContentLanguage, got.ExpiresString],
        [stored.CacheControl, stored.ContentDisposition, stored.ContentEncoding, stored.ContentLanguage, stored.Expires.toUTCString()],
        what,
      );
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'headers', Body: 'h', ...stored }));
    same(await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'headers' })), 'HEAD');
    same(await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'headers' })), 'GET');
    await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'headers-copy', CopySource: 'bkt/headers' }));
    same(await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'headers-copy' })), 'CopyObject COPY');
    await s3.send(new CopyObjectCommand({ Bucket: 'bkt', Key: 'headers-copy', CopySource: 'bkt/headers', MetadataDirective: 'REPLACE', CacheControl: 'no-store' }));
    const replaced = await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'headers-copy' }));
    assert.equal(replaced.CacheControl, 'no-store');
    assert.equal(replaced.ContentLanguage, undefined, 'REPLACE takes only what the request gives');
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: 'headers-multi', ...stored }));
    const part = await s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: 'headers-multi', UploadId: upload.UploadId, PartNumber: 1, Body: 'p' }));
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: 'bkt', Key: 'headers-multi', UploadId: upload.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }),
    );
    same(await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'headers-multi' })), 'multipart');
    const overridden = await s3.send(
      new GetObjectCommand({
        Bucket: 'bkt',
        Key: 'headers',
        ResponseContentType: 'text/x-override',
        ResponseContentLanguage: 'fr',
        ResponseExpires: new Date('2030-01-01T00:00:00Z'),
        ResponseCacheControl: 'no-cache',
        ResponseContentDisposition: 'inline',
        ResponseContentEncoding: 'identity',
      }),
    );
    assert.deepEqual(
      [overridden.ContentType, overridden.ContentLanguage, overridden.ExpiresString, overridden.CacheControl, overridden.ContentDisposition, overridden.ContentEncoding],
      ['text/x-override', 'fr', 'Tue, 01 Jan 2030 00:00:00 GMT', 'no-cache', 'inline', 'identity'],
    );
  });

  await t.test('GET and HEAD ?partNumber=N answer that part of a multipart object with x-amz-mp-parts-count', async () => {
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB + 1), randomBytes(1000)];
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'bkt', Key: 'parted' }));
    const etags: string[] = [];
    for (const [index, part] of parts.entries()) {
      etags.push((await s3.send(new UploadPartCommand({ Bucket: 'bkt', Key: 'parted', UploadId: upload.UploadId, PartNumber: index + 1, Body: part }))).ETag as string);
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'bkt',
        Key: 'parted',
        UploadId: upload.UploadId,
        MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
      }),
    );
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'parted', PartNumber: 2 }));
    assert.equal(head.PartsCount, 3);
    assert.equal(head.ContentLength, parts[1]?.length);
    assert.equal(head.ContentRange, `bytes ${5 * MiB}-${10 * MiB}/${total}`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'parted', PartNumber: 3 }));
    assert.equal(got.$metadata.httpStatusCode, 206);
    assert.equal(got.PartsCount, 3);
    assert.deepEqual(await bodyBytes(got.Body), parts[2]);
    const beyond = await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'parted', PartNumber: 4 })));
    assert.equal(beyond.$metadata.httpStatusCode, 416);
    assert.equal(beyond.name, 'InvalidPartNumber');
    // An object put whole is its own one part.
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'whole', Body: 'whole object' }));
    const whole = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'whole', PartNumber: 1 }));
    assert.equal((await bodyBytes(whole.Body)).toString(), 'whole object');
    assert.equal(whole.PartsCount, undefined);
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'whole', PartNumber: 2 })))).$metadata.httpStatusCode, 416);
    assert.equal((await s3Error(s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'whole', PartNumber: 1, Range: 'bytes=0-1' })))).name, 'InvalidRequest');
  });

  assert.equal(await daemon.stop('SIGTERM'), 0);
});
