// aws-chunked bodies: what the AWS SDK for JavaScript v3 really streams (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a
// checksum trailer), signed streaming bodies built by an independent chunk signer (checked first against AWS's
// published example), every split of the input across writes, every truncation and one-byte change, framing
// garbage, back-pressure, and the checksum headers of bodies that are not aws-chunked.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { PutObjectCommand, UploadPartCommand, type ChecksumAlgorithm } from '@aws-sdk/client-s3';
import { createAwsChunkedDecoder, createChecksumHeaderCheck } from '../../../src/serve/s3/aws-chunked.js';
import { S3Error } from '../../../src/serve/s3/s3-error.js';
import { verifySignature, type VerifiedRequest } from '../../../src/serve/s3/sigv4.js';
import { ACCESS_KEY, REGION, SECRET, lookupSecret, sdkSigner, startSigningServer, type SigningServer } from './signing-server.js';

let server: SigningServer;
before(async () => {
  server = await startSigningServer();
});
after(async () => {
  await server.close();
});

/** Runs `pieces` through a decoder; resolves to the decoded bytes. */
async function decode(verified: VerifiedRequest, pieces: Buffer[], headers: IncomingHttpHeaders, decodedContentLength?: number): Promise<Buffer> {
  const output: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    createAwsChunkedDecoder(verified, { decodedContentLength, headers }),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        output.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(output);
}

function split(body: Buffer, ...at: number[]): Buffer[] {
  const points = [0, ...at, body.length];
  return points.slice(1).map((end, index) => body.subarray(points[index], end));
}

async function s3Code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3Error, `expected an S3Error, got ${String(error)}`);
    return error.code;
  }
  return 'no error';
}

function base64Of(algorithm: 'sha1' | 'sha256', data: Buffer): string {
  return createHash(algorithm).update(data).digest('base64');
}

function crc32Base64(data: Buffer): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc32(data) >>> 0, 0);
  return bytes.toString('base64');
}

const SDK_ALGORITHMS: Array<ChecksumAlgorithm | undefined> = [undefined, 'CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

test("the AWS SDK's streamed PutObject and UploadPart bodies decode, with the trailer checksum of every algorithm checked", async () => {
  const client = server.client();
  const pieces = [Buffer.alloc(70_000, 'a'), Buffer.alloc(1, 'b'), Buffer.alloc(1 << 20, 'c'), Buffer.from('tail')];
  const data = Buffer.concat(pieces);
  for (const algorithm of SDK_ALGORITHMS) {
    await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'a b/ü+%.txt', Body: Readable.from(pieces), ContentLength: data.length, ChecksumAlgorithm: algorithm }));
    const put = server.last();
    assert.equal(put.error, undefined, `${algorithm}: ${put.error?.message}`);
    assert.deepEqual(put.verified?.payload, { kind: 'streaming-unsigned-trailer' });
    assert.equal(put.signed.headers['content-encoding'], 'aws-chunked');
    assert.equal(put.signed.headers['x-amz-decoded-content-length'], String(data.length));
    assert.equal(put.signed.headers['x-amz-trailer'], `x-amz-checksum-${(algorithm ?? 'CRC32').toLowerCase()}`);
    assert.ok(put.body?.equals(data), `${algorithm}: the decoded body is the data`);
    assert.ok(put.rawBody.length > data.length);
  }
  await client.send(new UploadPartCommand({ Bucket: 'bucket', Key: 'k', UploadId: 'u', PartNumber: 2, Body: Readable.from(pieces), ContentLength: data.length }));
  assert.equal(server.last().error, undefined, server.last().error?.message);
  assert.ok(server.last().body?.equals(data));
});

test('a body the SDK streamed decodes in every split of its bytes, and every truncation or one-byte change is refused', async () => {
  const client = server.client();
  for (const algorithm of SDK_ALGORITHMS) {
    const data = Buffer.from('hello, aws-chunked!');
    await client.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'k', Body: Readable.from([data.subarray(0, 7), data.subarray(7)]), ContentLength: data.length, ChecksumAlgorithm: algorithm }));
    const { rawBody, verified, signed } = server.last();
    assert.ok(verified !== undefined, server.last().error?.message);
    const headers = signed.headers;
    for (let first = 0; first <= rawBody.length; first += 1) {
      for (const second of [first, Math.min(first + 1, rawBody.length), Math.min(first + 2, rawBody.length), rawBody.length]) {
        const decoded = await decode(verified, split(rawBody, first, second), headers, data.length);
        assert.deepEqual(decoded, data, `${algorithm}: split at ${first} and ${second}`);
      }
    }
    assert.deepEqual(await decode(verified, split(rawBody, ...Array.from({ length: rawBody.length }, (_, index) => index)), headers), data);
    for (let length = 0; length < rawBody.length; length += 1) {
      const code = await s3Code(decode(verified, [rawBody.subarray(0, length)], headers, data.length));
      assert.ok(code === 'IncompleteBody', `${algorithm}: truncated to ${length} bytes gave ${code}`);
    }
    for (let index = 0; index < rawBody.length; index += 1) {
      const changed = Buffer.from(rawBody);
      changed[index] = (changed[index] as number) ^ 0x01;
      const code = await s3Code(decode(verified, split(changed, index), headers, data.length));
      assert.ok(['IncompleteBody', 'BadDigest', 'InvalidRequest'].includes(code), `${algorithm}: byte ${index} changed gave ${code}`);
    }
  }
});

// ── signed streaming (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) with an independent chunk signer ──────────────

/** The chunk signer of the S3 documentation, written out again here so the decoder is checked against it. */
class ChunkSigner {
  private previous: string;
  private readonly key: Buffer;

  constructor(
    seedSignature: string,
    private readonly amzDate: string,
    private readonly scope: string,
  ) {
    this.previous = seedSignature;
    const [date, region, service] = scope.split('/') as [string, string, string];
    let key = createHmac('sha256', `AWS4${SECRET}`).update(date).digest();
    for (const part of [region, service, 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
    this.key = key;
  }

  chunk(data: Buffer): Buffer {
    const stringToSign = ['AWS4-HMAC-SHA256-PAYLOAD', this.amzDate, this.scope, this.previous, sha256Hex(''), sha256Hex(data)].join('\n');
    this.previous = createHmac('sha256', this.key).update(stringToSign).digest('hex');
    return Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${this.previous}\r\n`), data, data.length > 0 ? Buffer.from('\r\n') : Buffer.alloc(0)]);
  }

  trailer(lines: Array<[string, string]>): Buffer {
    const text = lines.map(([name, value]) => `${name}:${value}\n`).join('');
    const stringToSign = ['AWS4-HMAC-SHA256-TRAILER', this.amzDate, this.scope, this.previous, sha256Hex(text)].join('\n');
    const signature = createHmac('sha256', this.key).update(stringToSign).digest('hex');
    return Buffer.from(`${lines.map(([name, value]) => `${name}:${value}\r\n`).join('')}x-amz-trailer-signature:${signature}\r\n\r\n`);
  }
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

// (sigv4.test.ts decodes that very body, from the example's literal signatures.)
test("the independent chunk signer reproduces the chunk signatures of AWS's published example", () => {
  const signer = new ChunkSigner('4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9', '20130524T000000Z', '20130524/us-east-1/s3/aws4_request');
  const body = Buffer.concat([signer.chunk(Buffer.alloc(65536, 'a')), signer.chunk(Buffer.alloc(1024, 'a')), signer.chunk(Buffer.alloc(0)), Buffer.from('\r\n')]);
  assert.ok(body.subarray(0, 100).toString().startsWith('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n'));
  assert.ok(body.includes('400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n'));
  assert.ok(body.includes('0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n'));
  assert.equal(body.length, 66824);
});

/** Headers of a signed streaming PUT signed by the SDK's signer, as verifySignature sees them, and its seed. */
async function signedStreamingPut(mode: string, extraHeaders: Record<string, string>): Promise<{ verified: VerifiedRequest; signer: ChunkSigner; headers: IncomingHttpHeaders }> {
  const now = new Date();
  const signed = (await sdkSigner.sign(
    {
      method: 'PUT',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 9000,
      path: '/bucket/a%20b/%C3%BC%2B%25.txt',
      query: {},
      headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': mode, 'content-encoding': 'aws-chunked', ...extraHeaders },
    } as never,
    { signingDate: now },
  )) as unknown as { headers: Record<string, string> };
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(signed.headers)) headers[name.toLowerCase()] = value;
  const verified = verifySignature({ method: 'PUT', rawPath: '/bucket/a%20b/%C3%BC%2B%25.txt', rawQuery: '', headers }, { region: REGION, lookupSecret, nowMs: now.getTime() });
  const seed = /Signature=([0-9a-f]{64})/.exec(String(headers.authorization))?.[1] as string;
  const amzDate = String(headers['x-amz-date']);
  return { verified, headers, signer: new ChunkSigner(seed, amzDate, `${amzDate.slice(0, 8)}/${REGION}/s3/aws4_request`) };
}

test('signed streaming chunks and a signed trailer verify from the seed signature, in every split', async () => {
  const data = Buffer.from('signed chunks, then a signed trailer with a checksum');
  const parts = [data.subarray(0, 10), data.subarray(10, 11), data.subarray(11)];
  {
    const { verified, signer, headers } = await signedStreamingPut('STREAMING-AWS4-HMAC-SHA256-PAYLOAD', {});
    assert.deepEqual(verified.payload, { kind: 'streaming-signed', trailer: false });
    const body = Buffer.concat([...parts.map((part) => signer.chunk(part)), signer.chunk(Buffer.alloc(0)), Buffer.from('\r\n')]);
    for (let at = 0; at <= body.length; at += 1) assert.deepEqual(await decode(verified, split(body, at), headers, data.length), data);
  }
  const trailerHeaders = { 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-decoded-content-length': String(data.length) };
  const { verified, signer, headers } = await signedStreamingPut('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', trailerHeaders);
  assert.deepEqual(verified.payload, { kind: 'streaming-signed', trailer: true });
  const chunks = [...parts.map((part) => signer.chunk(part)), signer.chunk(Buffer.alloc(0))];
  const body = Buffer.concat([...chunks, signer.trailer([['x-amz-checksum-crc32', crc32Base64(data)]])]);
  for (let at = 0; at <= body.length; at += 1) {
    assert.deepEqual(await decode(verified, split(body, at, Math.min(at + 3, body.length)), headers, data.length), data, `split at ${at}`);
  }
  for (let length = 0; length < body.length; length += 1) {
    const code = await s3Code(decode(verified, [body.subarray(0, length)], headers, data.length));
    assert.ok(code === 'IncompleteBody' || code === 'SignatureDoesNotMatch', `truncated to ${length} gave ${code}`);
  }
});

test('a changed chunk, chunk signature, trailer checksum or trailer signature is refused', async () => {
  const data = Buffer.from('0123456789abcdef');
  const headersFor = { 'x-amz-trailer': 'x-amz-checksum-sha256' };
  const build = async (change: { data?: Buffer; checksum?: string; signature?: (body: string) => string; dropChunkSignature?: boolean }) => {
    const { verified, signer, headers } = await signedStreamingPut('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', headersFor);
    let body = Buffer.concat([signer.chunk(data.subarray(0, 8)), signer.chunk(data.subarray(8)), signer.chunk(Buffer.alloc(0))]);
    if (change.data) body = Buffer.from(body.toString('latin1').replace(data.subarray(0, 8).toString('latin1'), change.data.toString('latin1')), 'latin1');
    body = Buffer.concat([body, signer.trailer([['x-amz-checksum-sha256', change.checksum ?? base64Of('sha256', data)]])]);
    let text = body.toString('latin1');
    if (change.signature) text = change.signature(text);
    if (change.dropChunkSignature) text = text.replace(/^8;chunk-signature=[0-9a-f]{64}/, '8');
    return s3Code(decode(verified, [Buffer.from(text, 'latin1')], headers));
  };
  assert.equal(await build({}), 'no error');
  assert.equal(await build({ data: Buffer.from('0123456X') }), 'SignatureDoesNotMatch');
  assert.equal(await build({ signature: (body) => body.replace(/chunk-signature=([0-9a-f])/, (_, first: string) => `chunk-signature=${first === '0' ? '1' : '0'}`) }), 'SignatureDoesNotMatch');
  assert.equal(await build({ dropChunkSignature: true }), 'SignatureDoesNotMatch');
  // The checksum is signed: a wrong one with a right signature is a BadDigest, a changed one a broken signature.
  assert.equal(await build({ checksum: base64Of('sha256', Buffer.from('other')) }), 'BadDigest');
  assert.equal(await build({ signature: (body) => body.replace(/x-amz-checksum-sha256:./, 'x-amz-checksum-sha256:A') }), 'SignatureDoesNotMatch');
  assert.equal(await build({ signature: (body) => body.replace(/x-amz-trailer-signature:[0-9a-f]{64}/, `x-amz-trailer-signature:${'0'.repeat(64)}`) }), 'SignatureDoesNotMatch');
  assert.equal(await build({ signature: (body) => body.replace(/x-amz-trailer-signature:[0-9a-f]{64}\r\n/, '') }), 'SignatureDoesNotMatch');
});

test('framing garbage is refused with an S3 error: bad hex, a chunk over 5 GiB, missing CRLFs, extra bytes, wrong lengths', async () => {
  const unsigned: VerifiedRequest = { accessKeyId: ACCESS_KEY, payload: { kind: 'streaming-unsigned-trailer' }, chunkSigning: undefined };
  const run = (text: string, decodedLength?: number) => s3Code(decode(unsigned, [Buffer.from(text, 'latin1')], {}, decodedLength));
  assert.equal(await run('5\r\nhello\r\n0\r\n\r\n', 5), 'no error');
  assert.equal(await run('zz\r\nhello\r\n0\r\n\r\n'), 'IncompleteBody');
  assert.equal(await run('-5\r\nhello\r\n0\r\n\r\n'), 'IncompleteBody');
  assert.equal(await run('\r\nhello\r\n0\r\n\r\n'), 'IncompleteBody');
  assert.equal(await run(`${(5 * 1024 * 1024 * 1024 + 1).toString(16)}\r\nhello`), 'IncompleteBody');
  assert.equal(await run('123456789\r\nhello'), 'IncompleteBody');
  assert.equal(await run('5\r\nhelloX\r\n0\r\n\r\n'), 'IncompleteBody');
  assert.equal(await run('5\nhello\r\n0\r\n\r\n'), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n0\r\n\r\nextra'), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n0\r\n'), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n'), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n0\r\n\r\n', 6), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n0\r\n\r\n', 4), 'IncompleteBody');
  assert.equal(await run(`5;${'x'.repeat(10_000)}\r\nhello\r\n0\r\n\r\n`), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n0\r\nnot a trailer\r\n\r\n'), 'IncompleteBody');
  assert.equal(await run('5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n'), 'InvalidRequest');
  const announced = { 'x-amz-trailer': 'x-amz-checksum-crc32' };
  assert.equal(await s3Code(decode(unsigned, [Buffer.from('5\r\nhello\r\n0\r\n\r\n')], announced)), 'IncompleteBody');
  assert.equal(await s3Code(decode(unsigned, [Buffer.from(`5\r\nhello\r\n0\r\nx-amz-checksum-crc32:${crc32Base64(Buffer.from('hello'))}\r\n\r\n`)], announced)), 'no error');
  assert.equal(await s3Code(decode(unsigned, [Buffer.from(`5\r\nhello\r\n0\r\nx-amz-checksum-crc32:${crc32Base64(Buffer.from('hellO'))}\r\n\r\n`)], announced)), 'BadDigest');
});

test('a 32 MiB chunk streams through with bounded memory: the decoder pulls only as fast as its reader reads', async () => {
  const chunkBytes = 32 * 1024 * 1024;
  const pieceBytes = 64 * 1024;
  let produced = 0;
  let consumed = 0;
  let aheadMax = 0;
  async function* body(): AsyncGenerator<Buffer> {
    yield Buffer.from(`${chunkBytes.toString(16)}\r\n`);
    const piece = Buffer.alloc(pieceBytes, 'z');
    for (let offset = 0; offset < chunkBytes; offset += pieceBytes) {
      produced += pieceBytes;
      aheadMax = Math.max(aheadMax, produced - consumed);
      yield piece;
    }
    yield Buffer.from('\r\n0\r\n\r\n');
  }
  const unsigned: VerifiedRequest = { accessKeyId: ACCESS_KEY, payload: { kind: 'streaming-unsigned-trailer' }, chunkSigning: undefined };
  await pipeline(
    Readable.from(body()),
    createAwsChunkedDecoder(unsigned, { decodedContentLength: chunkBytes }),
    new Writable({
      highWaterMark: pieceBytes,
      write(chunk: Buffer, _encoding, done) {
        consumed += chunk.length;
        // A slow disk: every write takes a turn of the event loop.
        setImmediate(done);
      },
    }),
  );
  assert.equal(consumed, chunkBytes);
  assert.ok(aheadMax <= 2 * 1024 * 1024, `the decoder ran ${aheadMax} bytes ahead of its reader`);
});

test('a body longer than x-amz-decoded-content-length is refused as soon as it overruns, not at its end', async () => {
  let producedBytes = 0;
  async function* endless(): AsyncGenerator<Buffer> {
    yield Buffer.from(`${(64 * 1024 * 1024).toString(16)}\r\n`);
    for (;;) {
      producedBytes += 65536;
      yield Buffer.alloc(65536);
    }
  }
  const unsigned: VerifiedRequest = { accessKeyId: ACCESS_KEY, payload: { kind: 'streaming-unsigned-trailer' }, chunkSigning: undefined };
  const code = await s3Code(pipeline(Readable.from(endless()), createAwsChunkedDecoder(unsigned, { decodedContentLength: 100_000 }), new Writable({ write: (_chunk, _encoding, done) => done() })));
  assert.equal(code, 'IncompleteBody');
  assert.ok(producedBytes < 1024 * 1024, `read ${producedBytes} bytes before refusing`);
});

test('a body that is not aws-chunked is checked against its x-amz-checksum-* header, whichever algorithm it names', async () => {
  const data = Buffer.from('123456789');
  const check = async (headers: IncomingHttpHeaders, body = data) => {
    const transform = createChecksumHeaderCheck(headers);
    if (transform === undefined) return 'no check';
    return s3Code(pipeline(Readable.from([body.subarray(0, 4), body.subarray(4)]), transform, new Writable({ write: (_chunk, _encoding, done) => done() })));
  };
  const right: Record<string, string> = {
    'x-amz-checksum-crc32': crc32Base64(data),
    'x-amz-checksum-crc32c': Buffer.from('e3069283', 'hex').toString('base64'),
    'x-amz-checksum-crc64nvme': Buffer.from('ae8b14860a799888', 'hex').toString('base64'),
    'x-amz-checksum-sha1': base64Of('sha1', data),
    'x-amz-checksum-sha256': base64Of('sha256', data),
  };
  for (const [name, value] of Object.entries(right)) {
    assert.equal(await check({ [name]: value }), 'no error', name);
    assert.equal(await check({ [name]: value }, Buffer.from('123456780')), 'BadDigest', name);
  }
  assert.equal(await check({}), 'no check');
  assert.equal(await check({ 'x-amz-checksum-mode': 'ENABLED', 'x-amz-checksum-algorithm': 'CRC32', 'x-amz-checksum-type': 'FULL_OBJECT' }), 'no check');
  assert.equal(await check({ 'x-amz-checksum-type': 'FULL_OBJECT', 'x-amz-checksum-crc32': right['x-amz-checksum-crc32'] }), 'no error');
  assert.throws(() => createChecksumHeaderCheck({ 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-checksum-sha1': 'AAAA' }), (error) => error instanceof S3Error && error.code === 'InvalidRequest');
  assert.throws(() => createChecksumHeaderCheck({ 'x-amz-checksum-md5': 'AAAA' }), (error) => error instanceof S3Error && error.code === 'InvalidRequest');
});
