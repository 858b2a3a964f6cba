// Object operations: PutObject (and CopyObject), GetObject with ranges and conditions, HeadObject, DeleteObject and
// DeleteObjects. Writes run through the pool gate so maintenance that needs the pool alone can wait for them.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isShardpoolError } from '../../errors.js';
import { assert } from '../../assert.js';
import type { CannedAcl, CatalogTransaction, ObjectMetadata, ObjectRow } from '../../pool/catalog/catalog.js';
import type { ByteRange } from '../../pool/object-reader.js';
import { authorizeCopySource, bucketAccessOf, mayWriteKey, requireVersionReadable } from './s3-access.js';
import { cannedAclOf } from './s3-acl.js';
import { readSmallBody } from './s3-body.js';
import {
  CONTENT_HEADERS,
  contentHeadersFrom,
  header,
  httpDate,
  isoDate,
  metadataOf,
  requireBucket,
  requireBucketInCommit,
  sendEmpty,
  sendXml,
  toS3Error,
  userMetadataFrom,
  type S3Call,
} from './s3-call.js';
import { checkCopySourceConditions, checkReadConditions, checkWriteCondition, writeConditionOf, type WriteCondition } from './s3-conditions.js';
import { accessDenied, S3Error } from './s3-error.js';
import { PART_NUMBER_MAX, poolKeyOf } from './s3-names.js';
import { openForRead, recordOfMetadata, sealBody, sseOfWrite, sseResponseHeaders, storedReadOf } from './s3-sse.js';
import { recordPlaintextBytes } from '../../format/sse-layout.js';
import { parseXmlBody, xmlDocument, type XmlElement } from './xml.js';

const DELETE_OBJECTS_MAX = 1000;
const DELETE_BODY_MAX_BYTES = 2 * 1024 * 1024;

export async function putObject(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const key = requireKey(call);
  if (header(call, 'x-amz-copy-source') !== undefined) return copyObject(call, bucket, key);
  const poolKey = poolKeyOf(bucket, key);
  const contentType = header(call, 'content-type');
  const userMetadata = userMetadataFrom(call);
  const contentHeaders = contentHeadersFrom(call);
  const sse = sseOfWrite(call);
  const acl = cannedAclOf(call);
  const condition = await refuseFailingWriteEarly(call, poolKey, key);
  const bucketAccess = await bucketAccessOf(call.context, bucket);
  const body = call.body();
  const sealed = await sealBody(call.context.pool.directory, sse, { stream: body.stream, plaintextMd5Hex: () => body.md5Hex() });
  const result = await call.context.gate.shared(() =>
    call.context.pool.put(poolKey, sealed.stream, {
      metadata: () => ({ etag: sealed.etag(), contentType, userMetadata, contentHeaders, ...sealed.encryption(), ...aclFields(acl), bucketAccess }),
      inCommit: (tx, commit) => writeInCommit(tx, { bucket, key, condition, replacedVersionId: commit.replacedVersionId, superseded: commit.superseded }),
    }),
  );
  sendEmpty(call, 200, { ETag: sealed.etag(), 'x-amz-version-id': 'null', ...lastModified(result.object), ...sealed.headers });
}

async function copyObject(call: S3Call, bucket: string, key: string): Promise<void> {
  const source = parseCopySource(header(call, 'x-amz-copy-source') as string);
  // Read on the source (its bucket's, or the object's own public-read), write on the target (checked before).
  const sourceAccess = await authorizeCopySource(call, source);
  // S3 copies no ACL: the copy has the request's (private when none is given).
  const acl = cannedAclOf(call);
  const bucketAccess = await bucketAccessOf(call.context, bucket);
  const replace = (header(call, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase() === 'REPLACE';
  const sse = sseOfWrite(call);
  // Copying an object onto itself to change its encryption is a change, as S3 allows.
  if (!replace && sse === undefined && source.bucket === bucket && source.key === key) {
    throw new S3Error('InvalidRequest', 400, 'This copy request is illegal because it is trying to copy an object to itself without changing the object\'s metadata.');
  }
  // Pinned as it is looked up: an overwrite of a hot source while this copy waits for the gate cannot take the
  // version away (the copy reads what it looked up, with that version's metadata).
  const { object: sourceObject, unpin } = await lookUpPinned(call, source.bucket, source.key);
  const reader = call.context.pool.openPinned(sourceObject, unpin);
  let result;
  try {
    const sourceMetadata = await metadataOf(call.context, sourceObject);
    requireVersionReadable(sourceAccess, sourceMetadata);
    // The source decrypts with its own key (x-amz-copy-source-server-side-encryption-customer-*, or the pool's);
    // the target is encrypted as this request asks, whatever the source's was (as S3 does).
    const sourceRecord = recordOfMetadata(sourceMetadata, `${source.bucket}/${source.key}`);
    const opened = await openForRead(call, call.context.pool.directory, sourceRecord, { copySource: true });
    // The conditions are on the version pinned here, the one whose bytes are copied.
    checkCopySourceConditions(call, sourceMetadata.etag, sourceObject.createdAtMs);
    const condition = await refuseFailingWriteEarly(call, poolKeyOf(bucket, key), key);
    const plaintext = hashed(opened ? storedReadOf(opened, undefined).decrypt(reader.chunks()) : reader.chunks());
    const sealed = await sealBody(call.context.pool.directory, sse, { stream: plaintext.chunks, plaintextMd5Hex: plaintext.md5Hex });
    // The bytes, and so the ETag and the part layout it names, are the source's — but an SSE-C ETag is no MD5 of the
    // plaintext: a copy to SSE-C, or from an SSE-C object put whole, gets the ETag its own encryption gives it (a
    // multipart one keeps its parts' ETag).
    const ownEtag = sse?.kind === 'SSE-C' || (sourceRecord?.kind === 'SSE-C' && sourceMetadata.partSizesBytes === undefined);
    const etag = () => (ownEtag ? sealed.etag() : sourceMetadata.etag);
    result = await call.context.gate.shared(() =>
      call.context.pool.put(poolKeyOf(bucket, key), sealed.stream, {
        // COPY keeps everything the source was stored with; REPLACE takes the request's type, headers and user
        // metadata. The bytes of the target are this request's (encrypted as it asks), and so is their ETag.
        metadata: () => {
          const { encryption: _sourceEncryption, acl: _sourceAcl, ...kept } = sourceMetadata;
          const described = replace
            ? { contentType: header(call, 'content-type'), userMetadata: userMetadataFrom(call), contentHeaders: contentHeadersFrom(call), partSizesBytes: sourceMetadata.partSizesBytes }
            : kept;
          return { ...described, etag: etag(), ...sealed.encryption(), ...aclFields(acl), bucketAccess };
        },
        inCommit: (tx, commit) => writeInCommit(tx, { bucket, key, condition, replacedVersionId: commit.replacedVersionId, superseded: commit.superseded }),
      }),
    );
    sendXml(call, 200, xmlDocument('CopyObjectResult', { LastModified: isoDate(result.object.createdAtMs), ETag: etag() }), sealed.headers);
  } finally {
    reader.close();
  }
}

export async function getObject(call: S3Call, options: { head: boolean }): Promise<void> {
  await requireBucket(call);
  const key = requireKey(call);
  // Pinned as it is looked up: the headers and the bytes are of the same version, which stays until the read ends
  // (the reader lets go when its chunks end; letting go again below is a no-op).
  const { object, unpin } = await lookUpPinned(call, call.bucket as string, key);
  try {
    const metadata = await metadataOf(call.context, object);
    requireVersionReadable(call.access, metadata);
    // SSE-C: the right key or nothing, before anything about the object is answered (conditions included).
    const opened = await openForRead(call, call.context.pool.directory, recordOfMetadata(metadata, `${call.bucket as string}/${key}`), { copySource: false });
    const sizeBytes = opened ? recordPlaintextBytes(opened.record) : object.sizeBytes;
    const headers: Record<string, string> = {
      ...sseResponseHeaders(opened?.record),
      ETag: metadata.etag,
      'Last-Modified': httpDate(object.createdAtMs),
      'Accept-Ranges': 'bytes',
      'Content-Type': metadata.contentType ?? 'binary/octet-stream',
    };
    for (const [name, value] of Object.entries(metadata.contentHeaders ?? {})) headers[CONTENT_HEADERS[name] ?? name] = value;
    for (const [name, value] of Object.entries(metadata.userMetadata)) headers[`x-amz-meta-${name}`] = value;
    const notModified = checkReadConditions(call, metadata.etag, object.createdAtMs);
    if (notModified) {
      call.response.writeHead(304, { ETag: metadata.etag, 'Last-Modified': headers['Last-Modified'] as string });
      call.response.end();
      return;
    }
    applyResponseOverrides(call, headers);
    const part = partRange(call, metadata, sizeBytes);
    if (part?.partsCount !== undefined) headers['x-amz-mp-parts-count'] = String(part.partsCount);
    const range = part ? part.range : parseRange(header(call, 'range'), sizeBytes);
    if (range) {
      headers['Content-Range'] = `bytes ${range.startByte}-${range.endByteExclusive - 1}/${sizeBytes}`;
    }
    const length = range ? range.endByteExclusive - range.startByte : sizeBytes;
    headers['Content-Length'] = String(length);
    const status = range ? 206 : 200;
    if (options.head) {
      call.response.writeHead(status, headers);
      call.response.end();
      return;
    }
    // An encrypted object is read in whole chunks around the range, each authenticated before a byte of it goes out.
    const stored = opened && storedReadOf(opened, range);
    const reader = call.context.pool.openPinned(object, unpin, stored ? stored.storedRange : range);
    const chunks = stored ? stored.decrypt(reader.chunks()) : reader.chunks();
    // Read the first extent before the status line goes out, so a read that fails at once is a proper S3 error.
    const first = await chunks.next();
    call.response.writeHead(status, headers);
    if (first.done) {
      call.response.end();
      return;
    }
    await pipeline(
      Readable.from(
        (async function* () {
          yield first.value;
          yield* chunks;
        })(),
      ),
      call.response,
    );
  } finally {
    unpin();
  }
}

export async function deleteObject(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const key = requireKey(call);
  const poolKey = poolKeyOf(bucket, key);
  await call.context.gate.shared(async () => {
    await removeIfPresent(call, poolKey);
  });
  sendEmpty(call, 204);
}

export async function deleteObjects(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const document = parseXmlBody(await readSmallBody(call.body(), DELETE_BODY_MAX_BYTES));
  const request = document['Delete'] as { Object?: Array<{ Key?: unknown }>; Quiet?: unknown } | undefined;
  if (!request || typeof request !== 'object') throw new S3Error('MalformedXML', 400, 'The body must be a <Delete> document.');
  const objects = request.Object ?? [];
  if (objects.length === 0 || objects.length > DELETE_OBJECTS_MAX) {
    throw new S3Error('MalformedXML', 400, `DeleteObjects takes 1 to ${DELETE_OBJECTS_MAX} keys, not ${objects.length}`);
  }
  const quiet = String(request.Quiet ?? 'false').trim() === 'true';
  const deleted: XmlElement[] = [];
  const errors: XmlElement[] = [];
  await call.context.gate.shared(async () => {
    for (const entry of objects) {
      const key = typeof entry.Key === 'string' ? entry.Key : '';
      try {
        const poolKey = poolKeyOf(bucket, key);
        if (!(await mayWriteKey(call, bucket))) throw accessDenied();
        await removeIfPresent(call, poolKey);
        if (!quiet) deleted.push({ Key: key });
      } catch (error) {
        const s3Error = toS3Error(error, { bucket, key });
        errors.push({ Key: key, Code: s3Error.code, Message: s3Error.message });
      }
    }
  });
  sendXml(call, 200, xmlDocument('DeleteResult', { Deleted: deleted, Error: errors }));
}

export function requireKey(call: S3Call): string {
  if (call.key === undefined || call.key === '') throw new S3Error('InvalidArgument', 400, 'This operation needs an object key');
  return call.key;
}

/** The current object at bucket/key, pinned (see Pool.lookUpPinned); NoSuchKey when there is none. */
async function lookUpPinned(call: S3Call, bucket: string, key: string): Promise<{ object: ObjectRow; unpin: () => void }> {
  try {
    return await call.context.pool.lookUpPinned(poolKeyOf(bucket, key));
  } catch (error) {
    if (isShardpoolError(error, 'OBJECT_NOT_FOUND')) throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key });
    throw error;
  }
}

/** Deleting what is not there succeeds, as S3 does (also when a concurrent delete got there first). */
async function removeIfPresent(call: S3Call, poolKey: string): Promise<void> {
  try {
    await call.context.pool.removeObject(poolKey);
  } catch (error) {
    if (!isShardpoolError(error, 'OBJECT_NOT_FOUND')) throw error;
  }
}

/**
 * The write's condition (If-None-Match: *, If-Match), refused at once if it fails against what the key holds now, so
 * a body that could never be stored is not read; what decides is the check in the commit (writeInCommit).
 */
export async function refuseFailingWriteEarly(call: S3Call, poolKey: string, key: string): Promise<WriteCondition | undefined> {
  const condition = writeConditionOf(call);
  if (condition === undefined) return undefined;
  const current = await call.context.pool.catalog.getObject(poolKey);
  await checkWriteCondition(call.context.pool.catalog, condition, { versionId: current?.versionId, key });
  return condition;
}

/** A PutObject's or CopyObject's commit: the bucket still exists, and the key held what the condition asks. */
async function writeInCommit(
  tx: CatalogTransaction,
  options: { bucket: string; key: string; condition: WriteCondition | undefined; replacedVersionId: string | undefined; superseded: boolean },
): Promise<void> {
  await requireBucketInCommit(tx, options.bucket);
  await checkWriteCondition(tx, options.condition, { versionId: options.replacedVersionId, key: options.key, superseded: options.superseded });
}

/** The ObjectMetadata field for a canned ACL: absent for private (what a version without one is). */
function aclFields(acl: CannedAcl | undefined): Pick<ObjectMetadata, 'acl'> {
  return acl === 'public-read' ? { acl } : {};
}

function lastModified(object: ObjectRow): Record<string, string> {
  return { 'Last-Modified': httpDate(object.createdAtMs) };
}

/** "/bucket/key" or "bucket/key", URL-encoded, optionally with "?versionId=…" (only "null" exists here). */
function parseCopySource(value: string): { bucket: string; key: string } {
  const [pathPart = '', query = ''] = value.split('?', 2);
  const versionId = new URLSearchParams(query).get('versionId');
  if (versionId !== null && versionId !== 'null') throw new S3Error('NoSuchVersion', 404, 'shardpool keeps no object versions');
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathPart.replace(/^\//, ''));
  } catch {
    throw new S3Error('InvalidArgument', 400, 'x-amz-copy-source is not valid URL encoding');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) throw new S3Error('InvalidArgument', 400, 'x-amz-copy-source must be /bucket/key');
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

/** GetObject's response-* query parameters: the header each one sets in the answer, whatever the object holds. */
const RESPONSE_OVERRIDES: Readonly<Record<string, string>> = {
  'response-content-type': 'Content-Type',
  'response-content-language': 'Content-Language',
  'response-expires': 'Expires',
  'response-cache-control': 'Cache-Control',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
};

function applyResponseOverrides(call: S3Call, headers: Record<string, string>): void {
  for (const [parameter, name] of Object.entries(RESPONSE_OVERRIDES)) {
    const value = call.query.get(parameter);
    if (value === null) continue;
    if (/[^\t\u0020-\u007e\u0080-\u00ff]/.test(value)) throw new S3Error('InvalidArgument', 400, `${parameter} holds a character a header cannot carry`, { ArgumentName: parameter });
    headers[name] = value;
  }
}

/**
 * GET/HEAD ?partNumber=N: the bytes of part N of a multipart object (with its number of parts), as a range; an object
 * put whole is its own part 1. Undefined without partNumber. Part numbers beyond the object's are 416
 * InvalidPartNumber; a Range beside partNumber is refused, as S3 does.
 */
function partRange(call: S3Call, metadata: ObjectMetadata, sizeBytes: number): { range: ByteRange | undefined; partsCount: number | undefined } | undefined {
  const value = call.query.get('partNumber');
  if (value === null) return undefined;
  const partNumber = /^\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > PART_NUMBER_MAX) {
    throw new S3Error('InvalidArgument', 400, `Part number must be an integer between 1 and ${PART_NUMBER_MAX}, inclusive`, { ArgumentName: 'partNumber', ArgumentValue: value });
  }
  if (header(call, 'range') !== undefined) throw new S3Error('InvalidRequest', 400, 'Cannot specify both Range header and partNumber query parameter');
  const sizes = metadata.partSizesBytes ?? [sizeBytes];
  if (partNumber > sizes.length) throw new S3Error('InvalidPartNumber', 416, 'The requested partnumber is not satisfiable', { PartNumberRequested: value, ActualPartCount: String(sizes.length) });
  let startByte = 0;
  for (const size of sizes.slice(0, partNumber - 1)) startByte += size;
  const lengthBytes = sizes[partNumber - 1] as number;
  assert(startByte + lengthBytes <= sizeBytes, 'the parts recorded with an object lie within it');
  return {
    // An empty part (an empty object) has no byte to name in a Content-Range: it is answered whole.
    range: lengthBytes === 0 ? undefined : { startByte, endByteExclusive: startByte + lengthBytes },
    partsCount: metadata.partSizesBytes?.length,
  };
}

/** A single "bytes=a-b", "bytes=a-" or "bytes=-n" range; other forms are ignored (the whole object), as S3 does. */
export function parseRange(value: string | undefined, sizeBytes: number): ByteRange | undefined {
  if (value === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const unsatisfiable = () =>
    new S3Error('InvalidRange', 416, 'The requested range is not satisfiable', { RangeRequested: value, ActualObjectSize: String(sizeBytes) });
  if (match[1] === '') {
    const suffix = Number(match[2]);
    // The last 0 bytes, or any suffix of an empty object, is no byte at all: unsatisfiable (RFC 9110 § 14.1.2).
    if (suffix === 0 || sizeBytes === 0) throw unsatisfiable();
    return { startByte: Math.max(sizeBytes - suffix, 0), endByteExclusive: sizeBytes };
  }
  const start = Number(match[1]);
  if (start >= sizeBytes) throw unsatisfiable();
  const end = match[2] === '' ? sizeBytes - 1 : Math.min(Number(match[2]), sizeBytes - 1);
  if (end < start) return undefined;
  return { startByte: start, endByteExclusive: end + 1 };
}

/** A stream of bytes with the MD5 of what went through it (once it ended). */
function hashed(source: AsyncIterable<Buffer>): { chunks: AsyncGenerator<Buffer>; md5Hex: () => string } {
  const md5 = createHash('md5');
  return {
    chunks: (async function* () {
      for await (const chunk of source) {
        md5.update(chunk);
        yield chunk;
      }
    })(),
    md5Hex: () => md5.copy().digest('hex'),
  };
}
