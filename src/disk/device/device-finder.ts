// Finding a pool's block devices by their labels rather than by path: device names (/dev/sdb, /dev/loop3) are
// handed out at attach time and change across reboots and re-attachments, but a device's label names its pool and
// its own uuid. The pool looks here when the path it recorded holds another device or nothing.
//
// Read-only and harmless to other people's devices: every block device of the machine is opened without O_EXCL and
// without write access, only its label copies are read, and it is closed again. Only a device whose label names
// both the pool and the very disk uuid the catalog recorded is ever handed back; a device with the pool's uuid and
// an unknown disk uuid is never a match (it is never written).
import { isShardpoolError } from '../../errors.js';
import { BlockFile, type DirectIoMode } from '../../io/block-io.js';
import { blockDeviceNames } from '../../io/system-info.js';
import { readDeviceLabel } from './device-label-store.js';

export interface LabelledDevice {
  /** The most stable name found for it (a /dev/disk/by-id link when there is one). */
  readonly path: string;
  readonly devicePath: string;
  readonly poolUuid: string;
  readonly diskUuid: string;
}

/** Every block device on this machine whose label names `poolUuid`, with the disk uuid each label carries. */
export async function findPoolDevices(poolUuid: string, directIo: DirectIoMode): Promise<LabelledDevice[]> {
  const found: LabelledDevice[] = [];
  for (const name of await blockDeviceNames()) {
    const label = await readLabelQuietly(name.devicePath, directIo);
    if (label?.poolUuid === poolUuid) found.push({ ...name, ...label });
  }
  return found;
}

async function readLabelQuietly(devicePath: string, directIo: DirectIoMode): Promise<{ poolUuid: string; diskUuid: string } | undefined> {
  let file: BlockFile | undefined;
  try {
    file = await BlockFile.open(devicePath, { directIo, exclusive: false, readOnly: true });
    const verdict = await readDeviceLabel(file);
    return verdict.state === 'labelled' ? { poolUuid: verdict.label.poolUuid, diskUuid: verdict.label.deviceUuid } : undefined;
  } catch (error) {
    // A device that cannot be opened or read (no medium, no permission, an I/O error) holds nothing we can use.
    if (isShardpoolError(error)) return undefined;
    throw error;
  } finally {
    await file?.close().catch(() => undefined);
  }
}
