// AWS Signature Version 4, the server side: recompute the signature a client made over its request — from the
// Authorization header or from a presigned URL's query — with the secret of its access key, and compare. The rules
// are AWS's ("Create a canonical request for Signature Version 4"), with S3's twists: the path is not normalised and
// is encoded once, and the payload hash is whatever x-amz-content-sha256 declares (a hash, UNSIGNED-PAYLOAD, or one
// of the STREAMING-* modes whose chunks carry signatures of their own, see aws-chunked.ts).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import { S3Error } from './s3-error.js';

export interface SignedRequest {
  readonly method: string;
  /** The path exactly as on the request line, percent-encoded, without the query. */
  readonly rawPath: string;
  /** The raw query string after '?', '' when none. */
  readonly rawQuery: string;
  readonly headers: IncomingHttpHeaders;
}

export interface VerifyOptions {
  readonly region: string;
  readonly lookupSecret: (accessKeyId: string) => string | undefined;
  readonly nowMs: number;
  readonly maxClockSkewMs?: number;
}

export type PayloadMode =
  | { readonly kind: 'unsigned' }
  | { readonly kind: 'sha256'; readonly hexDigest: string }
  | { readonly kind: 'streaming-signed'; readonly trailer: boolean }
  | { readonly kind: 'streaming-unsigned-trailer' };

/** What the aws-chunked decoder needs to verify each chunk's signature, which chains from the request's. */
export interface ChunkSigningContext {
  readonly seedSignature: string;
  readonly signingKey: Buffer;
  readonly amzDate: string;
  readonly scope: string;
}

export interface VerifiedRequest {
  readonly accessKeyId: string;
  readonly payload: PayloadMode;
  readonly chunkSigning: ChunkSigningContext | undefined;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const SERVICE = 's3';
const CLOCK_SKEW_MAX_MS = 15 * 60 * 1000;
const PRESIGN_EXPIRES_MAX_SECONDS = 7 * 24 * 3600;
export const EMPTY_SHA256 = createHash('sha256').digest('hex');

interface Credential {
  readonly accessKeyId: string;
  readonly date: string;
  readonly region: string;
  readonly service: string;
}

export function verifySignature(request: SignedRequest, options: VerifyOptions): VerifiedRequest {
  const authorization = header(request.headers, 'authorization');
  const query = parseQuery(request.rawQuery);
  if (authorization !== undefined) return verifyHeaderSignature(request, authorization, query, options);
  if (query.some(([name]) => name === 'X-Amz-Algorithm' || name === 'X-Amz-Signature')) return verifyPresigned(request, query, options);
  if (query.some(([name]) => name === 'Signature' || name === 'AWSAccessKeyId')) throw signatureV2Refused();
  throw new S3Error('AccessDenied', 403, 'Access Denied: the request is not signed');
}

function verifyHeaderSignature(request: SignedRequest, authorization: string, query: Array<[string, string]>, options: VerifyOptions): VerifiedRequest {
  if (authorization.startsWith('AWS ')) throw signatureV2Refused();
  if (!authorization.startsWith(`${ALGORITHM} `)) {
    throw new S3Error('AuthorizationHeaderMalformed', 400, `The authorization header uses an unsupported algorithm; expected ${ALGORITHM}`);
  }
  const fields = new Map<string, string>();
  for (const part of authorization.slice(ALGORITHM.length + 1).split(',')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credentialText = fields.get('Credential');
  const signedHeadersText = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credentialText === undefined || signedHeadersText === undefined || signature === undefined) {
    throw new S3Error('AuthorizationHeaderMalformed', 400, 'The authorization header is malformed: it needs Credential, SignedHeaders and Signature');
  }
  const credential = parseCredential(credentialText, options);
  const amzDate = header(request.headers, 'x-amz-date') ?? dateHeaderAsAmzDate(header(request.headers, 'date'));
  if (amzDate === undefined) throw new S3Error('AccessDenied', 403, 'AWS authentication requires a valid Date or x-amz-date header');
  const requestMs = parseAmzDate(amzDate);
  if (!amzDate.startsWith(credential.date)) {
    throw new S3Error('SignatureDoesNotMatch', 403, 'The date of the credential scope does not match the request date');
  }
  const skewMs = options.maxClockSkewMs ?? CLOCK_SKEW_MAX_MS;
  if (Math.abs(options.nowMs - requestMs) > skewMs) {
    throw new S3Error('RequestTimeTooSkewed', 403, 'The difference between the request time and the server\'s time is too large.');
  }
  const contentSha256 = header(request.headers, 'x-amz-content-sha256');
  if (contentSha256 === undefined) {
    throw new S3Error('InvalidRequest', 400, 'Missing required header for this request: x-amz-content-sha256');
  }
  const payload = payloadMode(contentSha256);
  const signedHeaders = parseSignedHeaders(signedHeadersText);
  const canonical = canonicalRequest(request, query, signedHeaders, contentSha256);
  const secret = secretFor(credential.accessKeyId, options);
  const signingKey = deriveSigningKey(secret, credential);
  const scope = scopeOf(credential);
  const expected = hmacHex(signingKey, stringToSign(amzDate, scope, canonical));
  if (!sameSignature(expected, signature)) throw signatureMismatch();
  const streaming = payload.kind === 'streaming-signed';
  return {
    accessKeyId: credential.accessKeyId,
    payload,
    chunkSigning: streaming ? { seedSignature: expected, signingKey, amzDate, scope } : undefined,
  };
}

function verifyPresigned(request: SignedRequest, query: Array<[string, string]>, options: VerifyOptions): VerifiedRequest {
  const value = (name: string) => query.find(([key]) => key === name)?.[1];
  const algorithm = value('X-Amz-Algorithm');
  const credentialText = value('X-Amz-Credential');
  const amzDate = value('X-Amz-Date');
  const expiresText = value('X-Amz-Expires');
  const signedHeadersText = value('X-Amz-SignedHeaders');
  const signature = value('X-Amz-Signature');
  if (algorithm !== ALGORITHM) throw new S3Error('AuthorizationQueryParametersError', 400, `X-Amz-Algorithm must be ${ALGORITHM}`);
  if (credentialText === undefined || amzDate === undefined || expiresText === undefined || signedHeadersText === undefined || signature === undefined) {
    throw new S3Error(
      'AuthorizationQueryParametersError',
      400,
      'Query-string authentication requires X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature',
    );
  }
  const credential = parseCredential(credentialText, options);
  const requestMs = parseAmzDate(amzDate);
  const expiresSeconds = Number(expiresText);
  if (!Number.isInteger(expiresSeconds) || expiresSeconds < 1 || expiresSeconds > PRESIGN_EXPIRES_MAX_SECONDS) {
    throw new S3Error('AuthorizationQueryParametersError', 400, `X-Amz-Expires must be between 1 and ${PRESIGN_EXPIRES_MAX_SECONDS} seconds`);
  }
  if (options.nowMs > requestMs + expiresSeconds * 1000) throw new S3Error('AccessDenied', 403, 'Request has expired');
  if (requestMs - options.nowMs > (options.maxClockSkewMs ?? CLOCK_SKEW_MAX_MS)) {
    throw new S3Error('AccessDenied', 403, 'Request is not valid yet');
  }
  const signedHeaders = parseSignedHeaders(signedHeadersText);
  const contentSha256 = header(request.headers, 'x-amz-content-sha256') ?? 'UNSIGNED-PAYLOAD';
  const canonical = canonicalRequest(
    request,
    query.filter(([name]) => name !== 'X-Amz-Signature'),
    signedHeaders,
    // A presigned URL signs no body: its payload hash is UNSIGNED-PAYLOAD unless the signer put a header in.
    signedHeaders.includes('x-amz-content-sha256') ? contentSha256 : 'UNSIGNED-PAYLOAD',
  );
  const secret = secretFor(credential.accessKeyId, options);
  const signingKey = deriveSigningKey(secret, credential);
  const expected = hmacHex(signingKey, stringToSign(amzDate, scopeOf(credential), canonical));
  if (!sameSignature(expected, signature)) throw signatureMismatch();
  return { accessKeyId: credential.accessKeyId, payload: { kind: 'unsigned' }, chunkSigning: undefined };
}

/** A Transform passing the body through that fails at its end unless it hashes to the signed x-amz-content-sha256. */
export function createPayloadHashCheck(expectedHexDigest: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      if (hash.digest('hex') !== expectedHexDigest.toLowerCase()) {
        done(new S3Error('XAmzContentSHA256Mismatch', 400, 'The provided x-amz-content-sha256 header does not match what was computed.'));
      } else done();
    },
  });
}

// ── the pieces of the signature ─────────────────────────────────────────────────────────────────────────────────

function canonicalRequest(request: SignedRequest, query: Array<[string, string]>, signedHeaders: string[], payloadHash: string): string {
  return [
    request.method,
    canonicalUri(request.rawPath),
    canonicalQuery(query),
    ...signedHeaders.map((name) => `${name}:${canonicalHeaderValue(request.headers, name)}`),
    '',
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

/** The path decoded once and encoded once with RFC 3986's unreserved set; '/' separates and stays. */
function canonicalUri(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  return path
    .split('/')
    .map((segment) => uriEncode(safeDecode(segment)))
    .join('/');
}

function canonicalQuery(query: Array<[string, string]>): string {
  return query
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([nameA, valueA], [nameB, valueB]) => (nameA < nameB ? -1 : nameA > nameB ? 1 : valueA < valueB ? -1 : valueA > valueB ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** Query parameters as sent, each name and value percent-decoded once ('+' stays a plus, as the signers encode it). */
function parseQuery(rawQuery: string): Array<[string, string]> {
  if (rawQuery === '') return [];
  return rawQuery
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const at = part.indexOf('=');
      return at < 0 ? [safeDecode(part), ''] : [safeDecode(part.slice(0, at)), safeDecode(part.slice(at + 1))];
    });
}

function canonicalHeaderValue(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (value === undefined) throw signatureMismatch(`the signed header ${name} is missing from the request`);
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined.trim().replace(/\s+/g, ' ');
}

function parseSignedHeaders(text: string): string[] {
  const names = text.split(';').map((name) => name.trim().toLowerCase());
  if (!names.includes('host')) throw new S3Error('AccessDenied', 403, 'The host header must be signed');
  return names;
}

function parseCredential(text: string, options: VerifyOptions): Credential {
  const parts = text.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1] as string)) {
    throw new S3Error('AuthorizationHeaderMalformed', 400, 'The credential is malformed; expected "<key id>/<YYYYMMDD>/<region>/s3/aws4_request"');
  }
  const credential: Credential = {
    accessKeyId: parts[0] as string,
    date: parts[1] as string,
    region: parts[2] as string,
    service: parts[3] as string,
  };
  if (credential.region !== options.region) {
    throw new S3Error(
      'AuthorizationHeaderMalformed',
      400,
      `The authorization header is malformed; the region '${credential.region}' is wrong; expecting '${options.region}'`,
      { Region: options.region },
    );
  }
  if (credential.service !== SERVICE) {
    throw new S3Error('AuthorizationHeaderMalformed', 400, `The credential scope names service '${credential.service}'; expecting 's3'`);
  }
  return credential;
}

function payloadMode(contentSha256: string): PayloadMode {
  switch (contentSha256) {
    case 'UNSIGNED-PAYLOAD':
      return { kind: 'unsigned' };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD':
      return { kind: 'streaming-signed', trailer: false };
    case 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER':
      return { kind: 'streaming-signed', trailer: true };
    case 'STREAMING-UNSIGNED-PAYLOAD-TRAILER':
      return { kind: 'streaming-unsigned-trailer' };
    default:
      if (!/^[0-9a-fA-F]{64}$/.test(contentSha256)) {
        throw new S3Error('InvalidArgument', 400, `x-amz-content-sha256 must be a SHA-256 hex digest, UNSIGNED-PAYLOAD or a STREAMING-* mode`);
      }
      return { kind: 'sha256', hexDigest: contentSha256.toLowerCase() };
  }
}

function secretFor(accessKeyId: string, options: VerifyOptions): string {
  const secret = options.lookupSecret(accessKeyId);
  if (secret === undefined) {
    throw new S3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.', { AWSAccessKeyId: accessKeyId });
  }
  return secret;
}

export function deriveSigningKey(secret: string, credential: { date: string; region: string; service: string }): Buffer {
  const dateKey = hmac(Buffer.from(`AWS4${secret}`, 'utf8'), credential.date);
  const regionKey = hmac(dateKey, credential.region);
  const serviceKey = hmac(regionKey, credential.service);
  return hmac(serviceKey, 'aws4_request');
}

function scopeOf(credential: Credential): string {
  return `${credential.date}/${credential.region}/${credential.service}/aws4_request`;
}

/**
 * The canonical request is hashed as the bytes the client signed. Everything in it is ASCII (the path and query are
 * percent-encoded) except header values, which node hands over one character per byte received (Latin-1): turned
 * back into those bytes, a raw byte such as 0xFC in an x-amz-meta-* value is hashed as sent, not as its UTF-8.
 */
function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(Buffer.from(canonical, 'latin1'))].join('\n');
}

export function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sameSignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given.toLowerCase(), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function signatureMismatch(detail?: string): S3Error {
  return new S3Error(
    'SignatureDoesNotMatch',
    403,
    `The request signature we calculated does not match the signature you provided. Check your key and signing method.${detail ? ` (${detail})` : ''}`,
  );
}

function signatureV2Refused(): S3Error {
  return new S3Error('InvalidRequest', 400, 'shardpool accepts only AWS Signature Version 4 (AWS4-HMAC-SHA256); configure the client for it');
}

/** "20130524T000000Z" → epoch ms. */
function parseAmzDate(text: string): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!match) throw new S3Error('AccessDenied', 403, 'X-Amz-Date must be in the ISO 8601 basic format YYYYMMDDTHHMMSSZ');
  const [, year, month, day, hour, minute, second] = match.map(Number) as number[];
  return Date.UTC(year as number, (month as number) - 1, day, hour, minute, second);
}

function dateHeaderAsAmzDate(date: string | undefined): string | undefined {
  if (date === undefined) return undefined;
  const ms = Date.parse(date);
  if (Number.isNaN(ms)) return undefined;
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.");
  }
}

/** RFC 3986 percent-encoding of every byte outside A–Z a–z 0–9 - _ . ~ (upper-case hex). */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`);
}
