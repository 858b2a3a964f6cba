// Where the regions of a block device go, computed once when it is formatted and then recorded in its label:
//
//   0        4 KiB   label copy 0
//   4 KiB    4 KiB   label copy 1
//   64 KiB   J       metadata journal: allocation records appended by group commits (journal-record.ts)
//   …        C       checkpoint slot 0 ┐ bitmap of the data units + allocations not yet settled by the catalog,
//   …        C       checkpoint slot 1 ┘ written alternately (allocator-checkpoint.ts)
//   …        U × N   data region: N allocation units of U bytes holding fragment records (header + data)
//   end-4K   4 KiB   label copy 2
//
// The allocation unit defaults to 16 KiB, chosen by measurement (docs/format.md § Allocation unit): with 1 MiB
// extents it wastes at most 12.5 % (ec:8+3's 128 KiB fragments plus header) where 64 KiB units waste up to 50 %,
// while the bitmap stays at 8 MiB per TiB (4 KiB units would need 32 MiB per TiB and 4× the checkpoint writes).
import { assert } from '../assert.js';
import { KiB, MiB } from '../constants.js';
import { DEVICE_LABEL_BYTES, type DeviceRegions } from './device-label.js';
import { JOURNAL_ENTRY_BYTES } from './journal-record.js';

export const ALLOCATION_UNIT_DEFAULT_BYTES = 16 * KiB;
/** Allocations a checkpoint can carry that the catalog has not yet settled (puts in flight on this device). */
export const PENDING_ALLOCATIONS_MAX_COUNT = 16_384;
const JOURNAL_OFFSET_BYTES = 64 * KiB;
const JOURNAL_LENGTH_MIN_BYTES = 256 * KiB;
const JOURNAL_LENGTH_MAX_BYTES = 16 * MiB;
const CHECKPOINT_HEADER_BYTES = 4 * KiB;

export function planDeviceRegions(deviceSizeBytes: number, allocationUnitBytes = ALLOCATION_UNIT_DEFAULT_BYTES): DeviceRegions {
  assert(allocationUnitBytes >= 4 * KiB && (allocationUnitBytes & (allocationUnitBytes - 1)) === 0, 'unit is a power of two');
  const journalLengthBytes = clamp(roundUp(Math.floor(deviceSizeBytes / 256), 64 * KiB), JOURNAL_LENGTH_MIN_BYTES, JOURNAL_LENGTH_MAX_BYTES);
  const unitsUpperBound = Math.floor(deviceSizeBytes / allocationUnitBytes);
  const checkpointSlotLengthBytes = roundUp(
    CHECKPOINT_HEADER_BYTES + roundUp(Math.ceil(unitsUpperBound / 8), 4 * KiB) + PENDING_ALLOCATIONS_MAX_COUNT * JOURNAL_ENTRY_BYTES,
    64 * KiB,
  );
  const slot0 = JOURNAL_OFFSET_BYTES + journalLengthBytes;
  const slot1 = slot0 + checkpointSlotLengthBytes;
  const dataOffsetBytes = roundUp(slot1 + checkpointSlotLengthBytes, allocationUnitBytes);
  const lastLabelOffset = Math.floor(deviceSizeBytes / DEVICE_LABEL_BYTES) * DEVICE_LABEL_BYTES - DEVICE_LABEL_BYTES;
  const dataEnd = Math.floor(lastLabelOffset / allocationUnitBytes) * allocationUnitBytes;
  const dataUnits = Math.max(0, (dataEnd - dataOffsetBytes) / allocationUnitBytes);
  return {
    allocationUnitBytes,
    journalOffsetBytes: JOURNAL_OFFSET_BYTES,
    journalLengthBytes,
    checkpointSlotOffsetsBytes: [slot0, slot1],
    checkpointSlotLengthBytes,
    dataOffsetBytes,
    dataUnits,
  };
}

/** Bytes a checkpoint of `dataUnits` units reserves for its bitmap. */
export function checkpointBitmapBytes(dataUnits: number): number {
  return roundUp(Math.ceil(dataUnits / 8), 4 * KiB);
}

export function checkpointHeaderBytes(): number {
  return CHECKPOINT_HEADER_BYTES;
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}
