// aws-chunked bodies (Content-Encoding: aws-chunked), which S3 clients use to stream a body whose signature or
// checksum they cannot know up front:
//
//   <hex size>[;chunk-signature=<64 hex>]\r\n <size bytes> \r\n      … repeated …
//   0[;chunk-signature=<64 hex>]\r\n
//   [<trailer name>:<value>\r\n … [x-amz-trailer-signature:<64 hex>\r\n]]
//   \r\n
//
// Signed chunks chain: each signature covers the previous one and the SHA-256 of the chunk's bytes, starting from the
// request's own signature. Trailers carry a flexible checksum of the whole decoded body. The decoder passes the bytes
// on as they arrive (memory stays bounded whatever the chunk size) and errors the stream at the first bad chunk
// signature, checksum or framing error, so the put reading it is never committed.
import { createHash, type Hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { checksumAlgorithmOf, checksumMismatch, createPayloadChecksum, type ChecksumAlgorithm, type PayloadChecksum } from './payload-checksum.js';
import { S3Error } from './s3-error.js';
import { EMPTY_SHA256, hmacHex, sameSignature, signatureMismatch, sha256Hex, type ChunkSigningContext, type VerifiedRequest } from './sigv4.js';

const LINE_BYTES_MAX = 4096;
const TRAILER_LINES_MAX = 16;
/**
 * S3's largest single upload. Chunk bytes stream through without being buffered, so the bound is a sanity check,
 * not a memory limit: the AWS SDK sends one chunk per buffer its source stream yields, whatever its size.
 */
const CHUNK_BYTES_MAX = 5 * 1024 * 1024 * 1024;
/** x-amz-checksum-* headers that carry no digest: CreateMultipartUpload's algorithm, GetObject's mode, the type. */
const CHECKSUM_HEADERS_NOT_A_DIGEST = new Set(['x-amz-checksum-algorithm', 'x-amz-checksum-mode', 'x-amz-checksum-type']);

type State = 'size-line' | 'data' | 'data-end' | 'trailer' | 'done';

export function createAwsChunkedDecoder(verified: VerifiedRequest, options: { readonly decodedContentLength?: number | undefined; readonly headers?: IncomingHttpHeaders }): Transform {
  return new AwsChunkedDecoder(verified, options.decodedContentLength, trailerAlgorithm(options.headers));
}

/** For a body that is not aws-chunked: verifies an x-amz-checksum-* header against it, if one was sent. */
export function createChecksumHeaderCheck(headers: IncomingHttpHeaders): Transform | undefined {
  const names = Object.keys(headers).filter((header) => header.startsWith('x-amz-checksum-') && !CHECKSUM_HEADERS_NOT_A_DIGEST.has(header));
  if (names.length > 1) throw new S3Error('InvalidRequest', 400, 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
  const name = names[0];
  if (name === undefined) return undefined;
  const algorithm = checksumAlgorithmOf(name);
  const expected = String(headers[name]);
  let checksum: PayloadChecksum | undefined;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      void (async () => {
        checksum ??= await createPayloadChecksum(algorithm);
        checksum.update(chunk);
        done(null, chunk);
      })().catch(done);
    },
    flush(done) {
      void (async () => {
        checksum ??= await createPayloadChecksum(algorithm);
        done(checksum.digestBase64() === expected ? null : checksumMismatch(algorithm));
      })().catch(done);
    },
  });
}

function trailerAlgorithm(headers: IncomingHttpHeaders | undefined): ChecksumAlgorithm | undefined {
  const trailer = headers?.['x-amz-trailer'];
  if (trailer === undefined) return undefined;
  return checksumAlgorithmOf(String(trailer).split(',')[0]?.trim() ?? '');
}

class AwsChunkedDecoder extends Transform {
  private state: State = 'size-line';
  private line: Buffer[] = [];
  private lineBytes = 0;
  private remaining = 0;
  private chunkHash: Hash | undefined;
  private chunkSignature: string | undefined;
  private previousSignature: string | undefined;
  private decodedBytes = 0;
  private checksum: PayloadChecksum | undefined;
  private readonly trailers: Array<[string, string]> = [];

  constructor(
    private readonly verified: VerifiedRequest,
    private readonly decodedContentLength: number | undefined,
    private readonly algorithm: ChecksumAlgorithm | undefined,
  ) {
    super();
    this.previousSignature = verified.chunkSigning?.seedSignature;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    void this.consume(data).then(() => done(), (error: unknown) => done(error as Error));
  }

  override _flush(done: TransformCallback): void {
    if (this.state !== 'done') {
      done(new S3Error('IncompleteBody', 400, 'The aws-chunked body ended before its final chunk'));
      return;
    }
    if (this.decodedContentLength !== undefined && this.decodedBytes !== this.decodedContentLength) {
      done(new S3Error('IncompleteBody', 400, `the decoded body held ${this.decodedBytes} bytes; x-amz-decoded-content-length said ${this.decodedContentLength}`));
      return;
    }
    done();
  }

  private async consume(data: Buffer): Promise<void> {
    if (this.algorithm !== undefined) this.checksum ??= await createPayloadChecksum(this.algorithm);
    let offset = 0;
    while (offset < data.length) {
      switch (this.state) {
        case 'size-line':
        case 'trailer': {
          const end = data.indexOf(0x0a, offset);
          const piece = data.subarray(offset, end < 0 ? data.length : end + 1);
          offset += piece.length;
          this.line.push(piece);
          this.lineBytes += piece.length;
          if (this.lineBytes > LINE_BYTES_MAX) throw framingError('a chunk header or trailer line is too long');
          if (end < 0) break;
          const text = Buffer.concat(this.line).toString('latin1');
          this.line = [];
          this.lineBytes = 0;
          if (!text.endsWith('\r\n')) throw framingError('lines must end with CRLF');
          const content = text.slice(0, -2);
          if (this.state === 'size-line') this.startChunk(content);
          else this.addTrailerLine(content);
          break;
        }
        case 'data': {
          const take = Math.min(this.remaining, data.length - offset);
          const piece = data.subarray(offset, offset + take);
          offset += take;
          this.remaining -= take;
          this.chunkHash?.update(piece);
          this.checksum?.update(piece);
          this.decodedBytes += take;
          // Refuse at once, not at the end: a body announcing 5 bytes must not stream gigabytes into a put first.
          if (this.decodedContentLength !== undefined && this.decodedBytes > this.decodedContentLength) {
            throw new S3Error('IncompleteBody', 400, `the decoded body is longer than x-amz-decoded-content-length (${this.decodedContentLength} bytes)`);
          }
          this.push(piece);
          if (this.remaining === 0) {
            this.state = 'data-end';
            this.remaining = 2;
          }
          break;
        }
        case 'data-end': {
          const expected = this.remaining === 2 ? 0x0d : 0x0a;
          if (data[offset] !== expected) throw framingError('chunk data must be followed by CRLF');
          offset += 1;
          this.remaining -= 1;
          if (this.remaining === 0) {
            this.verifyChunk();
            this.state = 'size-line';
          }
          break;
        }
        case 'done':
          throw framingError('bytes after the end of the aws-chunked body');
      }
    }
  }

  private startChunk(line: string): void {
    const [sizeText = '', ...extensions] = line.split(';');
    if (!/^[0-9a-fA-F]{1,10}$/.test(sizeText)) throw framingError(`bad chunk size ${JSON.stringify(sizeText.slice(0, 20))}`);
    const size = parseInt(sizeText, 16);
    if (size > CHUNK_BYTES_MAX) throw framingError(`chunks are at most ${CHUNK_BYTES_MAX} bytes`);
    this.chunkSignature = extensions.map((extension) => /^chunk-signature=([0-9a-f]{64})$/.exec(extension.trim())?.[1]).find((value) => value !== undefined);
    if (this.verified.chunkSigning !== undefined && this.chunkSignature === undefined) throw signatureMismatch('a chunk has no chunk-signature');
    this.chunkHash = this.verified.chunkSigning ? createHash('sha256') : undefined;
    if (size === 0) {
      this.verifyChunk();
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.state = 'data';
  }

  private verifyChunk(): void {
    const signing = this.verified.chunkSigning;
    if (!signing) return;
    const dataHash = (this.chunkHash as Hash).digest('hex');
    const expected = hmacHex(
      signing.signingKey,
      ['AWS4-HMAC-SHA256-PAYLOAD', signing.amzDate, signing.scope, this.previousSignature, EMPTY_SHA256, dataHash].join('\n'),
    );
    if (!sameSignature(expected, this.chunkSignature ?? '')) throw signatureMismatch('a chunk signature is wrong');
    this.previousSignature = expected;
  }

  private addTrailerLine(line: string): void {
    if (line === '') {
      this.finishTrailers();
      this.state = 'done';
      return;
    }
    if (this.trailers.length >= TRAILER_LINES_MAX) throw framingError('too many trailer lines');
    const colon = line.indexOf(':');
    if (colon <= 0) throw framingError('a trailer line must be NAME:VALUE');
    this.trailers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }

  private finishTrailers(): void {
    const signing: ChunkSigningContext | undefined = this.verified.chunkSigning;
    const signature = this.trailers.find(([name]) => name === 'x-amz-trailer-signature')?.[1];
    const checksums = this.trailers.filter(([name]) => name !== 'x-amz-trailer-signature');
    if (signing && this.verified.payload.kind === 'streaming-signed' && this.verified.payload.trailer) {
      if (signature === undefined) throw signatureMismatch('the trailer has no x-amz-trailer-signature');
      const trailerText = checksums.map(([name, value]) => `${name}:${value}\n`).join('');
      const expected = hmacHex(signing.signingKey, ['AWS4-HMAC-SHA256-TRAILER', signing.amzDate, signing.scope, this.previousSignature, sha256Hex(trailerText)].join('\n'));
      if (!sameSignature(expected, signature)) throw signatureMismatch('the trailer signature is wrong');
    }
    for (const [name, value] of checksums) {
      if (!name.startsWith('x-amz-checksum-')) continue;
      const algorithm = checksumAlgorithmOf(name);
      if (algorithm !== this.algorithm || !this.checksum) {
        throw new S3Error('InvalidRequest', 400, `the trailer ${name} was not announced in x-amz-trailer`);
      }
      if (this.checksum.digestBase64() !== value) throw checksumMismatch(algorithm);
    }
    if (this.algorithm !== undefined && !checksums.some(([name]) => name.startsWith('x-amz-checksum-'))) {
      throw new S3Error('IncompleteBody', 400, `x-amz-trailer announced a ${this.algorithm} checksum that the body did not carry`);
    }
  }
}

function framingError(detail: string): S3Error {
  return new S3Error('IncompleteBody', 400, `The aws-chunked body is malformed: ${detail}`);
}
