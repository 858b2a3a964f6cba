// defrag: move fragments of a block device from its end into the lowest free runs that fit, with the same
// crash-safe relocation protocol as every move, so free space coalesces at the end: the largest free run grows.
import { DeviceDisk } from '../disk/device/device-disk.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import type { Pool } from '../pool/pool.js';
import { relocateFragment } from './relocate.js';

export interface DefragResult {
  readonly diskId: number;
  readonly path: string;
  readonly moved: number;
  readonly largestFreeRunBeforeBytes: number;
  readonly largestFreeRunAfterBytes: number;
}

export async function defragPool(pool: Pool, reference: string | undefined, onProgress?: (moved: number) => void): Promise<DefragResult[]> {
  pool.assertWritable();
  const members = reference === undefined ? pool.listMembers() : [await pool.findMember(reference)];
  const results: DefragResult[] = [];
  for (const member of members) {
    const disk = member.disk;
    if (!(disk instanceof DeviceDisk) || !disk.acceptsFragments) {
      if (reference !== undefined) {
        throw new ShardpoolError('NOT_A_DEVICE', `disk ${member.row.id} (${member.row.path}) is not a writable block device`, { diskId: member.row.id });
      }
      continue;
    }
    const before = disk.largestFreeRunBytes;
    let moved = 0;
    // Highest first: each move fills the lowest hole that fits, so the tail empties out.
    const fragments = (await pool.catalog.fragmentsOnDisk(member.row.id)).sort((a, b) => b.locationBytes - a.locationBytes);
    for (const fragment of fragments) {
      if (!disk.wouldPlaceBelow(fragment.locationBytes, fragment.storedBytes)) continue;
      const object = await pool.catalog.objectOfVersion(fragment.versionId);
      const extent = object ? await pool.catalog.extentOf(fragment.versionId, fragment.extentIndex) : undefined;
      if (!object || !extent) continue; // garbage awaiting collection: not worth moving
      try {
        if ((await relocateFragment(pool, { object, extent, fragment }, { inPlace: true })) === 'skipped') continue;
        moved += 1;
        onProgress?.(moved);
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
      }
    }
    results.push({ diskId: member.row.id, path: member.row.path, moved, largestFreeRunBeforeBytes: before, largestFreeRunAfterBytes: disk.largestFreeRunBytes });
  }
  return results;
}
