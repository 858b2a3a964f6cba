// The label of a raw block device (or device image) that belongs to a pool: the on-device counterpart of disk.json.
// Three copies, each one 4096-byte block: two at the front (offsets 0 and 4096) and one in the last whole 4 KiB
// block of the device. They are written one at a time with a flush after each, so a torn write can damage at most
// one copy; on open the valid copy with the highest sequence number wins.
//
// Layout of one copy, little-endian (docs/format.md § Device label):
//   offset size field
//        0    8 magic "SHRDPOOL"
//        8    2 formatVersion
//       10    2 flags (reserved, zero)
//       12    4 labelLengthBytes (4096)
//       16    8 sequence (incremented on every rewrite)
//       24    8 deviceSizeBytes (when labelled)
//       32    4 logicalSectorBytes
//       36    4 physicalSectorBytes
//       40    8 createdAtMs
//       48   16 poolUuid
//       64   16 deviceUuid
//       80 3968 reserved, zero
//     4048   16 checksum: xxh3-128 of bytes 0..4047
//     4064    8 locationBytes: this copy's own offset (outside the checksum: it is the one field copies differ in)
//     4072   24 reserved, zero
import { assert } from '../assert.js';
import { CHECKSUM_BYTES, FORMAT_VERSION } from '../constants.js';
import { checksum128, checksumEquals } from '../redundancy/checksum.js';
import { uuidFromBytes, uuidToBytes } from './uuid.js';

export const DEVICE_LABEL_BYTES = 4096;
export const DEVICE_LABEL_MAGIC = Buffer.from('SHRDPOOL', 'ascii');
/** The smallest device worth labelling: the three label copies and room for fragments (checked at add-disk). */
export const DEVICE_SIZE_MIN_BYTES = 64 * 1024 * 1024;

const OFFSET = {
  magic: 0,
  formatVersion: 8,
  flags: 10,
  labelLength: 12,
  sequence: 16,
  deviceSize: 24,
  logicalSector: 32,
  physicalSector: 36,
  createdAtMs: 40,
  poolUuid: 48,
  deviceUuid: 64,
  reservedMiddle: 80,
  checksum: 4048,
  location: 4064,
  reservedTail: 4072,
} as const;

assert(OFFSET.checksum + CHECKSUM_BYTES === OFFSET.location, 'the location follows the checksum');
assert(OFFSET.reservedTail + 24 === DEVICE_LABEL_BYTES, 'a label copy is one 4 KiB block');

export interface DeviceLabel {
  readonly formatVersion: number;
  readonly sequence: number;
  readonly deviceSizeBytes: number;
  readonly logicalSectorBytes: number;
  readonly physicalSectorBytes: number;
  readonly createdAtMs: number;
  readonly poolUuid: string;
  readonly deviceUuid: string;
}

/** Where the copies live on a device of `deviceSizeBytes`: offsets 0, 4096 and the last whole 4 KiB block. */
export function deviceLabelOffsets(deviceSizeBytes: number): number[] {
  assert(deviceSizeBytes >= 3 * DEVICE_LABEL_BYTES, 'a labelled device holds three copies');
  const last = Math.floor(deviceSizeBytes / DEVICE_LABEL_BYTES) * DEVICE_LABEL_BYTES - DEVICE_LABEL_BYTES;
  return [0, DEVICE_LABEL_BYTES, last];
}

export function encodeDeviceLabel(label: DeviceLabel, locationBytes: number): Buffer {
  const bytes = Buffer.alloc(DEVICE_LABEL_BYTES);
  DEVICE_LABEL_MAGIC.copy(bytes, OFFSET.magic);
  bytes.writeUInt16LE(label.formatVersion, OFFSET.formatVersion);
  bytes.writeUInt32LE(DEVICE_LABEL_BYTES, OFFSET.labelLength);
  bytes.writeBigUInt64LE(BigInt(label.sequence), OFFSET.sequence);
  bytes.writeBigUInt64LE(BigInt(label.deviceSizeBytes), OFFSET.deviceSize);
  bytes.writeUInt32LE(label.logicalSectorBytes, OFFSET.logicalSector);
  bytes.writeUInt32LE(label.physicalSectorBytes, OFFSET.physicalSector);
  bytes.writeBigUInt64LE(BigInt(label.createdAtMs), OFFSET.createdAtMs);
  uuidToBytes(label.poolUuid).copy(bytes, OFFSET.poolUuid);
  uuidToBytes(label.deviceUuid).copy(bytes, OFFSET.deviceUuid);
  checksum128(bytes.subarray(0, OFFSET.checksum)).copy(bytes, OFFSET.checksum);
  bytes.writeBigUInt64LE(BigInt(locationBytes), OFFSET.location);
  return bytes;
}

export type LabelCopy =
  | { readonly state: 'valid'; readonly label: DeviceLabel; readonly locationBytes: number }
  | { readonly state: 'absent' }
  /** It carries our magic but fails a check: a torn or corrupted copy, or one of a newer format. */
  | { readonly state: 'invalid'; readonly why: string; readonly newerVersion: boolean };

/** Decodes one copy read from `locationBytes`. Never throws: every outcome is a value the quorum rule weighs. */
export function decodeDeviceLabelCopy(bytes: Buffer, locationBytes: number): LabelCopy {
  if (bytes.length < DEVICE_LABEL_BYTES) return { state: 'invalid', why: 'truncated', newerVersion: false };
  if (!bytes.subarray(0, DEVICE_LABEL_MAGIC.length).equals(DEVICE_LABEL_MAGIC)) return { state: 'absent' };
  const invalid = (why: string, newerVersion = false): LabelCopy => ({ state: 'invalid', why, newerVersion });
  const expected = checksum128(bytes.subarray(0, OFFSET.checksum));
  if (!checksumEquals(expected, bytes.subarray(OFFSET.checksum, OFFSET.checksum + CHECKSUM_BYTES))) {
    return invalid('checksum mismatch');
  }
  const formatVersion = bytes.readUInt16LE(OFFSET.formatVersion);
  if (formatVersion === 0) return invalid('format version 0');
  if (formatVersion > FORMAT_VERSION) return invalid(`format version ${formatVersion} is newer than this shardpool`, true);
  if (bytes.readUInt16LE(OFFSET.flags) !== 0) return invalid('reserved flags set');
  if (bytes.readUInt32LE(OFFSET.labelLength) !== DEVICE_LABEL_BYTES) return invalid('wrong label length');
  if (bytes.readBigUInt64LE(OFFSET.location) !== BigInt(locationBytes)) {
    return invalid(`copy claims offset ${bytes.readBigUInt64LE(OFFSET.location)}, read from ${locationBytes}`);
  }
  if (!isZero(bytes.subarray(OFFSET.reservedMiddle, OFFSET.checksum)) || !isZero(bytes.subarray(OFFSET.reservedTail))) {
    return invalid('reserved bytes are not zero');
  }
  const sequence = bytes.readBigUInt64LE(OFFSET.sequence);
  const deviceSize = bytes.readBigUInt64LE(OFFSET.deviceSize);
  const createdAtMs = bytes.readBigUInt64LE(OFFSET.createdAtMs);
  if ([sequence, deviceSize, createdAtMs].some((value) => value > BigInt(Number.MAX_SAFE_INTEGER))) {
    return invalid('a field is out of range');
  }
  return {
    state: 'valid',
    locationBytes,
    label: {
      formatVersion,
      sequence: Number(sequence),
      deviceSizeBytes: Number(deviceSize),
      logicalSectorBytes: bytes.readUInt32LE(OFFSET.logicalSector),
      physicalSectorBytes: bytes.readUInt32LE(OFFSET.physicalSector),
      createdAtMs: Number(createdAtMs),
      poolUuid: uuidFromBytes(bytes.subarray(OFFSET.poolUuid)),
      deviceUuid: uuidFromBytes(bytes.subarray(OFFSET.deviceUuid)),
    },
  };
}

export type LabelVerdict =
  | { readonly state: 'labelled'; readonly label: DeviceLabel; readonly damagedCopies: number }
  | { readonly state: 'unlabelled' }
  | { readonly state: 'unreadable'; readonly why: string; readonly newerVersion: boolean };

/**
 * The open rule, spelled out:
 *
 *   copies valid | copies with our magic but invalid | verdict
 *   ≥ 1          | any                               | labelled: the valid copy with the highest sequence wins
 *   0            | ≥ 1                               | unreadable: a shardpool device whose labels are all damaged
 *   0            | 0                                 | unlabelled: not a shardpool device
 */
export function chooseDeviceLabel(copies: ReadonlyArray<LabelCopy>): LabelVerdict {
  const valid = copies.filter((copy): copy is Extract<LabelCopy, { state: 'valid' }> => copy.state === 'valid');
  const invalid = copies.filter((copy): copy is Extract<LabelCopy, { state: 'invalid' }> => copy.state === 'invalid');
  if (valid.length > 0) {
    const best = valid.reduce((a, b) => (b.label.sequence > a.label.sequence ? b : a));
    return { state: 'labelled', label: best.label, damagedCopies: copies.length - valid.length };
  }
  if (invalid.length > 0) {
    return {
      state: 'unreadable',
      why: invalid.map((copy) => copy.why).join('; '),
      newerVersion: invalid.some((copy) => copy.newerVersion),
    };
  }
  return { state: 'unlabelled' };
}

function isZero(bytes: Buffer): boolean {
  return bytes.every((byte) => byte === 0);
}
