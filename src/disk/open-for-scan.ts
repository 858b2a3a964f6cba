// Opening a disk by what its own label says, without a catalog: for `recover --scan-only` when the pool's catalog is
// lost. Read-only: a device is opened without O_EXCL and scanned over its whole data region.
import { ShardpoolError } from '../errors.js';
import { BlockFile, type DirectIoMode } from '../io/block-io.js';
import { pathKind } from '../io/durable-files.js';
import { openDeviceStorage } from './device/device-disk.js';
import { DeviceMetadata } from './device/device-metadata.js';
import { openDirectoryDisk, readDirectoryLabel } from './directory/directory-disk.js';
import type { Disk } from './disk.js';

export async function openDiskForScan(diskPath: string, directIo: DirectIoMode): Promise<Disk> {
  const kind = await pathKind(diskPath);
  if (kind === 'missing') throw new ShardpoolError('DISK_NOT_FOUND', `${diskPath} does not exist`, { path: diskPath });
  if (kind === 'directory') {
    const label = await readDirectoryLabel(diskPath);
    if (!label) throw new ShardpoolError('DISK_OFFLINE', `${diskPath} has no shardpool label`, { path: diskPath });
    return openDirectoryDisk(diskPath, { poolUuid: label.poolUuid, diskUuid: label.diskUuid });
  }
  const file = await BlockFile.open(diskPath, { directIo, exclusive: false, readOnly: true });
  try {
    const { deviceLabel } = await DeviceMetadata.openLabel(file);
    return await openDeviceStorage(file, { poolUuid: deviceLabel.poolUuid, diskUuid: deviceLabel.deviceUuid }, 'read');
  } catch (error) {
    await file.close();
    throw error;
  }
}
