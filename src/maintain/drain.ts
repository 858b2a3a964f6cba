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
import { assert } from '../assert.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { fragmentHeaderLengthBytes } from '../format/fragment-header.js';
import { checksum128 } from '../redundancy/checksum.js';
import { createCodec } from '../redundancy/create-codec.js';
import { parsePolicy } from '../redundancy/policy.js';
import type { DiskRow, FragmentToMove } from '../pool/catalog.js';
import { forEachBounded } from '../pool/concurrency.js';
import { collectGarbage, finishMove } from '../pool/garbage.js';
import { killPoint } from '../pool/kill-points.js';
import { gatherFragments, type ReadStats } from '../pool/object-reader.js';
import { chooseDisks } from '../pool/placement.js';
import type { Pool } from '../pool/pool.js';

/** Fragments moved concurrently; enough to keep several disks busy, few enough to bound memory. */
const DRAIN_MOVES_IN_FLIGHT_MAX = 4;
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

export async function drainDisk(
  pool: Pool,
  reference: string,
  onProgress: (progress: DrainProgress) => void = () => undefined,
): Promise<DrainResult> {
  pool.assertWritable();
  const member = await pool.findMember(reference);
  const diskId = member.row.id;
  assertEnoughTargets(pool, member.row);
  if (member.row.state === 'healthy') {
    pool.catalog.setDiskState(diskId, 'draining');
    pool.refreshMember(diskId);
  }
  // Garbage on this disk needs no move; delete (or, on a failed disk, drop) it first.
  await collectGarbage(pool);
  const total = pool.catalog.countFragmentsOnDisk(diskId);
  let moved = 0;
  let rebuilt = 0;
  const failures = new Map<string, string>();
  for (;;) {
    const batch = pool.catalog
      .fragmentsToMove(diskId, DRAIN_BATCH_COUNT)
      .filter((move) => !failures.has(fragmentName(move)));
    if (batch.length === 0) break;
    await forEachBounded(batch, DRAIN_MOVES_IN_FLIGHT_MAX, async (move) => {
      try {
        const how = await moveFragment(pool, move);
        if (how === 'copied') moved += 1;
        else rebuilt += 1;
        onProgress({ moved, rebuilt, total });
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
        failures.set(fragmentName(move), `${error.code}: ${error.message}`);
      }
    });
  }
  const remaining = pool.catalog.countFragmentsOnDisk(diskId);
  if (remaining > 0) {
    const [firstFailure] = failures.values();
    throw new ShardpoolError(
      'DRAIN_INCOMPLETE',
      `disk ${diskId} (${member.row.path}) still holds ${remaining} fragments that could not be moved ` +
        `(first failure: ${firstFailure ?? 'none recorded'}); it stays in state draining — fix the cause and rerun`,
      { diskId, remaining, failedFragments: failures.size },
    );
  }
  const disk = pool.member(diskId).disk;
  if (disk && member.row.state !== 'failed') await disk.release().catch(() => undefined);
  await disk?.close();
  pool.catalog.deleteDisk(diskId);
  pool.refreshMember(diskId);
  return { disk: member.row, moved, rebuilt };
}

/**
 * Every fragment of an extent needs its own disk, so draining is only possible while enough other healthy disks
 * remain. Checked before the disk is marked draining, so a refused drain changes nothing.
 */
function assertEnoughTargets(pool: Pool, disk: DiskRow): void {
  const widest = pool.catalog.widestExtentOnDisk(disk.id);
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

async function moveFragment(pool: Pool, move: FragmentToMove): Promise<'copied' | 'rebuilt'> {
  const { object, extent, fragment } = move;
  const codec = createCodec(parsePolicy(object.policy));
  const source = pool.readableDisk(fragment.diskId);
  let data: Buffer | undefined;
  if (source) {
    data = await source
      .readFragment(fragment)
      .then((read) => read.data)
      .catch(() => undefined);
  }
  const how = data ? 'copied' : 'rebuilt';
  if (!data) {
    const stats: ReadStats = { extentsRead: 0, extentsDegraded: 0, fragmentFailures: [] };
    const gathered = await gatherFragments(pool, object, extent, codec, stats, new Set([fragment.fragmentIndex]));
    const rebuiltFragments = await codec.reconstruct(gathered.fragments, extent.lengthBytes, [fragment.fragmentIndex]);
    data = rebuiltFragments.get(fragment.fragmentIndex);
    assert(data !== undefined, 'reconstruct returns the fragment it was asked for');
  }
  const storedBytes = fragmentHeaderLengthBytes(object.key) + data.length;
  const extentDisks = new Set(extent.fragments.map((other) => other.diskId));
  const candidates = [];
  for (const member of pool.writableMembers()) {
    if (extentDisks.has(member.row.id)) continue;
    const space = await member.disk!.space().catch(() => undefined);
    if (space && space.freeBytes >= storedBytes) candidates.push({ diskId: member.row.id, freeBytes: space.freeBytes });
  }
  if (candidates.length === 0) {
    throw new ShardpoolError(
      'DISK_FULL',
      `no healthy disk without a fragment of extent ${extent.extentIndex} of ${JSON.stringify(object.key)} has ` +
        `${storedBytes} bytes free for it`,
      { key: object.key, extentIndex: extent.extentIndex },
    );
  }
  const [targetId] = chooseDisks(candidates, 1);
  assert(targetId !== undefined, 'chooseDisks returns one disk or throws');
  const target = pool.member(targetId).disk;
  assert(target !== undefined, 'targets are writable members');
  const address = { versionId: fragment.versionId, extentIndex: fragment.extentIndex, fragmentIndex: fragment.fragmentIndex };
  pool.catalog.beginMove(fragment, targetId);
  const { locationBytes } = await target.writeFragment(
    {
      versionId: object.versionId,
      key: object.key,
      policy: codec.policy,
      extentIndex: extent.extentIndex,
      extentLengthBytes: extent.lengthBytes,
      extentChecksum: extent.checksum,
      fragmentIndex: fragment.fragmentIndex,
      dataLengthBytes: data.length,
      dataChecksum: checksum128(data),
    },
    data,
  );
  await target.flush();
  killPoint('drain.fragment-copied');
  const repointed = pool.catalog.moveFragment(fragment, { diskId: fragment.diskId }, { diskId: targetId, storedBytes, locationBytes });
  assert(repointed, 'nothing else changes the pool while we hold its lock');
  target.settle([address]);
  killPoint('drain.fragment-moved');
  await finishMove(pool, { ...address, sourceDiskId: fragment.diskId, targetDiskId: targetId, sourceLocationBytes: fragment.locationBytes });
  return how;
}

function fragmentName(move: FragmentToMove): string {
  return `${move.fragment.versionId}.${move.fragment.extentIndex}.${move.fragment.fragmentIndex}`;
}
