// Signature Version 4 against the real clients: requests the AWS SDK for JavaScript v3 (@aws-sdk/client-s3) and its
// presigner send over HTTP to a node:http server that verifies them as the S3 server does — odd keys, list queries,
// presigned GET and PUT URLs — and the answers a tampered, expired, skewed or wrongly scoped request gets.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, beforeEach, test } from 'node:test';
import {
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { S3Error } from '../../../src/serve/s3/s3-error.js';
import { createPayloadHashCheck, type SignedRequest } from '../../../src/serve/s3/sigv4.js';
import { ACCESS_KEY, startSigningServer, type SigningServer } from './signing-server.js';

const ODD_KEYS = [
  'a b/ü+%.txt',
  'plain.txt',
  "sp ace/%2F/tilde~star*(paren)!'quote",
  'emoji 😀/ä€',
  'double//slash/',
  'question?hash#&=;:@$,.txt',
  '+plus+ =equals=',
  'dot/./dotdot/../x',
];

let server: SigningServer;
before(async () => {
  server = await startSigningServer();
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.tamper = undefined;
  server.nowMs = () => Date.now();
  server.received.length = 0;
});

/** The S3 error code the SDK surfaced (its `name`), after checking the server refused for that reason. */
async function sdkErrorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const code = (error as Error).name;
    assert.equal(server.last().error?.code, code, 'the SDK shows the code the server answered');
    return code;
  }
  assert.fail('the request succeeded');
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('PutObject and GetObject from the AWS SDK verify whatever the key, with the body checked against its signed SHA-256', async () => {
  const client = server.client();
  for (const key of ODD_KEYS) {
    const body = Buffer.from(`the body of ${key}`);
    await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: key, Body: body }));
    const put = server.last();
    assert.equal(put.error, undefined, `put ${key}: ${put.error?.message}`);
    assert.equal(put.verified?.accessKeyId, ACCESS_KEY);
    assert.deepEqual(put.verified?.payload, { kind: 'sha256', hexDigest: sha256Hex(body) });
    assert.deepEqual(put.body, body);
    await client.send(new GetObjectCommand({ Bucket: 'bucket', Key: key }));
    assert.equal(server.last().error, undefined, `get ${key}`);
  }
  await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'empty' }));
  assert.deepEqual(server.last().verified?.payload, { kind: 'sha256', hexDigest: sha256Hex('') });
  await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'crc32c', Body: 'x', ChecksumAlgorithm: 'CRC32C' }));
  assert.equal(server.last().error, undefined, server.last().error?.message);
  assert.ok(server.last().signed.headers['x-amz-checksum-crc32c'] !== undefined);
  assert.deepEqual(server.last().body, Buffer.from('x'));
});

test('list queries, sub-resources and multipart queries verify: prefixes and tokens with spaces, plus signs, slashes and =', async () => {
  const client = server.client();
  for (const prefix of ['', 'a b+c/ü=&?#%', '+', '%2B', 'x'.repeat(300)]) {
    await client.send(
      new ListObjectsV2Command({ Bucket: 'bucket', Prefix: prefix, Delimiter: '/', ContinuationToken: '1/+=abc== x', StartAfter: 'x y', EncodingType: 'url', MaxKeys: 7 }),
    );
    assert.equal(server.last().error, undefined, `prefix ${JSON.stringify(prefix)}: ${server.last().error?.message}`);
  }
  assert.match(server.last().signed.rawQuery, /continuation-token=1%2F%2B%3Dabc%3D%3D%20x/);
  // CreateMultipartUpload: an empty `uploads` parameter and an x-amz-checksum-algorithm header, which names no digest.
  await client.send(new CreateMultipartUploadCommand({ Bucket: 'bucket', Key: 'a b/ü+%.txt', ChecksumAlgorithm: 'CRC32' }));
  assert.equal(server.last().error, undefined, server.last().error?.message);
  assert.equal(server.last().signed.headers['x-amz-checksum-algorithm'], 'CRC32');
  await client.send(new UploadPartCommand({ Bucket: 'bucket', Key: 'a b/ü+%.txt', UploadId: 'u+/= id', PartNumber: 3, Body: Buffer.alloc(1000, 'p') }));
  assert.equal(server.last().error, undefined, server.last().error?.message);
  assert.deepEqual(server.last().body, Buffer.alloc(1000, 'p'));
  await client.send(new DeleteObjectsCommand({ Bucket: 'bucket', Delete: { Objects: [{ Key: 'a' }, { Key: 'b c' }] } }));
  assert.equal(server.last().error, undefined, server.last().error?.message);
  assert.match(server.last().body?.toString() ?? '', /<Key>b c<\/Key>/);
});

test('presigned GET and PUT URLs verify for odd keys and response overrides, and expire', async () => {
  const client = server.client();
  // fetch (a WHATWG URL) resolves '.' and '..' path segments before sending, so such a key cannot go through it.
  for (const key of ODD_KEYS.filter((key) => !/(^|\/)\.\.?\//.test(key))) {
    const getUrl = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'bucket', Key: key, ResponseContentDisposition: 'attachment; filename="a b+c.txt"' }), {
      expiresIn: 60,
    });
    assert.equal((await fetch(getUrl)).status, 200, `GET ${key}: ${server.last().error?.message}`);
    assert.deepEqual(server.last().verified?.payload, { kind: 'unsigned' });
    const putUrl = await getSignedUrl(client, new PutObjectCommand({ Bucket: 'bucket', Key: key }), { expiresIn: 60 });
    const putResponse = await fetch(putUrl, { method: 'PUT', body: `body of ${key}` });
    assert.equal(putResponse.status, 200, `PUT ${key}: ${server.last().error?.message}`);
    // The presigner signs the CRC32 of an empty body into the query (x-amz-checksum-crc32=AAAAAA==): a query checksum
    // must not be held against the body, or no presigned PUT with content would succeed.
    assert.match(server.last().signed.rawQuery, /x-amz-checksum-crc32=AAAAAA%3D%3D/);
    assert.deepEqual(server.last().body, Buffer.from(`body of ${key}`));
  }
  const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'bucket', Key: 'a b/ü+%.txt' }), { expiresIn: 60 });
  server.nowMs = () => Date.now() + 61_000;
  const expired = await fetch(url);
  assert.equal(expired.status, 403);
  assert.equal(server.last().error?.code, 'AccessDenied');
  assert.match(await expired.text(), /Request has expired/);
  server.nowMs = () => Date.now();
  const tamperedKey = url.replace('/bucket/a%20b/', '/bucket/a%20c/');
  assert.equal((await fetch(tamperedKey)).status, 403);
  assert.equal(server.last().error?.code, 'SignatureDoesNotMatch');
  const tamperedQuery = `${url}&response-content-type=text%2Fhtml`;
  assert.equal((await fetch(tamperedQuery)).status, 403);
  assert.equal(server.last().error?.code, 'SignatureDoesNotMatch');
  const tooLong = url.replace('X-Amz-Expires=60', 'X-Amz-Expires=604801');
  assert.equal((await fetch(tooLong)).status, 400);
  assert.equal(server.last().error?.code, 'AuthorizationQueryParametersError');
});

test('a request changed after signing — a header, the path, the query, the method — is refused with SignatureDoesNotMatch', async () => {
  const client = server.client();
  const tampers: Array<[string, (request: SignedRequest) => SignedRequest]> = [
    ['header', (request) => ({ ...request, headers: { ...request.headers, 'content-type': 'text/html' } })],
    ['path', (request) => ({ ...request, rawPath: request.rawPath.replace('%C3%BC', '%C3%BD') })],
    ['path encoding', (request) => ({ ...request, rawPath: request.rawPath.replace('%2B', '%20') })],
    ['query', (request) => ({ ...request, rawQuery: request.rawQuery.replace('x-id=PutObject', 'x-id=PutObjekt') })],
    ['method', (request) => ({ ...request, method: 'POST' })],
    ['host', (request) => ({ ...request, headers: { ...request.headers, host: 'evil.example:80' } })],
  ];
  for (const [what, tamper] of tampers) {
    server.tamper = tamper;
    const code = await sdkErrorCode(client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'a b/ü+%.txt', Body: 'x', ContentType: 'text/plain' })));
    assert.equal(code, 'SignatureDoesNotMatch', what);
  }
});

test('an unknown key, another secret, another region, a skewed clock, or no signature at all is refused with the S3 code', async () => {
  const put = () => new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: 'x' });
  assert.equal(await sdkErrorCode(server.client({ credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } }).send(put())), 'InvalidAccessKeyId');
  assert.equal(await sdkErrorCode(server.client({ credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: 'wrong' } }).send(put())), 'SignatureDoesNotMatch');
  assert.equal(await sdkErrorCode(server.client({ region: 'eu-west-1' }).send(put())), 'AuthorizationHeaderMalformed');
  assert.match(server.last().error?.message ?? '', /expecting 'us-east-1'/);
  server.nowMs = () => Date.now() + 16 * 60_000;
  assert.equal(await sdkErrorCode(server.client().send(put())), 'RequestTimeTooSkewed');
  server.nowMs = () => Date.now() - 16 * 60_000;
  assert.equal(await sdkErrorCode(server.client().send(put())), 'RequestTimeTooSkewed');
  server.nowMs = () => Date.now() + 14 * 60_000;
  await server.client().send(put());

  const plain = await fetch(`${server.endpoint}/bucket/k`);
  assert.equal(plain.status, 403);
  assert.equal(server.last().error?.code, 'AccessDenied');
  const v2 = await fetch(`${server.endpoint}/bucket/k`, { headers: { authorization: 'AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=' } });
  assert.equal(v2.status, 400);
  assert.match(await v2.text(), /Signature Version 4/);
  const v2Query = await fetch(`${server.endpoint}/bucket/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1&Signature=x`);
  assert.equal(v2Query.status, 400);
  const malformed = await fetch(`${server.endpoint}/bucket/k`, { headers: { authorization: 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request' } });
  assert.equal(malformed.status, 400);
  assert.equal(server.last().error?.code, 'AuthorizationHeaderMalformed');
});

test('the host header must be signed, and a header-signed request must declare x-amz-content-sha256', async () => {
  const client = server.client();
  server.tamper = (request) => ({
    ...request,
    headers: { ...request.headers, authorization: String(request.headers.authorization).replace('host;', '') },
  });
  assert.equal(await sdkErrorCode(client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: 'x' }))), 'AccessDenied');
  server.tamper = (request) => {
    const headers = { ...request.headers };
    delete headers['x-amz-content-sha256'];
    return { ...request, headers };
  };
  assert.equal(await sdkErrorCode(client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: 'x' }))), 'InvalidRequest');
});

test('a body that does not hash to the signed x-amz-content-sha256 errors the stream at its end', async () => {
  const check = (body: string, expected: string) =>
    pipeline(
      Readable.from([Buffer.from(body)]),
      createPayloadHashCheck(expected),
      new Writable({ write: (_chunk, _encoding, done) => done() }),
    );
  await check('hello', sha256Hex('hello'));
  await check('hello', sha256Hex('hello').toUpperCase());
  await assert.rejects(check('hellO', sha256Hex('hello')), (error) => error instanceof S3Error && error.code === 'XAmzContentSHA256Mismatch' && error.httpStatus === 400);
});
