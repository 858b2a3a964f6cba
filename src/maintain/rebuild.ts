// rebuild: re-create every fragment of failed disks on healthy ones, reading only the K fragments each extent needs.
// replace-disk: add a new disk and move everything off an old one onto it. Both run on the relocation protocol, so a
// crash loses nothing and a rerun continues with what is left.
import { reportMaintenance } from './maintenance-observer.js';
import type { DiskRow } from '../pool/catalog/catalog.js';
import type { Pool } from '../pool/pool.js';
import type { AddDeviceOptions } from '../pool/add-device.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { drainDisk, type DrainProgress, type DrainResult } from './drain.js';

export async function rebuildFailedDisks(
  pool: Pool,
  reference: string | undefined,
  onProgress?: (disk: DiskRow, progress: DrainProgress) => void,
): Promise<DrainResult[]> {
  pool.assertWritable();
  const targets = reference === undefined ? pool.listMembers().filter((member) => member.row.state === 'failed') : [await pool.findMember(reference)];
  for (const member of targets) {
    if (member.row.state !== 'failed') {
      throw new ShardpoolError(
        'DISK_NOT_FAILED',
        `disk ${member.row.id} (${member.row.path}) is ${member.row.state}, not failed: mark it with fail-disk first, or use remove-disk to move its fragments off`,
        { diskId: member.row.id },
      );
    }
  }
  const results: DrainResult[] = [];
  for (const member of targets) {
    // The failed disk stays listed (with no fragments) until remove-disk forgets it.
    const result = await drainDisk(pool, String(member.row.id), {
      forget: false,
      onProgress: (progress) => {
        onProgress?.(member.row, progress);
        reportMaintenance({ kind: 'rebuild', phase: 'progress', doneFragments: progress.moved + progress.rebuilt, totalFragments: progress.total });
      },
    });
    results.push(result);
    reportMaintenance({ kind: 'rebuild', phase: 'finished', fragmentsRebuilt: result.moved + result.rebuilt });
  }
  return results;
}

export async function replaceDisk(
  pool: Pool,
  oldReference: string,
  newPath: string,
  options: { device: boolean } & Partial<AddDeviceOptions>,
  onProgress?: (progress: DrainProgress) => void,
): Promise<{ added: DiskRow; drained: DrainResult }> {
  pool.assertWritable();
  const old = await pool.findMember(oldReference);
  let added: DiskRow;
  try {
    added = await pool.addDisk(newPath, options);
  } catch (error) {
    // A rerun after an interrupted replace: the new disk already joined.
    if (!isShardpoolError(error, 'DISK_ALREADY_IN_POOL')) throw error;
    added = (await pool.findMember(newPath)).row;
  }
  if (added.id === old.row.id) throw new ShardpoolError('USAGE_INVALID', 'the new disk is the old disk');
  const drained = await drainDisk(pool, String(old.row.id), { preferTargetId: added.id, forget: true, onProgress });
  return { added, drained };
}
