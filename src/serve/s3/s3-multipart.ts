// Multipart uploads. Each part is stored as a hidden pool object (a reserved key, so it is scrubbed, drained and
// rebuilt like any object while the upload is open). Completing the upload writes the final object from the parts in
// order — a full copy, so the final object is one ordinary pool object whatever the part sizes — then removes the
// parts. S3 may take long to complete an upload, so the 200 status goes out at once and whitespace keeps the
// connection alive; a failure then arrives as an <Error> document in the body, as S3 clients expect.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from '../../pool/pool.js';
import { readSmallBody } from './s3-body.js';
import { S3Error } from './s3-error.js';
import { header, isoDate, queryCount, requireBucket, sendEmpty, sendXml, toS3Error, userMetadataFrom, type S3Call } from './s3-call.js';
import type { PartRow, UploadRow } from './s3-catalog.js';
import { requireKey } from './s3-objects.js';
import { partKeyOf, poolKeyOf } from './s3-names.js';
import { parseXmlBody, xmlDocument, xmlError } from './xml.js';

const PART_NUMBER_MAX = 10_000;
/** S3's smallest part (all but the last); clients size their parts by it. */
export const PART_SIZE_MIN_BYTES = 5 * 1024 * 1024;
const COMPLETE_BODY_MAX_BYTES = 4 * 1024 * 1024;
const KEEP_ALIVE_INTERVAL_MS = 10_000;

export function createMultipartUpload(call: S3Call): void {
  const bucket = requireBucket(call);
  const key = requireKey(call);
  poolKeyOf(bucket, key);
  const upload = call.context.s3.createUpload({ bucket, key, contentType: header(call, 'content-type'), userMetadata: userMetadataFrom(call) });
  sendXml(call, 200, xmlDocument('InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: upload.uploadId }));
}

export async function uploadPart(call: S3Call): Promise<void> {
  const upload = requireUpload(call);
  if (header(call, 'x-amz-copy-source') !== undefined) throw new S3Error('NotImplemented', 501, 'UploadPartCopy is not supported by shardpool');
  const partNumber = Number(call.query.get('partNumber'));
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > PART_NUMBER_MAX) {
    throw new S3Error('InvalidArgument', 400, `Part number must be an integer between 1 and ${PART_NUMBER_MAX}, inclusive`);
  }
  const partKey = partKeyOf(upload.uploadId, partNumber);
  const body = call.body();
  await call.context.gate.shared(async () => {
    const etag = () => `"${body.md5Hex()}"`;
    const result = await call.context.pool.put(partKey, body.stream, {
      internal: true,
      metadata: () => ({ etag: etag(), contentType: undefined, userMetadata: {} }),
    });
    if (!call.context.s3.getUpload(upload.uploadId)) {
      // Aborted (or completed) while this part was uploading: the part has no upload to belong to.
      await call.context.pool.removeObject(partKey).catch(() => undefined);
      throw noSuchUpload(upload.uploadId);
    }
    call.context.s3.putPart({ uploadId: upload.uploadId, partNumber, partKey, etag: etag(), sizeBytes: result.object.sizeBytes });
  });
  sendEmpty(call, 200, { ETag: `"${body.md5Hex()}"` });
}

export function listParts(call: S3Call): void {
  const upload = requireUpload(call);
  const marker = queryCount(call, 'part-number-marker', { fallback: 0, max: PART_NUMBER_MAX });
  const maxParts = queryCount(call, 'max-parts', { fallback: 1000, max: 1000 });
  const parts = call.context.s3.listParts(upload.uploadId, marker, maxParts + 1);
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

export function listMultipartUploads(call: S3Call): void {
  const bucket = requireBucket(call);
  const prefix = call.query.get('prefix') ?? '';
  const maxUploads = queryCount(call, 'max-uploads', { fallback: 1000, max: 1000 });
  const uploads = call.context.s3.listUploads(bucket, prefix, maxUploads + 1);
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
  const upload = requireUpload(call);
  await call.context.gate.shared(() => discardUpload(call.context.pool, call, upload));
  sendEmpty(call, 204);
}

export async function completeMultipartUpload(call: S3Call): Promise<void> {
  const upload = requireUpload(call);
  // A checksum header on Complete is the client's checksum of the whole object (not of this XML body); shardpool keeps
  // no full-object checksums, and every part was verified against its own when it was uploaded.
  const requested = parseCompleteRequest(await readSmallBody(call.body({ checksumHeadersDescribeBody: false }), COMPLETE_BODY_MAX_BYTES));
  const stored = new Map(call.context.s3.listParts(upload.uploadId).map((part) => [part.partNumber, part]));
  const parts = requested.map((wanted, index) => {
    const part = stored.get(wanted.partNumber);
    if (!part || normaliseEtag(part.etag) !== normaliseEtag(wanted.etag)) {
      throw new S3Error('InvalidPart', 400, `part ${wanted.partNumber} was not uploaded or its ETag does not match`, { PartNumber: String(wanted.partNumber) });
    }
    if (index < requested.length - 1 && part.sizeBytes < PART_SIZE_MIN_BYTES) {
      throw new S3Error('EntityTooSmall', 400, `part ${wanted.partNumber} is ${part.sizeBytes} bytes; every part but the last must be at least 5 MiB`);
    }
    return part;
  });
  const etag = multipartEtag(parts);
  // From here on the answer is 200 with a body that is either the result or an error document.
  call.response.writeHead(200, { 'Content-Type': 'application/xml' });
  call.response.write('<?xml version="1.0" encoding="UTF-8"?>\n');
  const keepAlive = setInterval(() => call.response.write(' '), KEEP_ALIVE_INTERVAL_MS);
  try {
    await call.context.gate.shared(async () => {
      const pool = call.context.pool;
      await pool.put(poolKeyOf(upload.bucket, upload.key), Readable.from(concatenateParts(pool, parts)), {
        metadata: () => ({ etag, contentType: upload.contentType, userMetadata: upload.userMetadata }),
      });
      await discardUpload(pool, call, upload);
    });
    clearInterval(keepAlive);
    const document = xmlDocument('CompleteMultipartUploadResult', {
      Location: `/${upload.bucket}/${encodeURIComponent(upload.key)}`,
      Bucket: upload.bucket,
      Key: upload.key,
      ETag: etag,
    });
    call.response.end(document.slice(document.indexOf('\n') + 1));
  } catch (error) {
    clearInterval(keepAlive);
    const s3Error = toS3Error(error, { bucket: upload.bucket, key: upload.key });
    call.context.log.error({ err: error, uploadId: upload.uploadId }, 'completing a multipart upload failed');
    const document = xmlError({ code: s3Error.code, message: s3Error.message, resource: call.request.url ?? '', requestId: call.requestId, details: s3Error.details });
    call.response.end(document.slice(document.indexOf('\n') + 1));
  }
}

async function* concatenateParts(pool: Pool, parts: ReadonlyArray<PartRow>): AsyncGenerator<Buffer> {
  for (const part of parts) yield* pool.openObject(part.partKey).chunks();
}

/** Removes an upload's part objects, then the upload itself. */
async function discardUpload(pool: Pool, call: S3Call, upload: UploadRow): Promise<void> {
  for (const part of call.context.s3.listParts(upload.uploadId)) {
    if (pool.catalog.getObject(part.partKey)) await pool.removeObject(part.partKey);
  }
  call.context.s3.deleteUpload(upload.uploadId);
}

/** The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, a dash, and the number of parts. */
function multipartEtag(parts: ReadonlyArray<PartRow>): string {
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

function requireUpload(call: S3Call): UploadRow {
  const bucket = requireBucket(call);
  const key = requireKey(call);
  const uploadId = call.query.get('uploadId') ?? '';
  const upload = call.context.s3.getUpload(uploadId);
  if (!upload || upload.bucket !== bucket || upload.key !== key) throw noSuchUpload(uploadId);
  return upload;
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error(
    'NoSuchUpload',
    404,
    'The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.',
    { UploadId: uploadId },
  );
}
