// Server-side encryption at rest (S3 SSE-S3 and SSE-C, docs/format.md § Encrypted objects): how an encrypted
// object's bytes are laid out, how their data keys are wrapped, the record that says how to decrypt them, and the
// pool key file. The pool below stores the ciphertext like any object's bytes: fragments, checksums, scrub, repair
// and rebuild see only ciphertext and never change for it.
//
// Object bytes (what the pool stores):
//   segment 0 | segment 1 | …          one segment per multipart part, in order; one for an object put whole
//   segment   = chunk 0 | … | chunk n-1, n = max(1, ceil(plaintextBytes / chunkBytes)), chunkBytes = 65536
//   chunk i   = AES-256-GCM(dataKey, nonce i, aad i, plaintext[i·chunkBytes, min((i+1)·chunkBytes, plaintextBytes)))
//               | tag (16 bytes)     — the last chunk is short; an empty segment is one chunk of 0 bytes plus its tag
//   nonce i   = nonceBase (12 random bytes per segment) with its last 8 bytes XORed with i (unsigned 64-bit big-endian)
//   aad i     = "shardpool-sse-chunk-1" (ASCII) | i (u64 big-endian) | final (u8: 1 for chunk n-1, else 0)
// A chunk moved, dropped, repeated or cut off (the final flag) fails its tag, as does any flipped bit: no plaintext
// comes out of a ciphertext that is not exactly what was written with that data key.
//
// Data keys: 32 random bytes per segment, never stored in the clear. Wrapped:
//   wrappedKey = nonce (12 random bytes) | AES-256-GCM(kek, nonce, aad "shardpool-sse-dek-1|" + kind, dataKey) (32)
//                | tag (16)                                                      — 60 bytes, base64 in the record
//   kek: SSE-S3 → the pool key `keyId` of the key file; SSE-C → the customer's key (never stored; its MD5 is)
//
// Record (ObjectMetadata.encryption; in the catalog and in each version manifest's metadata, so an import decrypts):
//   {"formatVersion":1,"algorithm":"AES256","kind":"SSE-S3"|"SSE-C","customerKeyMd5":"<base64>" (SSE-C only),
//    "chunkBytes":65536,"segments":[{"plaintextBytes":N,"keyId":"<id>" (SSE-S3 only),"wrappedKey":"<base64>",
//    "nonceBase":"<24 hex>"}]}
//
// Key file (POOL/sse-keys.json, mode 0600, never in the catalog):
//   {"format":"shardpool-sse-keys","formatVersion":1,"currentKeyId":"<id>",
//    "keys":[{"id":"<16 hex>","createdAtMs":N,"key":"<base64 of 32 bytes>"}]}
// New objects are wrapped with currentKeyId; every key listed unwraps what was wrapped with it (rotation adds one).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { assert } from '../assert.js';
import { ShardpoolError } from '../errors.js';
import { decodeJsonDocument } from './json-document.js';

export const SSE_RECORD_FORMAT_VERSION = 1;
export const SSE_CHUNK_BYTES = 64 * 1024;
export const SSE_TAG_BYTES = 16;
export const SSE_NONCE_BYTES = 12;
export const SSE_KEY_BYTES = 32;
export const SSE_WRAPPED_KEY_BYTES = SSE_NONCE_BYTES + SSE_KEY_BYTES + SSE_TAG_BYTES;
/** A multipart object has at most 10,000 parts, so at most that many segments. */
export const SSE_SEGMENTS_MAX = 10_000;
export const SSE_KEY_FILE_NAME = 'sse-keys.json';
export const SSE_KEY_FILE_FORMAT = 'shardpool-sse-keys';
export const SSE_KEY_FILE_FORMAT_VERSION = 1;
/** Rotations are rare; the bound keeps a damaged file from being read as millions of keys. */
export const SSE_KEY_FILE_KEYS_MAX = 1000;

const CHUNK_AAD_TAG = Buffer.from('shardpool-sse-chunk-1', 'ascii');
const WRAP_AAD_TAG = 'shardpool-sse-dek-1|';
const GCM = 'aes-256-gcm';

export type SseKind = 'SSE-S3' | 'SSE-C';

export interface SseSegment {
  readonly plaintextBytes: number;
  /** The pool key that wraps this segment's data key (SSE-S3 only). */
  readonly keyId?: string | undefined;
  readonly wrappedKey: Buffer;
  readonly nonceBase: Buffer;
}

export interface SseRecord {
  readonly kind: SseKind;
  /** Base64 MD5 of the customer's key (SSE-C only): what S3 answers and checks a read's key against. */
  readonly customerKeyMd5?: string | undefined;
  readonly chunkBytes: number;
  readonly segments: ReadonlyArray<SseSegment>;
}

export interface PoolKey {
  readonly id: string;
  readonly createdAtMs: number;
  readonly key: Buffer;
}

export interface PoolKeyFile {
  readonly currentKeyId: string;
  readonly keys: ReadonlyArray<PoolKey>;
}

// ── chunks ──────────────────────────────────────────────────────────────────────────────────────────────────────

export function chunkCountOf(plaintextBytes: number, chunkBytes: number = SSE_CHUNK_BYTES): number {
  return plaintextBytes === 0 ? 1 : Math.ceil(plaintextBytes / chunkBytes);
}

/** The bytes a segment of `plaintextBytes` takes in the pool. */
export function segmentStoredBytes(plaintextBytes: number, chunkBytes: number = SSE_CHUNK_BYTES): number {
  return plaintextBytes + chunkCountOf(plaintextBytes, chunkBytes) * SSE_TAG_BYTES;
}

export function recordPlaintextBytes(record: SseRecord): number {
  return record.segments.reduce((sum, segment) => sum + segment.plaintextBytes, 0);
}

export function recordStoredBytes(record: SseRecord): number {
  return record.segments.reduce((sum, segment) => sum + segmentStoredBytes(segment.plaintextBytes, record.chunkBytes), 0);
}

export function chunkNonce(nonceBase: Buffer, chunkIndex: number): Buffer {
  assert(nonceBase.length === SSE_NONCE_BYTES && Number.isSafeInteger(chunkIndex) && chunkIndex >= 0, 'a chunk nonce from a 12-byte base and a chunk index');
  const nonce = Buffer.from(nonceBase);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(chunkIndex));
  for (let index = 0; index < 8; index += 1) nonce[4 + index] = (nonce[4 + index] as number) ^ (counter[index] as number);
  return nonce;
}

export function chunkAad(chunkIndex: number, final: boolean): Buffer {
  const aad = Buffer.alloc(CHUNK_AAD_TAG.length + 9);
  CHUNK_AAD_TAG.copy(aad);
  aad.writeBigUInt64BE(BigInt(chunkIndex), CHUNK_AAD_TAG.length);
  aad[CHUNK_AAD_TAG.length + 8] = final ? 1 : 0;
  return aad;
}

export function encryptChunk(dataKey: Buffer, nonceBase: Buffer, chunk: { index: number; final: boolean; plaintext: Buffer }): Buffer {
  const cipher = createCipheriv(GCM, dataKey, chunkNonce(nonceBase, chunk.index));
  cipher.setAAD(chunkAad(chunk.index, chunk.final));
  return Buffer.concat([cipher.update(chunk.plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The chunk's plaintext; SSE_CIPHERTEXT_INVALID when its tag does not authenticate it (tampered, or another key). */
export function decryptChunk(dataKey: Buffer, nonceBase: Buffer, chunk: { index: number; final: boolean; stored: Buffer }): Buffer {
  if (chunk.stored.length < SSE_TAG_BYTES) throw ciphertextInvalid(`chunk ${chunk.index} is ${chunk.stored.length} bytes, shorter than its tag`);
  const body = chunk.stored.subarray(0, chunk.stored.length - SSE_TAG_BYTES);
  const decipher = createDecipheriv(GCM, dataKey, chunkNonce(nonceBase, chunk.index));
  decipher.setAAD(chunkAad(chunk.index, chunk.final));
  decipher.setAuthTag(chunk.stored.subarray(chunk.stored.length - SSE_TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw ciphertextInvalid(`chunk ${chunk.index} fails authentication`);
  }
}

function ciphertextInvalid(why: string): ShardpoolError {
  return new ShardpoolError('SSE_CIPHERTEXT_INVALID', `an encrypted object's stored bytes are not what was written: ${why}; no plaintext was returned`);
}

// ── data keys ───────────────────────────────────────────────────────────────────────────────────────────────────

export function newDataKey(): { dataKey: Buffer; nonceBase: Buffer } {
  return { dataKey: randomBytes(SSE_KEY_BYTES), nonceBase: randomBytes(SSE_NONCE_BYTES) };
}

export function wrapDataKey(kek: Buffer, dataKey: Buffer, kind: SseKind): Buffer {
  assert(kek.length === SSE_KEY_BYTES && dataKey.length === SSE_KEY_BYTES, 'keys are 256-bit');
  const nonce = randomBytes(SSE_NONCE_BYTES);
  const cipher = createCipheriv(GCM, kek, nonce);
  cipher.setAAD(Buffer.from(WRAP_AAD_TAG + kind, 'ascii'));
  return Buffer.concat([nonce, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
}

/** The data key, or undefined when `kek` is not the key that wrapped it (or the wrapped key was altered). */
export function unwrapDataKey(kek: Buffer, wrappedKey: Buffer, kind: SseKind): Buffer | undefined {
  assert(kek.length === SSE_KEY_BYTES && wrappedKey.length === SSE_WRAPPED_KEY_BYTES, 'a 256-bit key and a 60-byte wrapped key');
  const decipher = createDecipheriv(GCM, kek, wrappedKey.subarray(0, SSE_NONCE_BYTES));
  decipher.setAAD(Buffer.from(WRAP_AAD_TAG + kind, 'ascii'));
  decipher.setAuthTag(wrappedKey.subarray(SSE_NONCE_BYTES + SSE_KEY_BYTES));
  try {
    return Buffer.concat([decipher.update(wrappedKey.subarray(SSE_NONCE_BYTES, SSE_NONCE_BYTES + SSE_KEY_BYTES)), decipher.final()]);
  } catch {
    return undefined;
  }
}

// ── the record ──────────────────────────────────────────────────────────────────────────────────────────────────

export function encodeRecord(record: SseRecord): Record<string, unknown> {
  return {
    formatVersion: SSE_RECORD_FORMAT_VERSION,
    algorithm: 'AES256',
    kind: record.kind,
    ...(record.customerKeyMd5 === undefined ? {} : { customerKeyMd5: record.customerKeyMd5 }),
    chunkBytes: record.chunkBytes,
    segments: record.segments.map((segment) => ({
      plaintextBytes: segment.plaintextBytes,
      ...(segment.keyId === undefined ? {} : { keyId: segment.keyId }),
      wrappedKey: segment.wrappedKey.toString('base64'),
      nonceBase: segment.nonceBase.toString('hex'),
    })),
  };
}

/** A record as stored (catalog or manifest), checked field by field; SSE_RECORD_INVALID when anything is off. */
export function verifyRecord(value: unknown, source: string): SseRecord {
  const invalid = (why: string) => new ShardpoolError('SSE_RECORD_INVALID', `the encryption record of ${source} is invalid: ${why}`, { source });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not a JSON object');
  const fields = value as Record<string, unknown>;
  if (fields.formatVersion !== SSE_RECORD_FORMAT_VERSION) throw invalid(`formatVersion ${String(fields.formatVersion)} is not ${SSE_RECORD_FORMAT_VERSION}`);
  if (fields.algorithm !== 'AES256') throw invalid('"algorithm" must be "AES256"');
  const kind = fields.kind;
  if (kind !== 'SSE-S3' && kind !== 'SSE-C') throw invalid('"kind" must be "SSE-S3" or "SSE-C"');
  if (fields.chunkBytes !== SSE_CHUNK_BYTES) throw invalid(`"chunkBytes" must be ${SSE_CHUNK_BYTES}`);
  const md5 = fields.customerKeyMd5;
  if (kind === 'SSE-C' && (typeof md5 !== 'string' || !/^[A-Za-z0-9+/]{22}==$/.test(md5))) throw invalid('"customerKeyMd5" must be a base64 MD5');
  if (kind === 'SSE-S3' && md5 !== undefined) throw invalid('an SSE-S3 record has no "customerKeyMd5"');
  const segments = fields.segments;
  if (!Array.isArray(segments) || segments.length === 0 || segments.length > SSE_SEGMENTS_MAX) throw invalid(`"segments" must be a list of 1 to ${SSE_SEGMENTS_MAX}`);
  return {
    kind,
    ...(kind === 'SSE-C' ? { customerKeyMd5: md5 as string } : {}),
    chunkBytes: SSE_CHUNK_BYTES,
    segments: segments.map((segment: unknown, index): SseSegment => {
      if (typeof segment !== 'object' || segment === null) throw invalid(`segment ${index} is not an object`);
      const { plaintextBytes, keyId, wrappedKey, nonceBase } = segment as Record<string, unknown>;
      if (!Number.isSafeInteger(plaintextBytes) || (plaintextBytes as number) < 0) throw invalid(`segment ${index}: "plaintextBytes" must be a non-negative integer`);
      if (kind === 'SSE-S3' ? typeof keyId !== 'string' || !KEY_ID.test(keyId) : keyId !== undefined) throw invalid(`segment ${index}: "keyId" belongs to SSE-S3 segments only, as 16 hex digits`);
      const wrapped = typeof wrappedKey === 'string' && BASE64.test(wrappedKey) ? Buffer.from(wrappedKey, 'base64') : undefined;
      if (wrapped?.length !== SSE_WRAPPED_KEY_BYTES) throw invalid(`segment ${index}: "wrappedKey" must be ${SSE_WRAPPED_KEY_BYTES} bytes of base64`);
      if (typeof nonceBase !== 'string' || !/^[0-9a-f]{24}$/.test(nonceBase)) throw invalid(`segment ${index}: "nonceBase" must be 24 hex digits`);
      return { plaintextBytes: plaintextBytes as number, ...(kind === 'SSE-S3' ? { keyId: keyId as string } : {}), wrappedKey: wrapped, nonceBase: Buffer.from(nonceBase, 'hex') };
    }),
  };
}

const KEY_ID = /^[0-9a-f]{16}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

// ── reading a range ─────────────────────────────────────────────────────────────────────────────────────────────

/** A run of chunks of one segment to decrypt, with the plaintext bytes of them that were asked for. */
export interface ChunkRun {
  readonly segmentIndex: number;
  readonly firstChunk: number;
  readonly lastChunk: number;
  /** Plaintext bytes to drop from the first chunk, and to keep of the run in all. */
  readonly skipBytes: number;
  readonly keepBytes: number;
}

/**
 * What to read for plaintext bytes [startByte, endByteExclusive) of an encrypted object: one contiguous range of its
 * stored bytes (whole chunks), and the chunk runs it holds, segment by segment. An empty range (an empty object) reads
 * the one chunk of its first segment, so even nothing is authenticated before it is answered.
 */
export function storedRangeOf(record: SseRecord, range: { startByte: number; endByteExclusive: number }): { startByte: number; endByteExclusive: number; runs: ChunkRun[] } {
  const { chunkBytes } = record;
  const total = recordPlaintextBytes(record);
  assert(range.startByte >= 0 && range.startByte <= range.endByteExclusive && range.endByteExclusive <= total, 'a range within the plaintext');
  const runs: ChunkRun[] = [];
  let storedStart: number | undefined;
  let storedEnd = 0;
  let plainOffset = 0;
  let storedOffset = 0;
  for (const [segmentIndex, segment] of record.segments.entries()) {
    const plainEnd = plainOffset + segment.plaintextBytes;
    const from = Math.max(range.startByte, plainOffset);
    const to = Math.min(range.endByteExclusive, plainEnd);
    const wanted = from < to || (range.startByte === range.endByteExclusive && runs.length === 0 && range.startByte >= plainOffset && range.startByte <= plainEnd);
    if (wanted) {
      const firstChunk = Math.floor((from - plainOffset) / chunkBytes);
      const lastChunk = to > from ? Math.floor((to - 1 - plainOffset) / chunkBytes) : firstChunk;
      storedStart ??= storedOffset + firstChunk * (chunkBytes + SSE_TAG_BYTES);
      storedEnd = storedOffset + Math.min((lastChunk + 1) * (chunkBytes + SSE_TAG_BYTES), segmentStoredBytes(segment.plaintextBytes, chunkBytes));
      runs.push({ segmentIndex, firstChunk, lastChunk, skipBytes: from - plainOffset - firstChunk * chunkBytes, keepBytes: to - from });
      if (range.startByte === range.endByteExclusive) break;
    }
    plainOffset = plainEnd;
    storedOffset += segmentStoredBytes(segment.plaintextBytes, chunkBytes);
    if (plainOffset >= range.endByteExclusive && runs.length > 0) break;
  }
  assert(storedStart !== undefined, 'every range lies in some segment');
  return { startByte: storedStart, endByteExclusive: storedEnd, runs };
}

/** The stored length of chunk `chunkIndex` of a segment (the last one is short). */
export function storedChunkBytes(plaintextBytes: number, chunkIndex: number, chunkBytes: number = SSE_CHUNK_BYTES): number {
  const count = chunkCountOf(plaintextBytes, chunkBytes);
  assert(chunkIndex >= 0 && chunkIndex < count, 'a chunk of the segment');
  return (chunkIndex < count - 1 ? chunkBytes : plaintextBytes - (count - 1) * chunkBytes) + SSE_TAG_BYTES;
}

// ── the pool key file ───────────────────────────────────────────────────────────────────────────────────────────

export function newPoolKey(nowMs: number): PoolKey {
  return { id: randomBytes(8).toString('hex'), createdAtMs: nowMs, key: randomBytes(SSE_KEY_BYTES) };
}

export function encodeKeyFile(file: PoolKeyFile): Buffer {
  assert(file.keys.some((key) => key.id === file.currentKeyId), 'the current key is one of the file');
  return Buffer.from(
    `${JSON.stringify(
      {
        format: SSE_KEY_FILE_FORMAT,
        formatVersion: SSE_KEY_FILE_FORMAT_VERSION,
        currentKeyId: file.currentKeyId,
        keys: file.keys.map((key) => ({ id: key.id, createdAtMs: key.createdAtMs, key: key.key.toString('base64') })),
      },
      null,
      2,
    )}\n`,
    'utf8',
  );
}

export function decodeKeyFile(bytes: Buffer, source: string): PoolKeyFile {
  const invalid = (why: string) => new ShardpoolError('SSE_KEY_FILE_INVALID', `the SSE key file ${source} is invalid: ${why}`, { source });
  const fields = decodeJsonDocument(bytes, { source, formatTag: SSE_KEY_FILE_FORMAT, invalid, maxFormatVersion: SSE_KEY_FILE_FORMAT_VERSION });
  const keys = fields.keys;
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > SSE_KEY_FILE_KEYS_MAX) throw invalid(`"keys" must list 1 to ${SSE_KEY_FILE_KEYS_MAX} keys`);
  const seen = new Set<string>();
  const decoded = keys.map((entry: unknown, index): PoolKey => {
    const { id, createdAtMs, key } = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof id !== 'string' || !KEY_ID.test(id) || seen.has(id)) throw invalid(`key ${index}: "id" must be 16 hex digits, unique`);
    seen.add(id);
    if (!Number.isSafeInteger(createdAtMs) || (createdAtMs as number) < 0) throw invalid(`key ${index}: "createdAtMs" must be a non-negative integer`);
    const material = typeof key === 'string' && BASE64.test(key) ? Buffer.from(key, 'base64') : undefined;
    if (material?.length !== SSE_KEY_BYTES) throw invalid(`key ${index}: "key" must be 32 bytes of base64`);
    return { id, createdAtMs: createdAtMs as number, key: material };
  });
  const currentKeyId = fields.currentKeyId;
  if (typeof currentKeyId !== 'string' || !seen.has(currentKeyId)) throw invalid('"currentKeyId" must name one of its keys');
  return { currentKeyId, keys: decoded };
}
