// A request body as the object's bytes: aws-chunked bodies decoded (chunk signatures and trailing checksums checked),
// signed payloads hashed and compared, checksum headers verified, and on top of it all an MD5 (the object's ETag,
// and the Content-MD5 check) and a byte count. Any mismatch errors the stream before its end, so a put reading it
// fails and is never committed. So does a client that stops sending: a body idle for the configured time errors
// with RequestTimeout, so a stalled upload cannot hold its put (and the pool gate) forever.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough, Transform, finished, pipeline, type Readable } from 'node:stream';
import { createAwsChunkedDecoder, createChecksumHeaderCheck } from './aws-chunked.js';
import { S3Error } from './s3-error.js';
import { createPayloadHashCheck, type VerifiedRequest } from './sigv4.js';

export interface DecodedBody {
  readonly stream: Readable;
  /** Hex MD5 of the decoded bytes; valid once the stream ended. */
  md5Hex(): string;
  /** Decoded bytes so far (all of them once the stream ended). */
  sizeBytes(): number;
}

export interface DecodeOptions {
  /** False when x-amz-checksum-* headers describe something else than this body (CompleteMultipartUpload). */
  readonly checksumHeadersDescribeBody: boolean;
  /** How long the client may send nothing while the body is being read; undefined: no limit. */
  readonly idleTimeoutMs?: number | undefined;
}

export function decodeBody(request: IncomingMessage, verified: VerifiedRequest, options: DecodeOptions = { checksumHeadersDescribeBody: true }): DecodedBody {
  const headers = request.headers;
  const stages: Transform[] = [];
  const decodedLength = numberHeader(headers['x-amz-decoded-content-length']);
  const chunked =
    verified.payload.kind === 'streaming-signed' ||
    verified.payload.kind === 'streaming-unsigned-trailer' ||
    /(^|,)\s*aws-chunked\s*(,|$)/.test(String(headers['content-encoding'] ?? ''));
  if (chunked) stages.push(createAwsChunkedDecoder(verified, { decodedContentLength: decodedLength, headers }));
  else {
    if (verified.payload.kind === 'sha256') stages.push(createPayloadHashCheck(verified.payload.hexDigest));
    const checksum = options.checksumHeadersDescribeBody ? createChecksumHeaderCheck(headers) : undefined;
    if (checksum) stages.push(checksum);
  }
  const expectedMd5 = contentMd5(headers['content-md5']);
  const expectedLength = chunked ? decodedLength : numberHeader(headers['content-length']);
  const md5 = createHash('md5');
  let size = 0;
  let md5Hex: string | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      md5.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      md5Hex = md5.digest('hex');
      if (expectedLength !== undefined && size !== expectedLength) {
        done(new S3Error('IncompleteBody', 400, `the body held ${size} bytes, the request announced ${expectedLength}`));
        return;
      }
      if (expectedMd5 !== undefined && expectedMd5 !== md5Hex) {
        done(new S3Error('BadDigest', 400, 'The Content-MD5 you specified did not match what we received.'));
        return;
      }
      done();
    },
  });
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const streams: Transform[] = [...stages, tap, output];
  const inlet = streams[0] as Transform;
  // The request is piped in by hand, not made the pipeline's first stream: a failure of the body (a bad chunk, the
  // idle timeout) then destroys the decoding stages but leaves the request and its socket alone, so the error can
  // still be answered. A client that goes away fails the stages like any other error.
  let stopWatching = (): void => undefined;
  (pipeline as (...streams: Array<Transform | ((error: Error | null) => void)>) => void)(
    ...streams,
    (error: Error | null) => {
      stopWatching();
      // pipeline destroys every stage with the first error, so the reader of `output` sees it.
      if (error && !output.destroyed) output.destroy(error);
    },
  );
  request.pipe(inlet);
  finished(request, (error) => {
    stopWatching();
    if (error) inlet.destroy(error);
  });
  if (options.idleTimeoutMs !== undefined) {
    stopWatching = watchIdle(request, options.idleTimeoutMs, () =>
      inlet.destroy(
        new S3Error('RequestTimeout', 400, 'Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.'),
      ),
    );
  }
  return {
    stream: output,
    md5Hex: () => {
      if (md5Hex === undefined) throw new Error('the body has not been read to its end');
      return md5Hex;
    },
    sizeBytes: () => size,
  };
}

/**
 * Calls onIdle once the request has delivered nothing for idleTimeoutMs while the server was ready to read it. Time
 * the request spends paused does not count: that is back-pressure (the pool writing slowly, a put waiting for the
 * gate), the server's doing and not the client's. Returns a function that stops watching.
 */
function watchIdle(request: IncomingMessage, idleTimeoutMs: number, onIdle: () => void): () => void {
  let lastActiveMs = Date.now();
  const touch = (): void => {
    lastActiveMs = Date.now();
  };
  // Sampled (a quarter of the timeout) rather than a timer re-armed per chunk: cheap on the hot path, and a request
  // that was paused counts as active up to the last sample, so a resumed one gets at least 3/4 of the timeout.
  const sampler = setInterval(() => {
    if (request.readableFlowing !== true) {
      touch();
      return;
    }
    if (Date.now() - lastActiveMs < idleTimeoutMs) return;
    stop();
    onIdle();
  }, Math.max(Math.floor(idleTimeoutMs / 4), 10));
  sampler.unref();
  request.on('data', touch);
  const stop = (): void => {
    clearInterval(sampler);
    request.off('data', touch);
  };
  return stop;
}

/** Reads a small body (an XML request document) whole, refusing more than maxBytes. */
export async function readSmallBody(body: DecodedBody, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body.stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw new S3Error('MaxMessageLengthExceeded', 400, `request bodies of this kind are at most ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function contentMd5(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] ?? '' : value;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== 16 || bytes.toString('base64') !== text.trim()) {
    throw new S3Error('InvalidDigest', 400, 'The Content-MD5 you specified is not valid.');
  }
  return bytes.toString('hex');
}

function numberHeader(value: string | string[] | undefined): number | undefined {
  if (value === undefined || Array.isArray(value)) return undefined;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) throw new S3Error('InvalidArgument', 400, `invalid length header value ${JSON.stringify(value)}`);
  return number;
}
