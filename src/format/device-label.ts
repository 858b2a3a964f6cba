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
//       80    4 allocationUnitBytes
//       84    1 activeCheckpointSlot (0 or 1; 255 = none yet: every unit free, nothing pending)
//       85    3 reserved, zero
//       88    8 journalOffsetBytes
//       96    8 journalLengthBytes
//      104    8 checkpointSlot0OffsetBytes
//      112    8 checkpointSlot1OffsetBytes
//      120    8 checkpointSlotLengthBytes
//      128    8 dataOffsetBytes
//      136    8 dataUnits
//      144    8 journalSequence (the sequence the first journal record after the active checkpoint carries)
//      152 3896 reserved, zero
//     4048   16 checksum: xxh3-128 of bytes 0..4047
//     4064    8 locationBytes: this copy's own offset (outside the checksum: it is the one field copies differ in)
//     4072   24 reserved, zero
import { assert } from '../assert.js';
import { CHECKSUM_BYTES, DEVICE_FORMAT_VERSION } from '../constants.js';
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
  allocationUnit: 80,
  activeCheckpointSlot: 84,
  reserved85: 85,
  journalOffset: 88,
  journalLength: 96,
  checkpointSlot0: 104,
  checkpointSlot1: 112,
  checkpointSlotLength: 120,
  dataOffset: 128,
  dataUnits: 136,
  journalSequence: 144,
  reservedMiddle: 152,
  checksum: 4048,
  location: 4064,
  reservedTail: 4072,
} as const;

assert(OFFSET.checksum + CHECKSUM_BYTES === OFFSET.location, 'the location follows the checksum');
assert(OFFSET.reservedTail + 24 === DEVICE_LABEL_BYTES, 'a label copy is one 4 KiB block');

/** Where the regions of a device are; fixed when the device is formatted. */
export interface DeviceRegions {
  readonly allocationUnitBytes: number;
  readonly journalOffsetBytes: number;
  readonly journalLengthBytes: number;
  readonly checkpointSlotOffsetsBytes: readonly [number, number];
  readonly checkpointSlotLengthBytes: number;
  readonly dataOffsetBytes: number;
  readonly dataUnits: number;
}

export const NO_CHECKPOINT_SLOT = 255;

export interface DeviceLabel {
  readonly formatVersion: number;
  readonly sequence: number;
  readonly deviceSizeBytes: number;
  readonly logicalSectorBytes: number;
  readonly physicalSectorBytes: number;
  readonly createdAtMs: number;
  readonly poolUuid: string;
  readonly deviceUuid: string;
  readonly regions: DeviceRegions;
  /** 0 or 1, or NO_CHECKPOINT_SLOT before the first checkpoint. */
  readonly activeCheckpointSlot: number;
  readonly journalSequence: number;
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
  const { regions } = label;
  bytes.writeUInt32LE(regions.allocationUnitBytes, OFFSET.allocationUnit);
  bytes.writeUInt8(label.activeCheckpointSlot, OFFSET.activeCheckpointSlot);
  bytes.writeBigUInt64LE(BigInt(regions.journalOffsetBytes), OFFSET.journalOffset);
  bytes.writeBigUInt64LE(BigInt(regions.journalLengthBytes), OFFSET.journalLength);
  bytes.writeBigUInt64LE(BigInt(regions.checkpointSlotOffsetsBytes[0]), OFFSET.checkpointSlot0);
  bytes.writeBigUInt64LE(BigInt(regions.checkpointSlotOffsetsBytes[1]), OFFSET.checkpointSlot1);
  bytes.writeBigUInt64LE(BigInt(regions.checkpointSlotLengthBytes), OFFSET.checkpointSlotLength);
  bytes.writeBigUInt64LE(BigInt(regions.dataOffsetBytes), OFFSET.dataOffset);
  bytes.writeBigUInt64LE(BigInt(regions.dataUnits), OFFSET.dataUnits);
  bytes.writeBigUInt64LE(BigInt(label.journalSequence), OFFSET.journalSequence);
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
  if (formatVersion > DEVICE_FORMAT_VERSION) {
    return invalid(`device format version ${formatVersion} is newer than this shardpool`, true);
  }
  if (formatVersion !== DEVICE_FORMAT_VERSION) {
    return invalid(`device format version ${formatVersion} predates the on-device allocator: remove the disk and add it again`);
  }
  if (bytes.readUInt16LE(OFFSET.flags) !== 0) return invalid('reserved flags set');
  if (bytes.readUInt32LE(OFFSET.labelLength) !== DEVICE_LABEL_BYTES) return invalid('wrong label length');
  if (bytes.readBigUInt64LE(OFFSET.location) !== BigInt(locationBytes)) {
    return invalid(`copy claims offset ${bytes.readBigUInt64LE(OFFSET.location)}, read from ${locationBytes}`);
  }
  if (
    !isZero(bytes.subarray(OFFSET.reserved85, OFFSET.journalOffset)) ||
    !isZero(bytes.subarray(OFFSET.reservedMiddle, OFFSET.checksum)) ||
    !isZero(bytes.subarray(OFFSET.reservedTail))
  ) {
    return invalid('reserved bytes are not zero');
  }
  const wide = [
    OFFSET.sequence,
    OFFSET.deviceSize,
    OFFSET.createdAtMs,
    OFFSET.journalOffset,
    OFFSET.journalLength,
    OFFSET.checkpointSlot0,
    OFFSET.checkpointSlot1,
    OFFSET.checkpointSlotLength,
    OFFSET.dataOffset,
    OFFSET.dataUnits,
    OFFSET.journalSequence,
  ].map((offset) => bytes.readBigUInt64LE(offset));
  if (wide.some((value) => value > BigInt(Number.MAX_SAFE_INTEGER))) return invalid('a field is out of range');
  const number = (offset: number) => Number(bytes.readBigUInt64LE(offset));
  const activeCheckpointSlot = bytes.readUInt8(OFFSET.activeCheckpointSlot);
  if (activeCheckpointSlot > 1 && activeCheckpointSlot !== NO_CHECKPOINT_SLOT) return invalid('bad checkpoint slot');
  const regions: DeviceRegions = {
    allocationUnitBytes: bytes.readUInt32LE(OFFSET.allocationUnit),
    journalOffsetBytes: number(OFFSET.journalOffset),
    journalLengthBytes: number(OFFSET.journalLength),
    checkpointSlotOffsetsBytes: [number(OFFSET.checkpointSlot0), number(OFFSET.checkpointSlot1)],
    checkpointSlotLengthBytes: number(OFFSET.checkpointSlotLength),
    dataOffsetBytes: number(OFFSET.dataOffset),
    dataUnits: number(OFFSET.dataUnits),
  };
  const deviceSizeBytes = number(OFFSET.deviceSize);
  const layoutProblem = checkRegions(regions, deviceSizeBytes);
  if (layoutProblem) return invalid(layoutProblem);
  return {
    state: 'valid',
    locationBytes,
    label: {
      formatVersion,
      sequence: number(OFFSET.sequence),
      deviceSizeBytes,
      logicalSectorBytes: bytes.readUInt32LE(OFFSET.logicalSector),
      physicalSectorBytes: bytes.readUInt32LE(OFFSET.physicalSector),
      createdAtMs: number(OFFSET.createdAtMs),
      poolUuid: uuidFromBytes(bytes.subarray(OFFSET.poolUuid)),
      deviceUuid: uuidFromBytes(bytes.subarray(OFFSET.deviceUuid)),
      regions,
      activeCheckpointSlot,
      journalSequence: number(OFFSET.journalSequence),
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

/** The regions must be 4 KiB-aligned, in order, non-overlapping and inside the device: else the label lies. */
function checkRegions(regions: DeviceRegions, deviceSizeBytes: number): string | undefined {
  const unit = regions.allocationUnitBytes;
  if (unit < 4096 || unit > 64 * 1024 * 1024 || (unit & (unit - 1)) !== 0) return `bad allocation unit ${unit}`;
  const spans: Array<[number, number]> = [
    [regions.journalOffsetBytes, regions.journalLengthBytes],
    [regions.checkpointSlotOffsetsBytes[0], regions.checkpointSlotLengthBytes],
    [regions.checkpointSlotOffsetsBytes[1], regions.checkpointSlotLengthBytes],
    [regions.dataOffsetBytes, regions.dataUnits * unit],
  ];
  let end = 2 * DEVICE_LABEL_BYTES;
  for (const [offset, length] of spans) {
    if (offset % 4096 !== 0 || length % 4096 !== 0 || length === 0) return 'a region is not 4 KiB-aligned';
    if (offset < end) return 'regions overlap';
    end = offset + length;
  }
  if (regions.dataOffsetBytes % unit !== 0) return 'the data region is not unit-aligned';
  if (end > deviceSizeBytes - DEVICE_LABEL_BYTES) return 'regions run past the end of the device';
  return undefined;
}

function isZero(bytes: Buffer): boolean {
  return bytes.every((byte) => byte === 0);
}
