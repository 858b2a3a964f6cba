// The self-describing header in front of every fragment's data, in a fragment file (directory disks) and, later, on
// a block device. It names the pool, disk, object version, extent and fragment, so a scan of a disk alone can find
// every fragment and a misdirected or stale fragment is detected on read.
//
// Layout, little-endian (docs/format.md § Fragment header):
//   offset size field
//        0    8 magic "SHRDFRAG"
//        8    2 formatVersion
//       10    2 headerLengthBytes (= 160 + keyLengthBytes)
//       12    2 keyLengthBytes
//       14    1 policyKind (1 = replica, 2 = ec)
//       15    1 flags (reserved, zero)
//       16    1 policyA (replica: copies; ec: K)
//       17    1 policyB (replica: 0; ec: M)
//       18    2 fragmentIndex
//       20    4 reserved, zero
//       24    8 extentIndex
//       32    8 extentLengthBytes (logical bytes of the extent before encoding)
//       40    8 dataLengthBytes (bytes of fragment data after the header)
//       48    8 locationBytes (device offset of this header; 0 in fragment files)
//       56    8 reserved, zero
//       64   16 poolUuid
//       80   16 diskUuid
//       96   16 versionUuid (one object version; an overwrite gets a new one)
//      112   16 extentChecksum (xxh3-128 of the extent's logical bytes)
//      128   16 dataChecksum (xxh3-128 of the fragment data)
//      144   16 headerChecksum (xxh3-128 of bytes 0..143 then the key bytes)
//      160    k key (UTF-8, keyLengthBytes)
import { assert } from '../assert.js';
import { CHECKSUM_BYTES, FORMAT_VERSION, FRAGMENT_HEADER_FIXED_BYTES, KEY_LENGTH_MAX_BYTES } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { checksum128, checksumEquals } from '../redundancy/checksum.js';
import type { Policy } from '../redundancy/policy.js';
import { uuidFromBytes, uuidToBytes } from './uuid.js';

const MAGIC = Buffer.from('SHRDFRAG', 'ascii');
const POLICY_KIND_REPLICA = 1;
const POLICY_KIND_EC = 2;

const OFFSET = {
  magic: 0,
  formatVersion: 8,
  headerLength: 10,
  keyLength: 12,
  policyKind: 14,
  flags: 15,
  policyA: 16,
  policyB: 17,
  fragmentIndex: 18,
  reserved20: 20,
  extentIndex: 24,
  extentLength: 32,
  dataLength: 40,
  location: 48,
  reserved56: 56,
  poolUuid: 64,
  diskUuid: 80,
  versionUuid: 96,
  extentChecksum: 112,
  dataChecksum: 128,
  headerChecksum: 144,
  key: 160,
} as const;

assert(OFFSET.key === FRAGMENT_HEADER_FIXED_BYTES, 'fragment header fixed part length');
assert(OFFSET.headerChecksum + CHECKSUM_BYTES === OFFSET.key, 'header checksum is the last fixed field');

export interface FragmentHeader {
  readonly poolUuid: string;
  readonly diskUuid: string;
  readonly versionId: string;
  readonly key: string;
  readonly policy: Policy;
  readonly extentIndex: number;
  readonly extentLengthBytes: number;
  readonly fragmentIndex: number;
  readonly dataLengthBytes: number;
  readonly locationBytes: number;
  readonly extentChecksum: Buffer;
  readonly dataChecksum: Buffer;
}

export function fragmentHeaderLengthBytes(key: string): number {
  return FRAGMENT_HEADER_FIXED_BYTES + Buffer.byteLength(key, 'utf8');
}

export function encodeFragmentHeader(header: FragmentHeader): Buffer {
  const keyBytes = Buffer.from(header.key, 'utf8');
  assert(keyBytes.length <= KEY_LENGTH_MAX_BYTES, 'key length was validated before encoding');
  assert(header.extentChecksum.length === CHECKSUM_BYTES && header.dataChecksum.length === CHECKSUM_BYTES, 'checksums');
  const bytes = Buffer.alloc(FRAGMENT_HEADER_FIXED_BYTES + keyBytes.length);
  MAGIC.copy(bytes, OFFSET.magic);
  bytes.writeUInt16LE(FORMAT_VERSION, OFFSET.formatVersion);
  bytes.writeUInt16LE(bytes.length, OFFSET.headerLength);
  bytes.writeUInt16LE(keyBytes.length, OFFSET.keyLength);
  if (header.policy.kind === 'replica') {
    bytes.writeUInt8(POLICY_KIND_REPLICA, OFFSET.policyKind);
    bytes.writeUInt8(header.policy.copies, OFFSET.policyA);
  } else {
    bytes.writeUInt8(POLICY_KIND_EC, OFFSET.policyKind);
    bytes.writeUInt8(header.policy.dataFragments, OFFSET.policyA);
    bytes.writeUInt8(header.policy.parityFragments, OFFSET.policyB);
  }
  bytes.writeUInt16LE(header.fragmentIndex, OFFSET.fragmentIndex);
  bytes.writeBigUInt64LE(BigInt(header.extentIndex), OFFSET.extentIndex);
  bytes.writeBigUInt64LE(BigInt(header.extentLengthBytes), OFFSET.extentLength);
  bytes.writeBigUInt64LE(BigInt(header.dataLengthBytes), OFFSET.dataLength);
  bytes.writeBigUInt64LE(BigInt(header.locationBytes), OFFSET.location);
  uuidToBytes(header.poolUuid).copy(bytes, OFFSET.poolUuid);
  uuidToBytes(header.diskUuid).copy(bytes, OFFSET.diskUuid);
  uuidToBytes(header.versionId).copy(bytes, OFFSET.versionUuid);
  header.extentChecksum.copy(bytes, OFFSET.extentChecksum);
  header.dataChecksum.copy(bytes, OFFSET.dataChecksum);
  keyBytes.copy(bytes, OFFSET.key);
  headerChecksumOf(bytes, keyBytes.length).copy(bytes, OFFSET.headerChecksum);
  return bytes;
}

/**
 * Decodes and checks the header at the start of `bytes` (which may continue with the fragment data).
 * Every structural problem — truncation, wrong magic, unknown version, bad lengths, non-zero reserved bytes,
 * checksum mismatch — is FRAGMENT_HEADER_INVALID; nothing is trusted before the checksum matched.
 */
export function decodeFragmentHeader(bytes: Buffer, source: string): FragmentHeader {
  const invalid = (why: string) =>
    new ShardpoolError('FRAGMENT_HEADER_INVALID', `fragment header in ${source} is invalid: ${why}`, { source });
  if (bytes.length < FRAGMENT_HEADER_FIXED_BYTES) throw invalid(`truncated (${bytes.length} bytes)`);
  if (!bytes.subarray(OFFSET.magic, OFFSET.magic + MAGIC.length).equals(MAGIC)) throw invalid('wrong magic');
  const formatVersion = bytes.readUInt16LE(OFFSET.formatVersion);
  if (formatVersion === 0 || formatVersion > FORMAT_VERSION) throw invalid(`unsupported format version ${formatVersion}`);
  const keyLengthBytes = bytes.readUInt16LE(OFFSET.keyLength);
  const headerLengthBytes = bytes.readUInt16LE(OFFSET.headerLength);
  if (keyLengthBytes > KEY_LENGTH_MAX_BYTES) throw invalid(`key length ${keyLengthBytes} exceeds the limit`);
  if (headerLengthBytes !== FRAGMENT_HEADER_FIXED_BYTES + keyLengthBytes) throw invalid('header length mismatch');
  if (bytes.length < headerLengthBytes) throw invalid(`truncated in the key (${bytes.length} bytes)`);
  const expectedChecksum = headerChecksumOf(bytes, keyLengthBytes);
  const storedChecksum = bytes.subarray(OFFSET.headerChecksum, OFFSET.headerChecksum + CHECKSUM_BYTES);
  if (!checksumEquals(expectedChecksum, storedChecksum)) throw invalid('header checksum mismatch');
  if (bytes.readUInt8(OFFSET.flags) !== 0) throw invalid('reserved flags are set');
  if (bytes.readUInt32LE(OFFSET.reserved20) !== 0 || bytes.readBigUInt64LE(OFFSET.reserved56) !== 0n) {
    throw invalid('reserved bytes are not zero');
  }
  const policy = decodePolicy(bytes, invalid);
  return {
    poolUuid: uuidFromBytes(bytes.subarray(OFFSET.poolUuid)),
    diskUuid: uuidFromBytes(bytes.subarray(OFFSET.diskUuid)),
    versionId: uuidFromBytes(bytes.subarray(OFFSET.versionUuid)),
    key: decodeKey(bytes.subarray(OFFSET.key, OFFSET.key + keyLengthBytes), invalid),
    policy,
    extentIndex: readSafeInteger(bytes, OFFSET.extentIndex, invalid),
    extentLengthBytes: readSafeInteger(bytes, OFFSET.extentLength, invalid),
    fragmentIndex: bytes.readUInt16LE(OFFSET.fragmentIndex),
    dataLengthBytes: readSafeInteger(bytes, OFFSET.dataLength, invalid),
    locationBytes: readSafeInteger(bytes, OFFSET.location, invalid),
    extentChecksum: Buffer.from(bytes.subarray(OFFSET.extentChecksum, OFFSET.extentChecksum + CHECKSUM_BYTES)),
    dataChecksum: Buffer.from(bytes.subarray(OFFSET.dataChecksum, OFFSET.dataChecksum + CHECKSUM_BYTES)),
  };
}

/** The identity a reader expects; any field that differs means a misdirected, stale or foreign fragment. */
export interface FragmentIdentity {
  readonly poolUuid: string;
  readonly diskUuid: string;
  readonly versionId: string;
  readonly extentIndex: number;
  readonly fragmentIndex: number;
}

export function verifyFragmentIdentity(header: FragmentHeader, expected: FragmentIdentity, source: string): void {
  for (const field of ['poolUuid', 'diskUuid', 'versionId', 'extentIndex', 'fragmentIndex'] as const) {
    if (header[field] !== expected[field]) {
      throw new ShardpoolError(
        'FRAGMENT_IDENTITY_MISMATCH',
        `fragment in ${source} has ${field} ${String(header[field])}, expected ${String(expected[field])}`,
        { source, field },
      );
    }
  }
}

export function verifyFragmentData(header: FragmentHeader, data: Buffer, source: string): void {
  if (data.length !== header.dataLengthBytes) {
    throw new ShardpoolError(
      'FRAGMENT_CHECKSUM_MISMATCH',
      `fragment in ${source} holds ${data.length} data bytes, its header says ${header.dataLengthBytes}`,
      { source },
    );
  }
  if (!checksumEquals(checksum128(data), header.dataChecksum)) {
    throw new ShardpoolError('FRAGMENT_CHECKSUM_MISMATCH', `fragment data in ${source} does not match its checksum`, {
      source,
    });
  }
}

function headerChecksumOf(bytes: Buffer, keyLengthBytes: number): Buffer {
  return checksum128(
    bytes.subarray(0, OFFSET.headerChecksum),
    bytes.subarray(OFFSET.key, OFFSET.key + keyLengthBytes),
  );
}

function decodePolicy(bytes: Buffer, invalid: (why: string) => ShardpoolError): Policy {
  const kind = bytes.readUInt8(OFFSET.policyKind);
  const a = bytes.readUInt8(OFFSET.policyA);
  const b = bytes.readUInt8(OFFSET.policyB);
  if (kind === POLICY_KIND_REPLICA && a >= 1 && b === 0) return { kind: 'replica', copies: a };
  if (kind === POLICY_KIND_EC && a >= 1 && b >= 1) return { kind: 'ec', dataFragments: a, parityFragments: b };
  throw invalid(`unknown policy kind ${kind} (${a}, ${b})`);
}

function decodeKey(bytes: Buffer, invalid: (why: string) => ShardpoolError): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid('key is not UTF-8');
  }
}

function readSafeInteger(bytes: Buffer, offset: number, invalid: (why: string) => ShardpoolError): number {
  const value = bytes.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`field at offset ${offset} is out of range`);
  return Number(value);
}
