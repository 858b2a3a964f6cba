// Signature Version 4 verification and aws-chunked decoding, against AWS's published chunked-upload example and
// against requests signed by the AWS SDK's own signer (@smithy/signature-v4).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { createAwsChunkedDecoder } from '../../../src/serve/s3/aws-chunked.js';
import { S3Error } from '../../../src/serve/s3/s3-error.js';
import { verifySignature, type SignedRequest, type VerifiedRequest } from '../../../src/serve/s3/sigv4.js';
import { sdkSigner as signer } from './signing-server.js';

const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const lookupSecret = (id: string) => (id === ACCESS_KEY ? SECRET : undefined);

async function decode(verified: VerifiedRequest, body: Buffer, pieceBytes: number, headers: IncomingHttpHeaders = {}, decodedLength?: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += pieceBytes) pieces.push(body.subarray(offset, offset + pieceBytes));
  const output: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    createAwsChunkedDecoder(verified, { decodedContentLength: decodedLength, headers }),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        output.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(output);
}

function s3Code(error: unknown): string {
  assert.ok(error instanceof S3Error, `expected an S3Error, got ${String(error)}`);
  return error.code;
}

// "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks" (Amazon S3 API
// reference): a 66560-byte object of 'a' in chunks of 64 KiB, 1 KiB and the final empty chunk.
const example: SignedRequest = {
  method: 'PUT',
  rawPath: '/examplebucket/chunkObject.txt',
  rawQuery: '',
  headers: {
    host: 's3.amazonaws.com',
    'x-amz-date': '20130524T000000Z',
    'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    authorization:
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,' +
      'SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,' +
      'Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
    'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': '66560',
    'content-length': '66824',
  },
};
const exampleBody = Buffer.concat([
  Buffer.from('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n'),
  Buffer.alloc(65536, 'a'),
  Buffer.from('\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n'),
  Buffer.alloc(1024, 'a'),
  Buffer.from('\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n'),
]);
const exampleNow = Date.UTC(2013, 4, 24, 0, 5);

test("AWS's chunked-upload example verifies: seed signature, every chunk signature, in any split", async () => {
  assert.equal(exampleBody.length, 66824);
  const verified = verifySignature(example, { region: 'us-east-1', lookupSecret, nowMs: exampleNow });
  assert.equal(verified.payload.kind, 'streaming-signed');
  for (const pieceBytes of [1, 7, 4096, 65536 + 90, exampleBody.length]) {
    const decoded = await decode(verified, exampleBody, pieceBytes, {}, 66560);
    assert.deepEqual(decoded, Buffer.alloc(66560, 'a'), `split every ${pieceBytes} bytes`);
  }
});

test('a changed byte, a changed chunk signature or a missing end is refused', async () => {
  const verified = verifySignature(example, { region: 'us-east-1', lookupSecret, nowMs: exampleNow });
  const flipped = Buffer.from(exampleBody);
  flipped[100] = 'b'.charCodeAt(0);
  await assert.rejects(decode(verified, flipped, 4096), (error) => s3Code(error) === 'SignatureDoesNotMatch');
  const badSignature = Buffer.from(exampleBody.toString('latin1').replace('ad80c730', 'ad80c731'), 'latin1');
  await assert.rejects(decode(verified, badSignature, 4096), (error) => s3Code(error) === 'SignatureDoesNotMatch');
  await assert.rejects(decode(verified, exampleBody.subarray(0, 66000), 4096), (error) => s3Code(error) === 'IncompleteBody');
  await assert.rejects(decode(verified, Buffer.concat([exampleBody, Buffer.from('x')]), 4096), (error) => s3Code(error) === 'IncompleteBody');
  await assert.rejects(decode(verified, exampleBody, 4096, {}, 66561), (error) => s3Code(error) === 'IncompleteBody');
  const garbage = Buffer.from('zz;chunk-signature=00\r\n');
  await assert.rejects(decode(verified, garbage, 3), (error) => s3Code(error) === 'IncompleteBody');
});

test('the header signature of the example is checked: a changed header, path or secret no longer matches', () => {
  const options = { region: 'us-east-1', lookupSecret, nowMs: exampleNow };
  const changed = (patch: Partial<SignedRequest>, headers: IncomingHttpHeaders = {}) => ({ ...example, ...patch, headers: { ...example.headers, ...headers } });
  assert.throws(() => verifySignature(changed({}, { 'x-amz-storage-class': 'STANDARD' }), options), (error) => s3Code(error) === 'SignatureDoesNotMatch');
  assert.throws(() => verifySignature(changed({ rawPath: '/examplebucket/other.txt' }), options), (error) => s3Code(error) === 'SignatureDoesNotMatch');
  assert.throws(() => verifySignature(example, { ...options, lookupSecret: () => `${SECRET}x` }), (error) => s3Code(error) === 'SignatureDoesNotMatch');
  assert.throws(() => verifySignature(example, { ...options, lookupSecret: () => undefined }), (error) => s3Code(error) === 'InvalidAccessKeyId');
  assert.throws(() => verifySignature(example, { ...options, region: 'eu-west-1' }), (error) => s3Code(error) === 'AuthorizationHeaderMalformed');
  assert.throws(() => verifySignature(example, { ...options, nowMs: exampleNow + 3600_000 }), (error) => s3Code(error) === 'RequestTimeTooSkewed');
  assert.throws(() => verifySignature(changed({}, { authorization: 'AWS AKIAIOSFODNN7EXAMPLE:abc=' }), options), (error) => s3Code(error) === 'InvalidRequest');
  assert.throws(() => verifySignature(changed({}, { authorization: undefined }), options), (error) => s3Code(error) === 'AccessDenied');
});

/** A path encoded as the S3 clients put it on the request line (and sign it, without encoding it again). */
function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/** What node's HTTP server would hand us for a request the SDK signer produced. */
function asReceived(signed: { method: string; path: string; query?: Record<string, string | string[] | null>; headers: Record<string, string> }): SignedRequest {
  const query = Object.entries(signed.query ?? {})
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value ?? ''))}`)
    .join('&');
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(signed.headers)) headers[name.toLowerCase()] = value;
  return { method: signed.method, rawPath: signed.path, rawQuery: query, headers };
}

test('requests signed by the AWS SDK signer verify, with odd keys and list queries; presigned URLs too', async () => {
  const now = new Date();
  const options = { region: 'us-east-1', lookupSecret, nowMs: now.getTime() };
  for (const path of ['/bucket/a b/ü+%.txt', '/bucket/key~with*stars(1)', '/bucket', '/']) {
    const request = {
      method: 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9000,
      path: encodePath(path),
      query: { 'list-type': '2', prefix: 'x y+z', 'continuation-token': 'abc/=+' },
      headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    };
    const signed = await signer.sign(request as never, { signingDate: now });
    const verified = verifySignature(asReceived(signed as never), options);
    assert.equal(verified.accessKeyId, ACCESS_KEY);
    assert.equal(verified.payload.kind, 'unsigned');
    const tampered = asReceived({ ...(signed as never as { method: string; path: string; headers: Record<string, string> }), query: { 'list-type': '2', prefix: 'x y+zz' } });
    assert.throws(() => verifySignature(tampered, options), (error) => s3Code(error) === 'SignatureDoesNotMatch');
  }
  const presigned = await signer.presign(
    { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path: encodePath('/bucket/photo 1.jpg'), query: {}, headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } } as never,
    { signingDate: now, expiresIn: 60 },
  );
  const received = asReceived(presigned as never);
  assert.equal(verifySignature(received, options).payload.kind, 'unsigned');
  assert.throws(() => verifySignature(received, { ...options, nowMs: now.getTime() + 61_000 }), (error) => s3Code(error) === 'AccessDenied' && (error as Error).message.includes('expired'));
  const signedPut = await signer.sign(
    {
      method: 'PUT',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9000,
      path: '/bucket/k',
      query: {},
      headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': createHash('sha256').update('hello').digest('hex') },
      body: 'hello',
    } as never,
    { signingDate: now },
  );
  const put = verifySignature(asReceived(signedPut as never), options);
  assert.deepEqual(put.payload, { kind: 'sha256', hexDigest: createHash('sha256').update('hello').digest('hex') });
});

test('an unsigned aws-chunked body with a CRC32 trailer is checked against its checksum', async () => {
  const verified: VerifiedRequest = { accessKeyId: ACCESS_KEY, payload: { kind: 'streaming-unsigned-trailer' }, chunkSigning: undefined };
  const data = Buffer.from('hello, trailer checksums');
  const checksum = (value: number) => {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(value >>> 0, 0);
    return bytes.toString('base64');
  };
  const body = (crc: string) => Buffer.from(`${data.length.toString(16)}\r\n${data.toString('latin1')}\r\n0\r\nx-amz-checksum-crc32:${crc}\r\n\r\n`, 'latin1');
  const headers = { 'x-amz-trailer': 'x-amz-checksum-crc32' };
  for (const pieceBytes of [1, 5, 1000]) assert.deepEqual(await decode(verified, body(checksum(crc32(data))), pieceBytes, headers, data.length), data);
  await assert.rejects(decode(verified, body(checksum(crc32(data) ^ 1)), 1000, headers), (error) => s3Code(error) === 'BadDigest');
  const noTrailer = Buffer.from(`${data.length.toString(16)}\r\n${data.toString('latin1')}\r\n0\r\n\r\n`, 'latin1');
  await assert.rejects(decode(verified, noTrailer, 1000, headers), (error) => s3Code(error) === 'IncompleteBody');
});
