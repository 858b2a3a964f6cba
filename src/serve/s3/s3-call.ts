// One S3 request on its way through the server: what was asked (bucket, key, query), who asked (the verified
// signature), and how answers are written back.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ShardpoolError, isShardpoolError } from '../../errors.js';
import type { CatalogOperations, CatalogTransaction, ObjectMetadata, ObjectRow } from '../../pool/catalog/catalog.js';
import type { Pool } from '../../pool/pool.js';
import type { PoolGate } from '../pool-gate.js';
import type { Access } from './s3-access.js';
import type { DecodedBody } from './s3-body.js';
import { S3Catalog } from './s3-catalog.js';
import { S3Error } from './s3-error.js';
import type { VerifiedRequest } from './sigv4.js';

export interface S3Context {
  readonly pool: Pool;
  readonly s3: S3Catalog;
  readonly gate: PoolGate;
  readonly region: string;
  readonly log: Logger;
  /** A request body that sends nothing for this long is aborted with RequestTimeout (undefined: never). */
  readonly bodyIdleTimeoutMs?: number | undefined;
}

export interface S3Call {
  readonly context: S3Context;
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly query: URLSearchParams;
  readonly verified: VerifiedRequest;
  /** Who asked, and what authorised the request (s3-access.ts). */
  readonly access: Access;
  readonly requestId: string;
  /**
   * The decoded request body (read at most once). `checksumHeadersDescribeBody: false` when x-amz-checksum-* headers
   * describe something else (CompleteMultipartUpload: the whole object, not its XML body).
   */
  body(options?: { checksumHeadersDescribeBody: boolean }): DecodedBody;
}

export function sendXml(call: S3Call, status: number, xml: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(xml, 'utf8');
  call.response.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': String(body.length), ...headers });
  call.response.end(body);
}

export function sendEmpty(call: S3Call, status: number, headers: Record<string, string> = {}): void {
  call.response.writeHead(status, { 'Content-Length': '0', ...headers });
  call.response.end();
}

export async function requireBucket(call: S3Call): Promise<string> {
  const bucket = call.bucket;
  if (bucket === undefined || (await call.context.s3.getBucket(bucket)) === undefined) throw noSuchBucket(bucket ?? '');
  return bucket;
}

/**
 * For PutOptions.inCommit of a write into `bucket`: refuses the commit if the bucket was deleted while the body was
 * arriving. DeleteBucket's emptiness check is one transaction too, so either the object lands in a bucket that
 * still exists (and the bucket is then not empty), or the bucket is gone first and the put is refused.
 */
export async function requireBucketInCommit(tx: CatalogTransaction, bucket: string): Promise<void> {
  if ((await S3Catalog.within(tx).getBucket(bucket)) === undefined) throw noSuchBucket(bucket);
}

export function noSuchBucket(bucket: string): S3Error {
  return new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist', { BucketName: bucket });
}

/**
 * A non-negative decimal query parameter (max-keys, max-uploads, max-parts, part-number-marker), at most `max`;
 * `fallback` when absent. Anything else (abc, -1, 1e3, empty) is InvalidArgument, as S3 answers, never a 500.
 */
export function queryCount(call: S3Call, name: string, options: { fallback: number; max: number }): number {
  const value = call.query.get(name);
  if (value === null) return options.fallback;
  const number = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) {
    throw new S3Error('InvalidArgument', 400, `${name} must be a non-negative integer, not ${JSON.stringify(value)}`, {
      ArgumentName: name,
      ArgumentValue: value,
    });
  }
  return Math.min(number, options.max);
}

export function header(call: S3Call, name: string): string | undefined {
  const value = call.request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The ETag S3 clients see: the stored one, or for objects put by the CLI (no MD5 known) a multipart-style tag. */
export async function etagOf(context: S3Context, object: ObjectRow): Promise<string> {
  return (await metadataOf(context, object)).etag;
}

/** The ETag S3 clients see for a version: the stored one, or for objects put by the CLI (no MD5 known) a multipart-style tag. */
export async function etagOfVersion(catalog: Pick<CatalogOperations, 'objectMetadata'>, versionId: string): Promise<string> {
  return (await catalog.objectMetadata(versionId))?.etag ?? cliEtag(versionId);
}

export function cliEtag(versionId: string): string {
  return `"${versionId.replaceAll('-', '')}-1"`;
}

export async function metadataOf(context: S3Context, object: ObjectRow): Promise<ObjectMetadata> {
  return (
    (await context.pool.catalog.objectMetadata(object.versionId)) ?? {
      etag: cliEtag(object.versionId),
      contentType: undefined,
      userMetadata: {},
    }
  );
}

/** x-amz-meta-* request headers as user metadata (names lower-cased, prefix dropped); at most 2 KiB like S3. */
export function userMetadataFrom(call: S3Call): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(call.request.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const text = Array.isArray(value) ? value.join(',') : value;
    metadata[name.slice('x-amz-meta-'.length)] = text;
    // Header values are one character per byte received (node's Latin-1 view): their length is their size.
    bytes += name.length - 'x-amz-meta-'.length + Buffer.byteLength(text, 'latin1');
  }
  if (bytes > 2048) throw new S3Error('MetadataTooLarge', 400, 'Your metadata headers exceed the maximum allowed metadata size (2 KiB).');
  return metadata;
}

/** The headers S3 stores with an object beside its Content-Type, and returns on GET and HEAD (lower-case → as sent). */
export const CONTENT_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'Cache-Control',
  'content-disposition': 'Content-Disposition',
  'content-encoding': 'Content-Encoding',
  'content-language': 'Content-Language',
  expires: 'Expires',
};

/**
 * The request's CONTENT_HEADERS as they are to be stored (undefined: none). Content-Encoding loses its aws-chunked
 * token, which describes the request's framing and not the object (S3 drops it too).
 */
export function contentHeadersFrom(call: S3Call): Record<string, string> | undefined {
  const stored: Record<string, string> = {};
  for (const name of Object.keys(CONTENT_HEADERS)) {
    let value = header(call, name);
    if (name === 'content-encoding' && value !== undefined) {
      value = value
        .split(',')
        .map((token) => token.trim())
        .filter((token) => token !== '' && token.toLowerCase() !== 'aws-chunked')
        .join(', ');
    }
    if (value !== undefined && value !== '') stored[name] = value;
  }
  return Object.keys(stored).length === 0 ? undefined : stored;
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** Turns pool errors into the S3 errors clients understand; anything else is an internal error. */
export function toS3Error(error: unknown, call: { key: string | undefined; bucket: string | undefined }): S3Error {
  if (error instanceof S3Error) return error;
  if (isShardpoolError(error)) return fromPoolError(error, call);
  return new S3Error('InternalError', 500, 'We encountered an internal error. Please try again.');
}

function fromPoolError(error: ShardpoolError, call: { key: string | undefined }): S3Error {
  const key = call.key ?? '';
  switch (error.code) {
    case 'OBJECT_NOT_FOUND':
      return new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key });
    case 'KEY_INVALID':
      return new S3Error('InvalidArgument', 400, error.message, { Key: key });
    case 'POLICY_NEEDS_MORE_DISKS':
    case 'DISK_FULL':
    case 'DEVICE_ALLOCATIONS_LIMIT':
    case 'CATALOG_IO_FAILED':
    case 'CATALOG_UNREACHABLE':
      return new S3Error('ServiceUnavailable', 503, `${error.code}: ${error.message}`);
    case 'OBJECT_CHANGED_DURING_READ':
      return new S3Error('ServiceUnavailable', 503, 'The object changed while it was read; retry the request.');
    default:
      return new S3Error('InternalError', 500, `${error.code}: ${error.message}`);
  }
}
