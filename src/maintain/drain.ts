// Drain (remove-disk): move every fragment off a disk, then forget the disk. Each fragment is read from the disk
// itself when it can be, and rebuilt from the extent's other fragments when it cannot (failed, unreachable or
// corrupt), then written to a disk that holds no other fragment of that extent.
//
// Per fragment, the same order as a put (crash-safe, resumable):
//   record the move → write the copy on the target → flush the target (kill point drain.fragment-copied) → one
//   catalog update re-points the fragment (kill point drain.fragment-moved) → delete the old copy → flush the source
//   → drop the move record.
// A crash before the catalog update leaves an unreferenced copy on the target; a crash after it leaves the old copy
// on the source. A rerun picks up what is left:
// the disk stays in state 'draining' until no fragment row names it. The moves table records each move from before
// the copy until the old copy is deleted, so the next write-open deletes whichever copy a crash left unreferenced.
import { ShardpoolError, isShardpoolError } from '../errors.js';
import type { DiskRow, FragmentToMove } from '../pool/catalog/catalog.js';
import { everyAsync, forEachBounded } from '../pool/concurrency.js';
import { relocateFragment } from './relocate.js';
import type { Pool } from '../pool/pool.js';

/** Fragments moved concurrently; enough to keep several disks busy, few enough to bound memory. */
const DRAIN_MOVES_IN_FLIGHT_MAX = 8;
const DRAIN_BATCH_COUNT = 256;

export interface DrainProgress {
  readonly moved: number;
  readonly rebuilt: number;
  readonly total: number;
}

export interface DrainResult {
  readonly disk: DiskRow;
  /** Fragments copied straight from the drained disk. */
  readonly moved: number;
  /** Fragments that had to be rebuilt from the rest of their extent. */
  readonly rebuilt: number;
}

export interface DrainOptions {
  readonly onProgress?: (progress: DrainProgress) => void;
  /** Forget the disk once it is empty (remove-disk, replace-disk); rebuild keeps a failed disk listed. */
  readonly forget?: boolean;
  /** Prefer this disk as the target of every move it can take (replace-disk's new disk). */
  readonly preferTargetId?: number;
}

export async function drainDisk(pool: Pool, reference: string, options: DrainOptions = {}): Promise<DrainResult> {
  pool.assertWritable();
  const onProgress = options.onProgress ?? (() => undefined);
  const member = await pool.findMember(reference);
  const diskId = member.row.id;
  await assertEnoughTargets(pool, member.row);
  if (member.row.state === 'healthy') {
    await pool.catalog.setDiskState(diskId, 'draining');
    await pool.refreshMember(diskId);
  }
  // Puts that chose this disk before it stopped taking fragments may still place some there: let them end, so the
  // walk below sees every fragment that will ever be on it.
  await pool.waitForWritesInFlight();
  // Garbage on this disk needs no move; delete (or, on a failed disk, drop) it first.
  await pool.collectAllGarbage();
  const total = await pool.catalog.countFragmentsOnDisk(diskId);
  let moved = 0;
  let rebuilt = 0;
  const failures = new Map<string, string>();
  const skipped = new Set<string>();
  for (;;) {
    const batch = (await pool.catalog.fragmentsToMove(diskId, DRAIN_BATCH_COUNT)).filter((move) => !failures.has(fragmentName(move)) && !skipped.has(fragmentName(move)));
    if (batch.length === 0) break;
    await forEachBounded(batch, DRAIN_MOVES_IN_FLIGHT_MAX, async (move) => {
      try {
        const how = await relocateFragment(pool, move, { preferTargetId: options.preferTargetId });
        if (how === 'copied') moved += 1;
        else if (how === 'rebuilt') rebuilt += 1;
        else skipped.add(fragmentName(move)); // overwritten or removed meanwhile: garbage, collected below
        onProgress({ moved, rebuilt, total });
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
        failures.set(fragmentName(move), `${error.code}: ${error.message}`);
      }
    });
  }
  // Versions that became garbage during the drain: their collections free this disk too. One that a reader still
  // streams is collected when the reader lets go; wait for that (readers end), within reason.
  const remaining = await waitForGarbageToLeave(pool, diskId);
  if (remaining > 0) {
    const [firstFailure] = failures.values();
    throw new ShardpoolError(
      'DRAIN_INCOMPLETE',
      `disk ${diskId} (${member.row.path}) still holds ${remaining} fragments that could not be moved ` +
        `(first failure: ${firstFailure ?? 'none recorded'}); it stays in state draining — fix the cause and rerun`,
      { diskId, remaining, failedFragments: failures.size },
    );
  }
  if (options.forget !== false) {
    await pool.forgetMember(diskId, { release: member.row.state !== 'failed' });
  }
  return { disk: member.row, moved, rebuilt };
}

/** How long a drain waits for readers of garbage versions on the disk to finish. */
const GARBAGE_WAIT_MS = 60_000;

async function waitForGarbageToLeave(pool: Pool, diskId: number): Promise<number> {
  const deadline = Date.now() + GARBAGE_WAIT_MS;
  for (;;) {
    await pool.collectAllGarbage();
    await pool.settleBackgroundWork();
    const remaining = await pool.catalog.countFragmentsOnDisk(diskId);
    const garbageOnly = await everyAsync(await pool.catalog.fragmentsOnDisk(diskId), (row) => pool.catalog.isGarbage(row.versionId));
    if (remaining === 0 || !garbageOnly || Date.now() > deadline) return remaining;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Every fragment of an extent needs its own disk, so draining is only possible while enough other healthy disks
 * remain. Checked before the disk is marked draining, so a refused drain changes nothing.
 */
async function assertEnoughTargets(pool: Pool, disk: DiskRow): Promise<void> {
  const widest = await pool.catalog.widestExtentOnDisk(disk.id);
  const others = pool.writableMembers().filter((member) => member.row.id !== disk.id).length;
  // The drained disk's own fragment moves to a disk that holds none of the extent's other widest - 1 fragments.
  if (widest > 0 && others < widest) {
    throw new ShardpoolError(
      'POLICY_NEEDS_MORE_DISKS',
      `cannot drain disk ${disk.id} (${disk.path}): objects on it keep ${widest} fragments per extent, each on its own ` +
        `disk, and only ${others} other healthy disks remain — add a disk first (shardpool add-disk), then rerun`,
      { diskId: disk.id, needed: widest, available: others },
    );
  }
}

function fragmentName(move: FragmentToMove): string {
  return `${move.fragment.versionId}.${move.fragment.extentIndex}.${move.fragment.fragmentIndex}`;
}
