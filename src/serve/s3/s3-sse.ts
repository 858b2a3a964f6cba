// Server-side encryption for the S3 API: SSE-S3 (x-amz-server-side-encryption: AES256, data keys wrapped with the
// pool key, sse-keys.ts) and SSE-C (the client's AES-256 key on every request, checked against its MD5 and never
// stored). What the layout is lives in format/sse-layout.ts; here are the request headers, the streams that encrypt
// a body on its way into the pool and decrypt a stored range on its way out (64 KiB at a time: memory is bounded
// whatever the object's size), and the headers S3 answers with. SSE-KMS is refused (NotImplemented).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { assert } from '../../assert.js';
import type { ObjectMetadata } from '../../pool/catalog/catalog.js';
import {
  SSE_CHUNK_BYTES,
  SSE_KEY_BYTES,
  chunkCountOf,
  decryptChunk,
  encodeRecord,
  encryptChunk,
  newDataKey,
  recordPlaintextBytes,
  storedChunkBytes,
  storedRangeOf,
  unwrapDataKey,
  verifyRecord,
  wrapDataKey,
  type SseKind,
  type SseRecord,
  type SseSegment,
} from '../../format/sse-layout.js';
import type { ByteRange } from '../../pool/object-reader.js';
import { header, type S3Call } from './s3-call.js';
import { S3Error } from './s3-error.js';
import { currentPoolKey, poolKeyById } from './sse-keys.js';

/** What a request asks for: SSE-S3, or SSE-C with the client's key. */
export type SseRequest = { readonly kind: 'SSE-S3' } | { readonly kind: 'SSE-C'; readonly key: Buffer; readonly keyMd5: string };

/** What an upload remembers (UploadRow.encryption) and what its parts must match. */
export interface UploadEncryption {
  readonly kind: SseKind;
  readonly customerKeyMd5?: string | undefined;
}

/** The key a new segment's data key is wrapped with. */
interface Sealer {
  readonly kind: SseKind;
  readonly kek: Buffer;
  readonly keyId?: string | undefined;
  readonly customerKeyMd5?: string | undefined;
}

const SSE_HEADER = 'x-amz-server-side-encryption';
const CUSTOMER = 'x-amz-server-side-encryption-customer-';
const COPY_SOURCE_CUSTOMER = 'x-amz-copy-source-server-side-encryption-customer-';
const KMS_HEADERS = ['x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-server-side-encryption-context'];

const notImplementedKms = (name: string): S3Error =>
  new S3Error('NotImplemented', 501, `shardpool does not implement SSE-KMS (${name}): use AES256 (SSE-S3) or customer-provided keys (SSE-C)`);

// ── requests ────────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The encryption a write asks for (PutObject, CopyObject's target, CreateMultipartUpload), or undefined for none.
 * Refuses SSE-KMS (501) and malformed or contradictory headers (400, S3's codes) before any byte is read.
 */
export function sseOfWrite(call: S3Call): SseRequest | undefined {
  for (const name of KMS_HEADERS) if (header(call, name) !== undefined) throw notImplementedKms(name);
  const bucketKey = header(call, 'x-amz-server-side-encryption-bucket-key-enabled');
  if (bucketKey !== undefined && bucketKey.trim().toLowerCase() !== 'false') throw notImplementedKms('x-amz-server-side-encryption-bucket-key-enabled');
  const customer = customerKeyOf(call, CUSTOMER);
  const method = header(call, SSE_HEADER)?.trim();
  if (method === undefined) return customer;
  if (method === 'aws:kms' || method === 'aws:kms:dsse') throw notImplementedKms(`${SSE_HEADER}: ${method}`);
  if (method !== 'AES256') {
    throw new S3Error('InvalidArgument', 400, 'The encryption method specified is not supported', { ArgumentName: SSE_HEADER, ArgumentValue: method });
  }
  if (customer) {
    throw new S3Error('InvalidArgument', 400, 'Server Side Encryption with Customer provided key is incompatible with the encryption method specified', {
      ArgumentName: SSE_HEADER,
      ArgumentValue: method,
    });
  }
  return { kind: 'SSE-S3' };
}

/** A read (GET, HEAD) names no SSE-S3 header: S3 refuses one. */
function refuseSseHeaderOnRead(call: S3Call): void {
  if (header(call, SSE_HEADER) !== undefined) {
    throw new S3Error('InvalidArgument', 400, 'x-amz-server-side-encryption header is not supported for this operation.', { ArgumentName: SSE_HEADER });
  }
}

/** The SSE-C triple under `prefix` (all three or none), checked as S3 checks it. */
function customerKeyOf(call: S3Call, prefix: string): (SseRequest & { kind: 'SSE-C' }) | undefined {
  const algorithm = header(call, `${prefix}algorithm`);
  const keyText = header(call, `${prefix}key`);
  const md5Text = header(call, `${prefix}key-md5`);
  if (algorithm === undefined && keyText === undefined && md5Text === undefined) return undefined;
  if (algorithm === undefined) {
    throw new S3Error('InvalidArgument', 400, 'Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.', { ArgumentName: `${prefix}algorithm` });
  }
  if (algorithm.trim() !== 'AES256') {
    throw new S3Error('InvalidEncryptionAlgorithmError', 400, 'The encryption request you specified is not valid. Supported value: AES256.', { ArgumentName: `${prefix}algorithm`, ArgumentValue: algorithm });
  }
  if (keyText === undefined) {
    throw new S3Error('InvalidArgument', 400, 'Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.', { ArgumentName: `${prefix}key` });
  }
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(keyText.trim()) ? Buffer.from(keyText.trim(), 'base64') : Buffer.alloc(0);
  if (key.length !== SSE_KEY_BYTES) {
    throw new S3Error('InvalidArgument', 400, 'The secret key was invalid for the specified algorithm.', { ArgumentName: `${prefix}key` });
  }
  const keyMd5 = createHash('md5').update(key).digest('base64');
  if (md5Text === undefined) {
    throw new S3Error('InvalidArgument', 400, 'Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.', { ArgumentName: `${prefix}key-MD5` });
  }
  if (md5Text.trim() !== keyMd5) {
    throw new S3Error('InvalidArgument', 400, 'The calculated MD5 hash of the key did not match the hash that was provided.', { ArgumentName: `${prefix}key-MD5` });
  }
  return { kind: 'SSE-C', key, keyMd5 };
}

export function uploadEncryptionOf(request: SseRequest | undefined): UploadEncryption | undefined {
  if (request === undefined) return undefined;
  return request.kind === 'SSE-C' ? { kind: 'SSE-C', customerKeyMd5: request.keyMd5 } : { kind: 'SSE-S3' };
}

export function decodeUploadEncryption(stored: Readonly<Record<string, unknown>> | undefined): UploadEncryption | undefined {
  if (stored === undefined) return undefined;
  assert(stored.kind === 'SSE-S3' || (stored.kind === 'SSE-C' && typeof stored.customerKeyMd5 === 'string'), 'an upload records SSE-S3, or SSE-C with its key MD5');
  return stored as unknown as UploadEncryption;
}

/**
 * The encryption of a part (UploadPart) or of the upload's completion: SSE-C parts carry the upload's key (the same
 * MD5), as S3 requires; parts of other uploads carry none.
 */
export function sseOfUploadRequest(call: S3Call, upload: UploadEncryption | undefined, options: { keyRequired: boolean }): SseRequest | undefined {
  const method = header(call, SSE_HEADER)?.trim();
  if (method !== undefined && !(method === 'AES256' && upload?.kind === 'SSE-S3')) {
    throw new S3Error('InvalidArgument', 400, 'x-amz-server-side-encryption is given when the multipart upload is created, and only as it was given there.', { ArgumentName: SSE_HEADER });
  }
  const customer = customerKeyOf(call, CUSTOMER);
  if (upload?.kind !== 'SSE-C') {
    if (customer) throw new S3Error('InvalidRequest', 400, 'The multipart upload initiate requested no encryption with a customer-provided key; its parts carry none.');
    return upload?.kind === 'SSE-S3' ? { kind: 'SSE-S3' } : undefined;
  }
  if (!customer) {
    if (!options.keyRequired) return undefined;
    throw new S3Error('InvalidRequest', 400, 'The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.');
  }
  if (customer.keyMd5 !== upload.customerKeyMd5) {
    throw new S3Error('InvalidRequest', 400, 'The provided encryption parameters did not match the ones used originally.');
  }
  return customer;
}

// ── writing ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** The key to seal new data keys with: the current pool key (SSE-S3) or the client's key (SSE-C). */
async function sealerFor(poolDirectory: string, request: SseRequest | undefined): Promise<Sealer | undefined> {
  if (request === undefined) return undefined;
  if (request.kind === 'SSE-C') return { kind: 'SSE-C', kek: request.key, customerKeyMd5: request.keyMd5 };
  const poolKey = await currentPoolKey(poolDirectory);
  return { kind: 'SSE-S3', kek: poolKey.key, keyId: poolKey.id };
}

interface EncryptedSegment {
  /** The stored bytes: the source's, encrypted chunk by chunk as it arrives. */
  readonly stream: Readable;
  /** This segment as the record holds it; valid once the stream ended. */
  segment(): SseSegment;
  /** Hex MD5 of the stored bytes (the ETag of an SSE-C object, which S3 makes no MD5 of the plaintext); once ended. */
  storedMd5Hex(): string;
}

/** Encrypts `source` into one segment with a new data key. */
function encryptSegment(source: AsyncIterable<Buffer>, sealer: Sealer): EncryptedSegment {
  const { dataKey, nonceBase } = newDataKey();
  const wrappedKey = wrapDataKey(sealer.kek, dataKey, sealer.kind);
  const md5 = createHash('md5');
  let plaintextBytes = 0;
  let ended = false;
  async function* chunks(): AsyncGenerator<Buffer> {
    let pending: Buffer = Buffer.alloc(0);
    let index = 0;
    const seal = (plaintext: Buffer, final: boolean): Buffer => {
      const stored = encryptChunk(dataKey, nonceBase, { index, final, plaintext });
      index += 1;
      md5.update(stored);
      return stored;
    };
    for await (const piece of source) {
      plaintextBytes += piece.length;
      pending = pending.length === 0 ? piece : Buffer.concat([pending, piece]);
      // A full chunk goes out only once a byte beyond it has arrived: the last chunk is known only at the end.
      while (pending.length > SSE_CHUNK_BYTES) {
        yield seal(pending.subarray(0, SSE_CHUNK_BYTES), false);
        pending = pending.subarray(SSE_CHUNK_BYTES);
      }
    }
    yield seal(pending, true);
    assert(index === chunkCountOf(plaintextBytes), 'a segment has the chunks its size says');
    ended = true;
  }
  return {
    stream: Readable.from(chunks(), { objectMode: false }),
    segment: () => {
      assert(ended, 'a segment is known once its source ended');
      return { plaintextBytes, ...(sealer.keyId === undefined ? {} : { keyId: sealer.keyId }), wrappedKey, nonceBase };
    },
    storedMd5Hex: () => {
      assert(ended, 'the stored MD5 is known once the source ended');
      return md5.copy().digest('hex');
    },
  };
}

/** A body on its way into the pool (PutObject, UploadPart, CopyObject's target), encrypted as its request asks. */
export interface SealedBody {
  /** What to store: the source itself when no encryption was asked for. */
  readonly stream: AsyncIterable<Buffer>;
  /** The ETag S3 gives it (once the stream ended): its plaintext's MD5, or for SSE-C its stored bytes'. */
  etag(): string;
  /** Its metadata's encryption field (once the stream ended): empty for a plaintext body. */
  encryption(): { encryption?: Record<string, unknown> };
  /** The headers S3 answers the write with. */
  readonly headers: Record<string, string>;
}

/** Seals `source` into one segment with a new data key, or leaves it as it is when `request` asks for nothing. */
export async function sealBody(poolDirectory: string, request: SseRequest | undefined, source: { stream: AsyncIterable<Buffer>; plaintextMd5Hex: () => string }): Promise<SealedBody> {
  const kind = uploadEncryptionOf(request);
  const sealer = await sealerFor(poolDirectory, request);
  const encrypted = sealer && encryptSegment(source.stream, sealer);
  return {
    stream: encrypted?.stream ?? source.stream,
    etag: () => etagFor(kind?.kind, { plaintextMd5Hex: source.plaintextMd5Hex, storedMd5Hex: () => (encrypted as EncryptedSegment).storedMd5Hex() }),
    encryption: () => encryptionField(kind && encrypted ? recordOf(kind, [encrypted.segment()]) : undefined),
    headers: sseResponseHeaders(kind),
  };
}

export function recordOf(kind: UploadEncryption, segments: ReadonlyArray<SseSegment>): SseRecord {
  return { kind: kind.kind, ...(kind.customerKeyMd5 === undefined ? {} : { customerKeyMd5: kind.customerKeyMd5 }), chunkBytes: SSE_CHUNK_BYTES, segments };
}

/** The metadata field of an encrypted object (undefined: a plaintext one). */
export function encryptionField(record: SseRecord | undefined): { encryption?: Record<string, unknown> } {
  return record === undefined ? {} : { encryption: encodeRecord(record) };
}

// ── reading ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** The object's encryption record, verified; undefined for a plaintext object. */
export function recordOfMetadata(metadata: ObjectMetadata, source: string): SseRecord | undefined {
  return metadata.encryption === undefined ? undefined : verifyRecord(metadata.encryption, source);
}

/** The bytes clients see: the plaintext's size for an encrypted object. */
export function plaintextSizeOf(metadata: ObjectMetadata | undefined, storedBytes: number, source: string): number {
  const record = metadata && recordOfMetadata(metadata, source);
  return record ? recordPlaintextBytes(record) : storedBytes;
}

/** An encrypted object opened for reading: its record and every segment's data key. */
export interface OpenedRecord {
  readonly record: SseRecord;
  readonly dataKeys: ReadonlyArray<Buffer>;
}

/**
 * Checks a read's SSE-C headers against the object (as S3 answers: a key for an object stored without one, no key
 * or the wrong one for an SSE-C object) and unwraps its data keys. `copySource`: the headers of CopyObject's source.
 */
export async function openForRead(
  call: S3Call,
  poolDirectory: string,
  record: SseRecord | undefined,
  options: { copySource: boolean },
): Promise<OpenedRecord | undefined> {
  if (!options.copySource) refuseSseHeaderOnRead(call);
  const customer = customerKeyOf(call, options.copySource ? COPY_SOURCE_CUSTOMER : CUSTOMER);
  if (record?.kind !== 'SSE-C') {
    if (customer) throw new S3Error('InvalidRequest', 400, 'The encryption parameters are not applicable to this object.');
    if (record === undefined) return undefined;
  } else {
    if (!customer) throw new S3Error('InvalidRequest', 400, 'The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.');
    if (customer.keyMd5 !== record.customerKeyMd5) throw new S3Error('AccessDenied', 403, 'Access Denied: the customer-provided key is not the one this object was stored with');
  }
  const dataKeys = await Promise.all(
    record.segments.map(async (segment) => {
      const kek = customer ? customer.key : (await poolKeyById(poolDirectory, segment.keyId as string)).key;
      const dataKey = unwrapDataKey(kek, segment.wrappedKey, record.kind);
      // SSE-C: the MD5 matched but the key does not unwrap (an MD5 collision, or an altered record): still refused.
      if (dataKey === undefined && customer) throw new S3Error('AccessDenied', 403, 'Access Denied: the customer-provided key does not unwrap this object');
      if (dataKey === undefined) throw new S3Error('InternalError', 500, 'the pool key does not unwrap this object\'s data key: its record was altered');
      return dataKey;
    }),
  );
  return { record, dataKeys };
}

/** The stored range to read for plaintext `range` (undefined: the whole object), and how to decrypt it. */
export function storedReadOf(opened: OpenedRecord, range: ByteRange | undefined): { storedRange: ByteRange; decrypt: (stored: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> } {
  const wanted = range ?? { startByte: 0, endByteExclusive: recordPlaintextBytes(opened.record) };
  const plan = storedRangeOf(opened.record, wanted);
  return {
    storedRange: { startByte: plan.startByte, endByteExclusive: plan.endByteExclusive },
    decrypt: (stored) => decryptRuns(stored, opened, plan.runs),
  };
}

async function* decryptRuns(stored: AsyncIterable<Buffer>, opened: OpenedRecord, runs: ReturnType<typeof storedRangeOf>['runs']): AsyncGenerator<Buffer> {
  const input = new ExactReader(stored[Symbol.asyncIterator]());
  for (const run of runs) {
    const segment = opened.record.segments[run.segmentIndex] as SseSegment;
    const dataKey = opened.dataKeys[run.segmentIndex] as Buffer;
    const count = chunkCountOf(segment.plaintextBytes, opened.record.chunkBytes);
    let skip = run.skipBytes;
    let keep = run.keepBytes;
    for (let index = run.firstChunk; index <= run.lastChunk; index += 1) {
      const chunk = await input.read(storedChunkBytes(segment.plaintextBytes, index, opened.record.chunkBytes));
      // Every chunk read is authenticated, also one of which no byte is kept (an empty object's).
      const plaintext = decryptChunk(dataKey, segment.nonceBase, { index, final: index === count - 1, stored: chunk });
      const piece = plaintext.subarray(skip, skip + keep);
      skip = 0;
      keep -= piece.length;
      if (piece.length > 0) yield piece;
    }
    assert(keep === 0, 'a run yields the bytes it was planned to');
  }
}

/** Reads exact byte counts off a stream of buffers of any size. */
class ExactReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  async read(lengthBytes: number): Promise<Buffer> {
    while (this.bufferedBytes < lengthBytes) {
      const next = await this.source.next();
      if (next.done) throw new S3Error('InternalError', 500, 'an encrypted object\'s stored bytes end before its record says');
      this.buffered.push(next.value);
      this.bufferedBytes += next.value.length;
    }
    const joined = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered, this.bufferedBytes);
    const rest = joined.subarray(lengthBytes);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return joined.subarray(0, lengthBytes);
  }
}

// ── answers ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** The response headers S3 sends for an object (or upload) stored with this encryption. */
export function sseResponseHeaders(encryption: UploadEncryption | SseRecord | undefined): Record<string, string> {
  if (encryption === undefined) return {};
  if (encryption.kind === 'SSE-S3') return { 'x-amz-server-side-encryption': 'AES256' };
  return {
    'x-amz-server-side-encryption-customer-algorithm': 'AES256',
    'x-amz-server-side-encryption-customer-key-MD5': encryption.customerKeyMd5 as string,
  };
}

/** The ETag of an object or part: an MD5 of its plaintext, except for SSE-C, where S3's is no MD5 of the plaintext. */
function etagFor(kind: SseKind | undefined, md5s: { plaintextMd5Hex: () => string; storedMd5Hex: () => string }): string {
  return `"${kind === 'SSE-C' ? md5s.storedMd5Hex() : md5s.plaintextMd5Hex()}"`;
}
