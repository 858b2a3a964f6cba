// Multipart uploads. Each upload of a part is stored as a hidden pool object under a key of its own (a reserved key,
// so it is scrubbed, drained and rebuilt like any object while the upload is open); its part row is written in the
// same catalog transaction that commits its bytes, so ListParts, Complete and the bytes always agree. Completing
// the upload writes the final object from exactly the part versions it validated (pinned when validated), in order —
// a full copy, so the final object is one ordinary pool object whatever the part sizes — and the same transaction
// that commits it ends the upload and queues every part object as garbage. S3 may take long to complete an upload,
// so the 200 status goes out at once and whitespace keeps the connection alive; a failure then arrives as an <Error>
// document in the body, as S3 clients expect.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { isShardpoolError } from '../../errors.js';
import { killPoint } from '../../pool/kill-points.js';
import type { ObjectMetadata } from '../../pool/catalog/catalog.js';
import type { ObjectReader } from '../../pool/object-reader.js';
import type { Pool } from '../../pool/pool.js';
import { bucketAccessOf } from './s3-access.js';
import { readSmallBody } from './s3-body.js';
import { S3Error } from './s3-error.js';
import {
  contentHeadersFrom,
  header,
  isoDate,
  metadataOf,
  queryCount,
  requireBucket,
  requireBucketInCommit,
  sendEmpty,
  sendXml,
  toS3Error,
  userMetadataFrom,
  type S3Call,
  type S3Context,
} from './s3-call.js';
import { S3Catalog, type PartRow, type UploadRow } from './s3-catalog.js';
import { checkWriteCondition, type WriteCondition } from './s3-conditions.js';
import { refuseFailingWriteEarly, requireKey } from './s3-objects.js';
import { PART_NUMBER_MAX, partKeyOf, poolKeyOf } from './s3-names.js';
import { parseXmlBody, xmlDocument, xmlError } from './xml.js';
import {
  decodeUploadEncryption,
  encryptionField,
  recordOf,
  recordOfMetadata,
  sealBody,
  sseOfUploadRequest,
  sseOfWrite,
  sseResponseHeaders,
  uploadEncryptionOf,
  type UploadEncryption,
} from './s3-sse.js';
import type { SseRecord, SseSegment } from '../../format/sse-layout.js';
import { assert } from '../../assert.js';

/** S3's smallest part (all but the last); clients size their parts by it. */
export const PART_SIZE_MIN_BYTES = 5 * 1024 * 1024;
const COMPLETE_BODY_MAX_BYTES = 4 * 1024 * 1024;
const KEEP_ALIVE_INTERVAL_MS = 10_000;

export async function createMultipartUpload(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const key = requireKey(call);
  poolKeyOf(bucket, key);
  const encryption = uploadEncryptionOf(sseOfWrite(call));
  const upload = await call.context.s3.createUpload({
    bucket,
    key,
    contentType: header(call, 'content-type'),
    userMetadata: userMetadataFrom(call),
    contentHeaders: contentHeadersFrom(call),
    ...(encryption === undefined ? {} : { encryption: { ...encryption } }),
  });
  sendXml(call, 200, xmlDocument('InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: upload.uploadId }), sseResponseHeaders(encryption));
}

export async function uploadPart(call: S3Call): Promise<void> {
  const upload = await requireUpload(call);
  if (header(call, 'x-amz-copy-source') !== undefined) throw new S3Error('NotImplemented', 501, 'UploadPartCopy is not supported by shardpool');
  const partNumber = Number(call.query.get('partNumber'));
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > PART_NUMBER_MAX) {
    throw new S3Error('InvalidArgument', 400, `Part number must be an integer between 1 and ${PART_NUMBER_MAX}, inclusive`);
  }
  // A key of this upload's own: a second upload of the same part number racing this one writes elsewhere, and the
  // part row ends up naming whichever committed last, with that one's ETag and size.
  const partKey = partKeyOf(upload.uploadId, partNumber, randomBytes(8).toString('hex'));
  // Each part is its own segment of the object, with a data key of its own (SSE-C: wrapped with the key every part
  // carries, which must be the upload's).
  const encryption = decodeUploadEncryption(upload.encryption);
  const request = sseOfUploadRequest(call, encryption, { keyRequired: true });
  const body = call.body();
  const sealed = await sealBody(call.context.pool.directory, request, { stream: body.stream, plaintextMd5Hex: () => body.md5Hex() });
  const etag = sealed.etag;
  await call.context.gate.shared(() =>
    call.context.pool.put(partKey, sealed.stream, {
      internal: true,
      metadata: () => ({ etag: etag(), contentType: undefined, userMetadata: {}, ...sealed.encryption() }),
      // In the part's own commit: the row names these bytes, the part it replaces goes, and a part for an upload that
      // was aborted or completed while it arrived is refused, so nothing of it remains.
      inCommit: async (tx) => {
        const superseded = await S3Catalog.within(tx).replacePart({ uploadId: upload.uploadId, partNumber, partKey, etag: etag(), sizeBytes: body.sizeBytes() });
        if (superseded === undefined) throw noSuchUpload(upload.uploadId);
        return superseded;
      },
    }),
  );
  sendEmpty(call, 200, { ETag: etag(), ...sealed.headers });
}

export async function listParts(call: S3Call): Promise<void> {
  const upload = await requireUpload(call);
  const marker = queryCount(call, 'part-number-marker', { fallback: 0, max: PART_NUMBER_MAX });
  const maxParts = queryCount(call, 'max-parts', { fallback: 1000, max: 1000 });
  const parts = await call.context.s3.listParts(upload.uploadId, marker, maxParts + 1);
  const truncated = parts.length > maxParts;
  const shown = parts.slice(0, maxParts);
  sendXml(
    call,
    200,
    xmlDocument('ListPartsResult', {
      Bucket: upload.bucket,
      Key: upload.key,
      UploadId: upload.uploadId,
      PartNumberMarker: marker,
      NextPartNumberMarker: shown.length > 0 ? (shown[shown.length - 1] as PartRow).partNumber : marker,
      MaxParts: maxParts,
      IsTruncated: truncated,
      StorageClass: 'STANDARD',
      Part: shown.map((part) => ({ PartNumber: part.partNumber, LastModified: isoDate(part.uploadedAtMs), ETag: part.etag, Size: part.sizeBytes })),
    }),
  );
}

export async function listMultipartUploads(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const prefix = call.query.get('prefix') ?? '';
  const maxUploads = queryCount(call, 'max-uploads', { fallback: 1000, max: 1000 });
  const uploads = await call.context.s3.listUploads(bucket, prefix, maxUploads + 1);
  const shown = uploads.slice(0, maxUploads);
  sendXml(
    call,
    200,
    xmlDocument('ListMultipartUploadsResult', {
      Bucket: bucket,
      KeyMarker: '',
      UploadIdMarker: '',
      Prefix: prefix,
      MaxUploads: maxUploads,
      IsTruncated: uploads.length > maxUploads,
      Upload: shown.map((upload) => ({ Key: upload.key, UploadId: upload.uploadId, Initiated: isoDate(upload.createdAtMs), StorageClass: 'STANDARD' })),
    }),
  );
}

export async function abortMultipartUpload(call: S3Call): Promise<void> {
  const upload = await requireUpload(call);
  await call.context.gate.shared(async () => {
    // One transaction ends the upload and queues every part object as garbage: a part committing at the same time
    // either commits first (and is removed here) or finds the upload gone (and is refused).
    const queued = await call.context.s3.finishUpload(upload.uploadId);
    if (queued === undefined) throw noSuchUpload(upload.uploadId);
    await collectAll(call.context.pool, queued);
  });
  sendEmpty(call, 204);
}

export async function completeMultipartUpload(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const key = requireKey(call);
  const uploadId = call.query.get('uploadId') ?? '';
  // A checksum header on Complete is the client's checksum of the whole object (not of this XML body); shardpool keeps
  // no full-object checksums, and every part was verified against its own when it was uploaded.
  const requested = parseCompleteRequest(await readSmallBody(call.body({ checksumHeadersDescribeBody: false }), COMPLETE_BODY_MAX_BYTES));
  // Each validated part is pinned by its own key, which only ever holds that one upload of the part: the object is
  // written from exactly the bytes validated here. A part replaced (a re-upload) or removed (an Abort) before its pin
  // is InvalidPart; one replaced after it still holds the validated bytes until this Complete lets go.
  const upload = await call.context.s3.getUpload(uploadId);
  if (!upload || upload.bucket !== bucket || upload.key !== key) {
    await answerRetriedComplete(call, { bucket, key, uploadId, etag: multipartEtag(requested) });
    return;
  }
  const encryption = decodeUploadEncryption(upload.encryption);
  // Complete needs no key (the parts are joined as stored); one given must be the upload's.
  sseOfUploadRequest(call, encryption, { keyRequired: false });
  const parts = await validateParts(call, upload, requested);
  const etag = multipartEtag(parts);
  // If-None-Match: * / If-Match, refused here while a 412 can still be the status; decided in the commit.
  const condition = await refuseFailingWriteEarly(call, poolKeyOf(bucket, key), key);
  const bucketAccess = await bucketAccessOf(call.context, bucket);
  const readers = await pinParts(call.context.pool, parts);
  try {
    const record = encryption && (await joinedRecord(call.context, encryption, readers));
    // From here on the answer is 200 with a body that is either the result or an error document.
    call.response.writeHead(200, { 'Content-Type': 'application/xml', ...sseResponseHeaders(encryption) });
    call.response.write('<?xml version="1.0" encoding="UTF-8"?>\n');
    const keepAlive = setInterval(() => call.response.write(' '), KEEP_ALIVE_INTERVAL_MS);
    try {
      const partSizesBytes = parts.map((part) => part.sizeBytes);
      await call.context.gate.shared(() => writeCompletedObject(call.context, { upload, readers, etag, partSizesBytes, condition, record, bucketAccess }));
      clearInterval(keepAlive);
      endDocument(call, completeResult(upload, etag));
    } catch (error) {
      clearInterval(keepAlive);
      // Another Complete of this upload (a client's retry) committed first, with these very parts: the same answer.
      if (error instanceof S3Error && error.code === 'NoSuchUpload' && (await completedWith(call.context, upload, etag))) {
        endDocument(call, completeResult(upload, etag));
        return;
      }
      const s3Error = toS3Error(error, { bucket: upload.bucket, key: upload.key });
      call.context.log.error({ err: error, uploadId: upload.uploadId }, 'completing a multipart upload failed');
      endDocument(call, xmlError({ code: s3Error.code, message: s3Error.message, resource: call.request.url ?? '', requestId: call.requestId, details: s3Error.details }));
    }
  } finally {
    // Parts read to their end let go already; this releases the rest (a put that failed part way, a client gone).
    for (const reader of readers) reader.close();
  }
}

/** Every requested part must be uploaded with that ETag, and all but the last at least 5 MiB. */
async function validateParts(call: S3Call, upload: UploadRow, requested: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<PartRow[]> {
  const stored = new Map((await call.context.s3.listParts(upload.uploadId)).map((part) => [part.partNumber, part]));
  return requested.map((wanted, index) => {
    const part = stored.get(wanted.partNumber);
    if (!part || normaliseEtag(part.etag) !== normaliseEtag(wanted.etag)) throw invalidPart(wanted.partNumber);
    if (index < requested.length - 1 && part.sizeBytes < PART_SIZE_MIN_BYTES) {
      throw new S3Error('EntityTooSmall', 400, `part ${wanted.partNumber} is ${part.sizeBytes} bytes; every part but the last must be at least 5 MiB`);
    }
    return part;
  });
}

/** Opens (and so pins) every part at once; if one cannot be opened, lets go of those already pinned. */
async function pinParts(pool: Pool, parts: ReadonlyArray<PartRow>): Promise<ObjectReader[]> {
  const readers: ObjectReader[] = [];
  try {
    for (const part of parts) readers.push(await pool.openObject(part.partKey));
    return readers;
  } catch (error) {
    for (const reader of readers) reader.close();
    // A part replaced or removed since it was validated (a re-upload or an Abort beside this Complete); or a part
    // row naming a missing object, which only a catalog left by an older shardpool could hold.
    if (isShardpoolError(error, 'OBJECT_NOT_FOUND')) throw invalidPart(parts[readers.length]?.partNumber ?? 0);
    throw error;
  }
}

/**
 * Writes the object from the pinned parts. Its commit ends the upload and queues every part object as garbage in
 * the same transaction — and is refused if the upload was aborted or completed meanwhile, the bucket deleted, or the
 * key no longer holds what If-None-Match / If-Match ask — so
 * no crash can leave the object without the upload's end, or the upload listed with parts already gone.
 */
async function writeCompletedObject(
  context: S3Context,
  completion: {
    upload: UploadRow;
    readers: ReadonlyArray<ObjectReader>;
    etag: string;
    partSizesBytes: ReadonlyArray<number>;
    condition: WriteCondition | undefined;
    record: SseRecord | undefined;
    bucketAccess: ObjectMetadata['bucketAccess'];
  },
): Promise<void> {
  const { upload, readers, etag } = completion;
  let queued: ReadonlyArray<string> = [];
  await context.pool.put(poolKeyOf(upload.bucket, upload.key), Readable.from(concatenateParts(readers)), {
    metadata: () => ({
      etag,
      contentType: upload.contentType,
      userMetadata: upload.userMetadata,
      contentHeaders: upload.contentHeaders,
      partSizesBytes: completion.partSizesBytes,
      ...encryptionField(completion.record),
      bucketAccess: completion.bucketAccess,
    }),
    inCommit: async (tx, commit) => {
      await requireBucketInCommit(tx, upload.bucket);
      await checkWriteCondition(tx, completion.condition, { versionId: commit.replacedVersionId, key: upload.key, superseded: commit.superseded });
      const removed = await S3Catalog.within(tx).finishUpload(upload.uploadId);
      if (removed === undefined) throw noSuchUpload(upload.uploadId);
      queued = removed;
    },
  });
  // Committed: the object is visible and the upload gone. A crash before the parts' fragments are freed leaves them
  // queued as garbage, which the next write-open collects.
  killPoint('multipart.completed');
  await collectAll(context.pool, queued);
}

/**
 * The record of an encrypted upload's object: its parts' segments in order. Their stored bytes are joined as they
 * are (no key is needed, and none is unwrapped), each part keeping its own data key.
 */
async function joinedRecord(context: S3Context, encryption: UploadEncryption, readers: ReadonlyArray<ObjectReader>): Promise<SseRecord> {
  const segments: SseSegment[] = [];
  for (const reader of readers) {
    const metadata = await context.pool.catalog.objectMetadata(reader.object.versionId);
    const record = metadata && recordOfMetadata(metadata, reader.object.key);
    // A part is stored with its upload's encryption (UploadPart checks it): one segment of that kind and key.
    assert(record?.kind === encryption.kind && record.customerKeyMd5 === encryption.customerKeyMd5 && record.segments.length === 1, 'a part of an encrypted upload is one segment of its encryption');
    segments.push(record.segments[0] as SseSegment);
  }
  return recordOf(encryption, segments);
}

async function* concatenateParts(readers: ReadonlyArray<ObjectReader>): AsyncGenerator<Buffer> {
  for (const reader of readers) yield* reader.chunks();
}

/**
 * Complete for an upload that no longer exists. Clients retry Complete (a lost answer, a crash before it went out):
 * if the key holds the object these parts make (the same multipart ETag, which is the MD5 of the parts' MD5s), that
 * Complete succeeded and the answer is the same; otherwise the upload was aborted, or its object replaced since.
 */
async function answerRetriedComplete(call: S3Call, target: { bucket: string; key: string; uploadId: string; etag: string }): Promise<void> {
  if (!(await completedWith(call.context, target, target.etag))) throw noSuchUpload(target.uploadId);
  sendXml(call, 200, xmlDocument('CompleteMultipartUploadResult', completeResult(target, target.etag)));
}

async function completedWith(context: S3Context, target: { bucket: string; key: string }, etag: string): Promise<boolean> {
  const object = await context.pool.catalog.getObject(poolKeyOf(target.bucket, target.key));
  return object !== undefined && (await metadataOf(context, object)).etag === etag;
}

function completeResult(target: { bucket: string; key: string }, etag: string): Record<string, string> {
  return { Location: `/${target.bucket}/${encodeURIComponent(target.key)}`, Bucket: target.bucket, Key: target.key, ETag: etag };
}

/** Ends the 200 response whose XML declaration already went out. */
function endDocument(call: S3Call, content: Record<string, string> | string): void {
  const document = typeof content === 'string' ? content : xmlDocument('CompleteMultipartUploadResult', content);
  call.response.end(document.slice(document.indexOf('\n') + 1));
}

async function collectAll(pool: Pool, versionIds: ReadonlyArray<string>): Promise<void> {
  for (const versionId of versionIds) await pool.collectVersion(versionId);
}

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, a dash, and the number of parts. */
function multipartEtag(parts: ReadonlyArray<{ etag: string }>): string {
  const md5 = createHash('md5');
  for (const part of parts) md5.update(Buffer.from(normaliseEtag(part.etag), 'hex'));
  return `"${md5.digest('hex')}-${parts.length}"`;
}

function normaliseEtag(etag: string): string {
  return etag.trim().replace(/^"|"$/g, '').toLowerCase();
}

function parseCompleteRequest(text: string): Array<{ partNumber: number; etag: string }> {
  const document = parseXmlBody(text)['CompleteMultipartUpload'] as { Part?: Array<{ PartNumber?: unknown; ETag?: unknown }> } | undefined;
  const parts = (document && typeof document === 'object' ? document.Part : undefined) ?? [];
  if (parts.length === 0) throw new S3Error('MalformedXML', 400, 'CompleteMultipartUpload needs at least one <Part>');
  let previous = 0;
  return parts.map((part) => {
    const partNumber = Number(String(part.PartNumber ?? '').trim());
    const etag = String(part.ETag ?? '');
    if (!Number.isInteger(partNumber) || etag === '') throw new S3Error('MalformedXML', 400, 'each <Part> needs a <PartNumber> and an <ETag>');
    if (partNumber <= previous) throw new S3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    previous = partNumber;
    return { partNumber, etag };
  });
}

async function requireUpload(call: S3Call): Promise<UploadRow> {
  const bucket = await requireBucket(call);
  const key = requireKey(call);
  const uploadId = call.query.get('uploadId') ?? '';
  const upload = await call.context.s3.getUpload(uploadId);
  if (!upload || upload.bucket !== bucket || upload.key !== key) throw noSuchUpload(uploadId);
  return upload;
}

function invalidPart(partNumber: number): S3Error {
  return new S3Error('InvalidPart', 400, `part ${partNumber} was not uploaded or its ETag does not match`, { PartNumber: String(partNumber) });
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error(
    'NoSuchUpload',
    404,
    'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.',
    { UploadId: uploadId },
  );
}

/**
 * Run when the daemon opens the pool, before it serves: removes hidden part objects that no upload can reach any
 * more, and uploads whose parts are gone (see S3Catalog.removeAbandonedParts), and frees their fragments. Without
 * it such parts (left by an older shardpool, or a crash it did not survive cleanly) would stay forever: no S3 call
 * names them.
 */
export async function removeAbandonedParts(pool: Pool, s3: S3Context['s3']): Promise<{ uploadsRemoved: number; objectsRemoved: number }> {
  const { versionIds, uploadsRemoved, objectsRemoved } = await s3.removeAbandonedParts();
  await collectAll(pool, versionIds);
  return { uploadsRemoved, objectsRemoved };
}
