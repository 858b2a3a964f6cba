// trim: discard every free unit of the pool's block devices, so thin-provisioned and flash storage get the space
// back. Allocated units are never discarded; directory disks are left to their filesystem's own discard.
import { DeviceDisk } from '../disk/device/device-disk.js';
import { ShardpoolError } from '../errors.js';
import type { Pool } from '../pool/pool.js';

export interface TrimResult {
  readonly diskId: number;
  readonly path: string;
  readonly discardedBytes: number;
}

export async function trimPool(pool: Pool, reference: string | undefined): Promise<TrimResult[]> {
  pool.assertWritable();
  const members = reference === undefined ? pool.listMembers() : [await pool.findMember(reference)];
  const results: TrimResult[] = [];
  for (const member of members) {
    if (!(member.disk instanceof DeviceDisk)) {
      if (reference !== undefined) {
        throw new ShardpoolError('NOT_A_DEVICE', `disk ${member.row.id} (${member.row.path}) is a ${member.row.kind}; only block devices are trimmed`, {
          diskId: member.row.id,
        });
      }
      continue;
    }
    results.push({ diskId: member.row.id, path: member.row.path, discardedBytes: await member.disk.trimFreeSpace() });
  }
  return results;
}
