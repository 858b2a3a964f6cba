// One record of a device's metadata journal: the allocation changes of one group commit. Records are appended at
// the journal's tail, each padded to the device's journal block (the physical sector, at least 4 KiB, so a torn
// write can never damage an earlier record), and replayed in order on open until the first record that does not
// verify or does not carry the next sequence number (a torn or stale tail).
//
// Layout, little-endian (docs/format.md § Journal record):
//   offset size field
//        0    8 magic "SHRDJRNL"
//        8    2 formatVersion (DEVICE_FORMAT_VERSION)
//       10    2 flags (reserved, zero)
//       12    4 entryCount
//       16    8 sequence (one more than the previous record's; the first after a checkpoint is in the label)
//       24    4 recordLengthBytes (a multiple of the journal block)
//       28    4 reserved, zero
//       32   16 deviceUuid
//       48 40×n entries
//   48+40n   16 checksum: xxh3-128 of bytes 0 .. 48+40n
//   then zero padding to recordLengthBytes
// Entry (40 bytes): type u8 (1 allocate, 2 free) · reserved u8 · fragmentIndex u16 · extentIndex u32 ·
//   startUnit u64 · unitCount u32 · reserved u32 · versionUuid 16 (zero for free).
import { CHECKSUM_BYTES, DEVICE_FORMAT_VERSION } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { checksum128, checksumEquals } from '../redundancy/checksum.js';
import { uuidFromBytes, uuidToBytes } from './uuid.js';

export const JOURNAL_MAGIC = Buffer.from('SHRDJRNL', 'ascii');
export const JOURNAL_HEADER_BYTES = 48;
export const JOURNAL_ENTRY_BYTES = 40;
const NO_VERSION = '00000000-0000-0000-0000-000000000000';

export type JournalEntry =
  | {
      readonly type: 'allocate';
      readonly startUnit: number;
      readonly unitCount: number;
      readonly versionId: string;
      readonly extentIndex: number;
      readonly fragmentIndex: number;
    }
  | { readonly type: 'free'; readonly startUnit: number; readonly unitCount: number };

export interface JournalRecord {
  readonly sequence: number;
  readonly deviceUuid: string;
  readonly entries: JournalEntry[];
}

export function journalRecordLengthBytes(entryCount: number, blockBytes: number): number {
  return Math.ceil((JOURNAL_HEADER_BYTES + entryCount * JOURNAL_ENTRY_BYTES + CHECKSUM_BYTES) / blockBytes) * blockBytes;
}

export function encodeJournalRecord(record: JournalRecord, blockBytes: number): Buffer {
  const length = journalRecordLengthBytes(record.entries.length, blockBytes);
  const bytes = Buffer.alloc(length);
  JOURNAL_MAGIC.copy(bytes, 0);
  bytes.writeUInt16LE(DEVICE_FORMAT_VERSION, 8);
  bytes.writeUInt32LE(record.entries.length, 12);
  bytes.writeBigUInt64LE(BigInt(record.sequence), 16);
  bytes.writeUInt32LE(length, 24);
  uuidToBytes(record.deviceUuid).copy(bytes, 32);
  record.entries.forEach((entry, index) => encodeJournalEntry(entry).copy(bytes, JOURNAL_HEADER_BYTES + index * JOURNAL_ENTRY_BYTES));
  const checksumAt = JOURNAL_HEADER_BYTES + record.entries.length * JOURNAL_ENTRY_BYTES;
  checksum128(bytes.subarray(0, checksumAt)).copy(bytes, checksumAt);
  return bytes;
}

/**
 * The length a record claims from its first block, or undefined when the block does not start a record of ours.
 * Replay reads that many bytes and then decodes them.
 */
export function peekJournalRecordLength(firstBlock: Buffer, blockBytes: number, maxBytes: number): number | undefined {
  if (firstBlock.length < JOURNAL_HEADER_BYTES || !firstBlock.subarray(0, 8).equals(JOURNAL_MAGIC)) return undefined;
  const length = firstBlock.readUInt32LE(24);
  if (length === 0 || length % blockBytes !== 0 || length > maxBytes) return undefined;
  return length;
}

/** Decodes a whole record; a record that does not verify is JOURNAL_RECORD_INVALID (replay stops there). */
export function decodeJournalRecord(bytes: Buffer, source: string): JournalRecord {
  const invalid = (why: string) => new ShardpoolError('JOURNAL_RECORD_INVALID', `journal record in ${source} is invalid: ${why}`, { source });
  if (bytes.length < JOURNAL_HEADER_BYTES + CHECKSUM_BYTES) throw invalid('truncated');
  if (!bytes.subarray(0, 8).equals(JOURNAL_MAGIC)) throw invalid('wrong magic');
  const entryCount = bytes.readUInt32LE(12);
  const checksumAt = JOURNAL_HEADER_BYTES + entryCount * JOURNAL_ENTRY_BYTES;
  if (entryCount > (bytes.length - JOURNAL_HEADER_BYTES - CHECKSUM_BYTES) / JOURNAL_ENTRY_BYTES) throw invalid('entry count exceeds the record');
  if (bytes.readUInt32LE(24) !== bytes.length) throw invalid('length mismatch');
  if (!checksumEquals(checksum128(bytes.subarray(0, checksumAt)), bytes.subarray(checksumAt, checksumAt + CHECKSUM_BYTES))) {
    throw invalid('checksum mismatch');
  }
  if (bytes.readUInt16LE(8) !== DEVICE_FORMAT_VERSION) throw invalid(`format version ${bytes.readUInt16LE(8)}`);
  if (bytes.readUInt16LE(10) !== 0 || bytes.readUInt32LE(28) !== 0) throw invalid('reserved bytes are not zero');
  const sequence = bytes.readBigUInt64LE(16);
  if (sequence > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('sequence out of range');
  const entries: JournalEntry[] = [];
  for (let index = 0; index < entryCount; index += 1) {
    entries.push(decodeJournalEntry(bytes.subarray(JOURNAL_HEADER_BYTES + index * JOURNAL_ENTRY_BYTES), invalid));
  }
  return { sequence: Number(sequence), deviceUuid: uuidFromBytes(bytes.subarray(32)), entries };
}

export function encodeJournalEntry(entry: JournalEntry): Buffer {
  const bytes = Buffer.alloc(JOURNAL_ENTRY_BYTES);
  bytes.writeUInt8(entry.type === 'allocate' ? 1 : 2, 0);
  if (entry.type === 'allocate') {
    bytes.writeUInt16LE(entry.fragmentIndex, 2);
    bytes.writeUInt32LE(entry.extentIndex, 4);
  }
  bytes.writeBigUInt64LE(BigInt(entry.startUnit), 8);
  bytes.writeUInt32LE(entry.unitCount, 16);
  uuidToBytes(entry.type === 'allocate' ? entry.versionId : NO_VERSION).copy(bytes, 24);
  return bytes;
}

export function decodeJournalEntry(bytes: Buffer, invalid: (why: string) => ShardpoolError): JournalEntry {
  const type = bytes.readUInt8(0);
  const startUnit = bytes.readBigUInt64LE(8);
  const unitCount = bytes.readUInt32LE(16);
  if (startUnit > BigInt(Number.MAX_SAFE_INTEGER) || unitCount === 0) throw invalid('entry out of range');
  if (bytes.readUInt8(1) !== 0 || bytes.readUInt32LE(20) !== 0) throw invalid('reserved entry bytes are not zero');
  if (type === 1) {
    return {
      type: 'allocate',
      startUnit: Number(startUnit),
      unitCount,
      versionId: uuidFromBytes(bytes.subarray(24)),
      extentIndex: bytes.readUInt32LE(4),
      fragmentIndex: bytes.readUInt16LE(2),
    };
  }
  if (type === 2) return { type: 'free', startUnit: Number(startUnit), unitCount };
  throw invalid(`unknown entry type ${type}`);
}
