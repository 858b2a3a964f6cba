// A checkpoint of a device's allocator: the bitmap of its data units (bit set = allocated) and the allocations the
// catalog has not yet been seen to reference ("pending": puts and drains in flight). Written to the checkpoint slot
// not in use, flushed, and only then made current by a label rewrite, so a torn checkpoint is never the current one.
//
// Layout, little-endian (docs/format.md § Allocator checkpoint):
//   offset size field
//        0    8 magic "SHRDCKPT"
//        8    2 formatVersion (DEVICE_FORMAT_VERSION)
//       10    2 flags (reserved, zero)
//       12    4 pendingCount
//       16    8 journalSequence: the first journal record sequence NOT reflected in this checkpoint
//       24    8 dataUnits
//       32   16 deviceUuid
//       48   16 checksum: xxh3-128 of bytes 0..47, the bitmap bytes and the pending entries
//       64 4032 reserved, zero
//     4096    B bitmap, B = checkpointBitmapBytes(dataUnits), bit u of byte ⌊u/8⌋ (LSB first) is unit u
//   4096+B 40×p pending allocations, encoded as journal "allocate" entries
import { CHECKSUM_BYTES, DEVICE_FORMAT_VERSION } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { checksum128, checksumEquals } from '../redundancy/checksum.js';
import { checkpointBitmapBytes, checkpointHeaderBytes } from './device-layout.js';
import { JOURNAL_ENTRY_BYTES, decodeJournalEntry, encodeJournalEntry, type JournalEntry } from './journal-record.js';
import { uuidFromBytes, uuidToBytes } from './uuid.js';

const MAGIC = Buffer.from('SHRDCKPT', 'ascii');
const CHECKSUM_AT = 48;

export type PendingAllocation = Extract<JournalEntry, { type: 'allocate' }>;

export interface AllocatorCheckpoint {
  readonly journalSequence: number;
  readonly dataUnits: number;
  readonly deviceUuid: string;
  readonly bitmap: Uint8Array;
  readonly pending: PendingAllocation[];
}

export function checkpointLengthBytes(dataUnits: number, pendingCount: number): number {
  const raw = checkpointHeaderBytes() + checkpointBitmapBytes(dataUnits) + pendingCount * JOURNAL_ENTRY_BYTES;
  return Math.ceil(raw / 4096) * 4096;
}

export function encodeAllocatorCheckpoint(checkpoint: AllocatorCheckpoint): Buffer {
  const bitmapBytes = checkpointBitmapBytes(checkpoint.dataUnits);
  const bytes = Buffer.alloc(checkpointLengthBytes(checkpoint.dataUnits, checkpoint.pending.length));
  MAGIC.copy(bytes, 0);
  bytes.writeUInt16LE(DEVICE_FORMAT_VERSION, 8);
  bytes.writeUInt32LE(checkpoint.pending.length, 12);
  bytes.writeBigUInt64LE(BigInt(checkpoint.journalSequence), 16);
  bytes.writeBigUInt64LE(BigInt(checkpoint.dataUnits), 24);
  uuidToBytes(checkpoint.deviceUuid).copy(bytes, 32);
  Buffer.from(checkpoint.bitmap.buffer, checkpoint.bitmap.byteOffset, checkpoint.bitmap.byteLength).copy(bytes, checkpointHeaderBytes());
  const pendingAt = checkpointHeaderBytes() + bitmapBytes;
  checkpoint.pending.forEach((entry, index) => encodeJournalEntry(entry).copy(bytes, pendingAt + index * JOURNAL_ENTRY_BYTES));
  checksumOf(bytes, bitmapBytes, checkpoint.pending.length).copy(bytes, CHECKSUM_AT);
  return bytes;
}

/** The pending count a checkpoint header claims (to know how much more to read), or undefined if not ours. */
export function peekCheckpointPendingCount(header: Buffer): number | undefined {
  if (header.length < 64 || !header.subarray(0, 8).equals(MAGIC)) return undefined;
  return header.readUInt32LE(12);
}

export function decodeAllocatorCheckpoint(bytes: Buffer, expected: { dataUnits: number; deviceUuid: string }, source: string): AllocatorCheckpoint {
  const invalid = (why: string) =>
    new ShardpoolError('DEVICE_METADATA_INVALID', `allocator checkpoint in ${source} is invalid: ${why}`, { source });
  const bitmapBytes = checkpointBitmapBytes(expected.dataUnits);
  if (bytes.length < checkpointHeaderBytes() + bitmapBytes) throw invalid('truncated');
  if (!bytes.subarray(0, 8).equals(MAGIC)) throw invalid('wrong magic');
  const pendingCount = bytes.readUInt32LE(12);
  if (bytes.length < checkpointLengthBytes(expected.dataUnits, pendingCount)) throw invalid('truncated pending list');
  const stored = bytes.subarray(CHECKSUM_AT, CHECKSUM_AT + CHECKSUM_BYTES);
  if (!checksumEquals(checksumOf(bytes, bitmapBytes, pendingCount), stored)) throw invalid('checksum mismatch');
  if (bytes.readUInt16LE(8) !== DEVICE_FORMAT_VERSION) throw invalid(`format version ${bytes.readUInt16LE(8)}`);
  if (bytes.readUInt16LE(10) !== 0 || !bytes.subarray(64, checkpointHeaderBytes()).every((byte) => byte === 0)) {
    throw invalid('reserved bytes are not zero');
  }
  if (Number(bytes.readBigUInt64LE(24)) !== expected.dataUnits) throw invalid('unit count differs from the label');
  const deviceUuid = uuidFromBytes(bytes.subarray(32));
  if (deviceUuid !== expected.deviceUuid) throw invalid(`belongs to device ${deviceUuid}`);
  const journalSequence = bytes.readBigUInt64LE(16);
  if (journalSequence > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('sequence out of range');
  const pendingAt = checkpointHeaderBytes() + bitmapBytes;
  const pending: PendingAllocation[] = [];
  for (let index = 0; index < pendingCount; index += 1) {
    const entry = decodeJournalEntry(bytes.subarray(pendingAt + index * JOURNAL_ENTRY_BYTES), (why) => invalid(why));
    if (entry.type !== 'allocate') throw invalid('a pending entry is not an allocation');
    pending.push(entry);
  }
  const bitmap = new Uint8Array(Math.ceil(expected.dataUnits / 8));
  bitmap.set(bytes.subarray(checkpointHeaderBytes(), checkpointHeaderBytes() + bitmap.length));
  return { journalSequence: Number(journalSequence), dataUnits: expected.dataUnits, deviceUuid, bitmap, pending };
}

function checksumOf(bytes: Buffer, bitmapBytes: number, pendingCount: number): Buffer {
  const header = checkpointHeaderBytes();
  return checksum128(
    bytes.subarray(0, CHECKSUM_AT),
    bytes.subarray(header, header + bitmapBytes + pendingCount * JOURNAL_ENTRY_BYTES),
  );
}
