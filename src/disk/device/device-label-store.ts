// Reading, writing and erasing the three copies of a device label (format/device-label.ts) through aligned I/O.
// Copies are written one at a time, each followed by a flush, so a crash or torn write damages at most one.
import { allocateAlignedBuffer } from '../../io/aligned-buffer.js';
import {
  DEVICE_LABEL_BYTES,
  chooseDeviceLabel,
  decodeDeviceLabelCopy,
  deviceLabelOffsets,
  encodeDeviceLabel,
  type DeviceLabel,
  type LabelCopy,
  type LabelVerdict,
} from '../../format/device-label.js';
import type { BlockStorage } from './block-storage.js';

export async function readDeviceLabel(storage: BlockStorage): Promise<LabelVerdict> {
  if (storage.info.sizeBytes < 3 * DEVICE_LABEL_BYTES) return { state: 'unlabelled' };
  const buffer = allocateAlignedBuffer(DEVICE_LABEL_BYTES);
  const copies: LabelCopy[] = [];
  for (const offset of deviceLabelOffsets(storage.info.sizeBytes)) {
    try {
      await storage.read(buffer, 0, DEVICE_LABEL_BYTES, offset);
      copies.push(decodeDeviceLabelCopy(buffer, offset));
    } catch (error) {
      // An unreadable copy (EIO) counts as a damaged one; the others may still be good.
      copies.push({ state: 'invalid', why: `read failed: ${(error as Error).message}`, newerVersion: false });
    }
  }
  return chooseDeviceLabel(copies);
}

/** Writes every copy of `label` (whose sequence the caller has already advanced), flushing after each. */
export async function writeDeviceLabel(storage: BlockStorage, label: DeviceLabel, afterCopy: () => void = () => undefined): Promise<void> {
  const buffer = allocateAlignedBuffer(DEVICE_LABEL_BYTES);
  for (const offset of deviceLabelOffsets(storage.info.sizeBytes)) {
    encodeDeviceLabel(label, offset).copy(buffer);
    await storage.write(buffer, 0, DEVICE_LABEL_BYTES, offset);
    await storage.flush();
    afterCopy();
  }
}

/** Zeroes every copy, so the device no longer claims to belong to a pool. */
export async function eraseDeviceLabel(storage: BlockStorage): Promise<void> {
  const zeros = allocateAlignedBuffer(DEVICE_LABEL_BYTES);
  for (const offset of deviceLabelOffsets(storage.info.sizeBytes)) {
    await storage.write(zeros, 0, DEVICE_LABEL_BYTES, offset);
    await storage.flush();
  }
}
