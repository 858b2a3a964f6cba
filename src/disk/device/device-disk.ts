// A raw block device (or a device image file) as a member disk. In this version a device can be admitted, labelled,
// held exclusively while the pool is open, failed, and removed (its label erased) — but it takes no fragments yet:
// the on-device allocator and commit protocol come with the next milestone. Writes are refused loudly, never
// accepted silently, and placement skips the device (acceptsFragments is false).
import { ShardpoolError } from '../../errors.js';
import { BlockFile, type DirectIoMode } from '../../io/block-io.js';
import { lockFile } from '../../io/file-lock.js';
import { FORMAT_VERSION } from '../../constants.js';
import type { FragmentHeader } from '../../format/fragment-header.js';
import type { Disk, DiskSpace, FragmentAddress } from '../disk.js';
import { eraseDeviceLabel, readDeviceLabel, writeDeviceLabel } from './device-label-store.js';

export interface DeviceOpenOptions {
  readonly directIo: DirectIoMode;
  /** Writers hold the device with O_EXCL and an exclusive flock; readers open it shared and read-only. */
  readonly access: 'read' | 'write';
}

/** Writes a fresh label (all three copies) on a device that admission has cleared and the operator confirmed. */
export async function formatDeviceDisk(
  devicePath: string,
  identity: { poolUuid: string; diskUuid: string },
  directIo: DirectIoMode,
): Promise<void> {
  const file = await BlockFile.open(devicePath, { directIo, exclusive: true, readOnly: false });
  try {
    await holdLock(file);
    const previous = await readDeviceLabel(file);
    await writeDeviceLabel(file, {
      formatVersion: FORMAT_VERSION,
      // Continue the old sequence (a re-used device): a stale surviving copy can never outrank the new label.
      sequence: previous.state === 'labelled' ? previous.label.sequence + 1 : 1,
      deviceSizeBytes: file.info.sizeBytes,
      logicalSectorBytes: file.info.logicalSectorBytes,
      physicalSectorBytes: file.info.physicalSectorBytes,
      createdAtMs: Date.now(),
      poolUuid: identity.poolUuid,
      deviceUuid: identity.diskUuid,
    });
  } finally {
    await file.close();
  }
}

export async function openDeviceDisk(
  devicePath: string,
  expected: { poolUuid: string; diskUuid: string },
  options: DeviceOpenOptions,
): Promise<DeviceDisk> {
  const file = await BlockFile.open(devicePath, {
    directIo: options.directIo,
    exclusive: options.access === 'write',
    readOnly: options.access === 'read',
  });
  try {
    if (options.access === 'write') await holdLock(file);
    const verdict = await readDeviceLabel(file);
    if (verdict.state === 'unreadable') {
      throw new ShardpoolError('DEVICE_LABEL_INVALID', `every label copy on ${devicePath} is damaged (${verdict.why})`, {
        path: devicePath,
      });
    }
    if (verdict.state === 'unlabelled') {
      throw new ShardpoolError('DISK_OFFLINE', `${devicePath} carries no shardpool label (another device at this path?)`, {
        path: devicePath,
      });
    }
    const { label } = verdict;
    if (label.poolUuid !== expected.poolUuid || label.deviceUuid !== expected.diskUuid) {
      throw new ShardpoolError(
        'DISK_OFFLINE',
        `${devicePath} is labelled as device ${label.deviceUuid} of pool ${label.poolUuid}, not the expected device ` +
          `${expected.diskUuid}: a different device is at this path`,
        { path: devicePath },
      );
    }
    return new DeviceDisk(devicePath, file, label.poolUuid, label.deviceUuid);
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** Both a shardpool process holding the pool and a probing one see the same flock, device or image file alike. */
async function holdLock(file: BlockFile): Promise<void> {
  if (!(await lockFile(file.fd, 'exclusive'))) {
    throw new ShardpoolError('DEVICE_BUSY', `${file.path} is held by another shardpool process`, { path: file.path });
  }
}

export class DeviceDisk implements Disk {
  readonly kind = 'block-device' as const;
  readonly acceptsFragments = false;

  constructor(
    readonly path: string,
    private readonly file: BlockFile,
    readonly poolUuid: string,
    readonly diskUuid: string,
  ) {}

  get sizeBytes(): number {
    return this.file.info.sizeBytes;
  }

  async writeFragment(): Promise<void> {
    throw new ShardpoolError(
      'DEVICE_NOT_WRITABLE_YET',
      `${this.path} is a block device, which this version of shardpool can label and hold but not yet write ` +
        'fragments to (the on-device allocator arrives in a later version)',
      { path: this.path },
    );
  }

  async flush(): Promise<void> {
    await this.file.flush();
  }

  async readFragment(address: FragmentAddress): Promise<{ header: FragmentHeader; data: Buffer }> {
    throw new ShardpoolError('FRAGMENT_MISSING', `${this.path} holds no fragments (block devices are not written yet)`, {
      path: this.path,
      versionId: address.versionId,
    });
  }

  async deleteFragment(): Promise<void> {
    // Nothing was ever written here.
  }

  async deleteVersion(): Promise<number> {
    return 0;
  }

  async *listFragments(): AsyncIterable<FragmentAddress> {
    // No fragments on devices in this version.
  }

  async space(): Promise<DiskSpace> {
    return { capacityBytes: this.file.info.sizeBytes, freeBytes: 0 };
  }

  async release(): Promise<void> {
    await eraseDeviceLabel(this.file);
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
