// Reading, writing and erasing the three copies of a device label (format/device-label.ts) through aligned I/O.
// Copies are written one at a time, each followed by a flush, so a crash or torn write damages at most one.
import { allocateAlignedBuffer } from '../../io/aligned-buffer.js';
import type { BlockFile } from '../../io/block-io.js';
import {
  DEVICE_LABEL_BYTES,
  chooseDeviceLabel,
  decodeDeviceLabelCopy,
  deviceLabelOffsets,
  encodeDeviceLabel,
  type DeviceLabel,
  type LabelVerdict,
} from '../../format/device-label.js';

export async function readDeviceLabel(file: BlockFile): Promise<LabelVerdict> {
  if (file.info.sizeBytes < 3 * DEVICE_LABEL_BYTES) return { state: 'unlabelled' };
  const buffer = allocateAlignedBuffer(DEVICE_LABEL_BYTES);
  const copies = [];
  for (const offset of deviceLabelOffsets(file.info.sizeBytes)) {
    try {
      await file.read(buffer, 0, DEVICE_LABEL_BYTES, offset);
      copies.push(decodeDeviceLabelCopy(buffer, offset));
    } catch (error) {
      // An unreadable copy (EIO) counts as a damaged one; the others may still be good.
      copies.push({ state: 'invalid' as const, why: `read failed: ${(error as Error).message}`, newerVersion: false });
    }
  }
  return chooseDeviceLabel(copies);
}

/** Writes every copy of `label` (whose sequence the caller has already advanced). */
export async function writeDeviceLabel(file: BlockFile, label: DeviceLabel): Promise<void> {
  const buffer = allocateAlignedBuffer(DEVICE_LABEL_BYTES);
  for (const offset of deviceLabelOffsets(file.info.sizeBytes)) {
    encodeDeviceLabel(label, offset).copy(buffer);
    await file.write(buffer, 0, DEVICE_LABEL_BYTES, offset);
    await file.flush();
  }
}

/** Zeroes every copy, so the device no longer claims to belong to a pool. */
export async function eraseDeviceLabel(file: BlockFile): Promise<void> {
  const zeros = allocateAlignedBuffer(DEVICE_LABEL_BYTES);
  for (const offset of deviceLabelOffsets(file.info.sizeBytes)) {
    await file.write(zeros, 0, DEVICE_LABEL_BYTES, offset);
    await file.flush();
  }
}
