// Deleting fragments that no committed object needs any more. Two sources:
// - garbage versions: overwritten or removed objects, queued by the catalog transaction that replaced them;
// - interrupted puts: an intent row whose process is gone (we hold the pool lock, so it is not running).
// Both run before any change when a pool is opened for writing, so a crash at any point only delays cleanup.
// Fragment rows are dropped only after the file deletions were flushed: a crash in between leaves a row whose file is
// already gone, which the next collection deletes again harmlessly (deletes are idempotent).
import { assert } from '../assert.js';
import { isShardpoolError } from '../errors.js';
import type { Disk, FragmentAddress, FragmentLocation } from '../disk/disk.js';
import type { FragmentRow } from './catalog/catalog.js';
import { forEachBounded } from './concurrency.js';
import { killPoint } from './kill-points.js';
import type { Pool } from './pool.js';

const GC_DELETES_IN_FLIGHT = 16;

/**
 * Deletes a garbage version's fragments from every disk that can be reached; unreachable ones wait for later.
 * Only Pool.collectVersion calls this: it makes the collection single-flight, so this collector is the only one that
 * frees the version's fragments (the owner rule in docs/architecture.md § concurrency).
 */
export async function collectGarbageVersion(pool: Pool, versionId: string): Promise<boolean> {
  // Pool.collectVersion starts no collection of a pinned version, and no pin is taken on a garbage one (pins go only to
  // versions read as current), so nothing reads this version while it is deleted.
  assert(!pool.isVersionPinned(versionId), 'a pinned version is never collected');
  if (!(await pool.catalog.isGarbage(versionId))) return false; // collected already (or never garbage)
  // A removal marker outlives the key's older versions: its manifest copies hide them on the disks until then.
  if (await pool.catalog.garbageWaits(versionId)) return false;
  const deleted: FragmentRow[] = [];
  const flushDisks = new Set<number>();
  // Several at once: a device reads each record's header before freeing its units, and one at a time those reads
  // doubled the time of a put that overwrote a large object.
  await forEachBounded(await pool.catalog.fragmentsOfVersion(versionId), GC_DELETES_IN_FLIGHT, async (fragment) => {
    const member = pool.member(fragment.diskId);
    if (member.row.state === 'failed' || (member.row.state === 'draining' && !member.disk)) {
      // A failed disk is never written again, and an unreachable disk being drained is about to be forgotten:
      // either way its copy is gone as far as the pool is concerned.
      deleted.push(fragment);
      return;
    }
    if (!member.disk) return;
    try {
      await member.disk.deleteFragment(fragment);
      killPoint('gc.fragment-deleted');
      deleted.push(fragment);
      flushDisks.add(fragment.diskId);
    } catch (error) {
      if (!isShardpoolError(error)) throw error;
      // Left for the next collection; the object is already invisible, so nothing is lost by waiting.
    }
  });
  await Promise.all([...flushDisks].map((diskId) => pool.member(diskId).disk?.flush()));
  await pool.catalog.deleteFragmentRows(deleted);
  const key = await pool.catalog.garbageKey(versionId);
  const finished = await pool.catalog.finishGarbage(versionId);
  if (finished) {
    killPoint('gc.version-finished');
    // Removal markers of the key that waited for this version may go now (each checks again what it waits for).
    // Read after the version is gone: a marker committed meanwhile either sees it gone or is listed here.
    if (key !== undefined) {
      for (const marker of await pool.catalog.removalMarkersOf(key)) if (marker !== versionId) await pool.collectVersion(marker);
    }
  }
  return finished;
}

/**
 * Finishes drains that were interrupted: each recorded move leaves one copy too many. While the catalog still names
 * the source, the copy on the target is the unreferenced one; once it names the target, the source's is.
 */
export async function cleanUpInterruptedMoves(pool: Pool): Promise<void> {
  for (const move of await pool.catalog.listMoves()) await finishMove(pool, move);
}

/**
 * Deletes the copy of a moved fragment that the catalog does not reference, then drops the move record. The move
 * committed when the catalog row names the target (and, for a move within one disk, no longer the old location).
 * A move within a directory disk replaced the file itself: there is no second copy to delete.
 */
export async function finishMove(
  pool: Pool,
  move: FragmentAddress & { sourceDiskId: number; targetDiskId: number; sourceLocationBytes: number },
): Promise<void> {
  const row = await pool.catalog.fragmentRow(move);
  const sameDisk = move.sourceDiskId === move.targetDiskId;
  const committed = row !== undefined && row.diskId === move.targetDiskId && (!sameDisk || row.locationBytes !== move.sourceLocationBytes);
  const holderId = committed ? move.sourceDiskId : move.targetDiskId;
  const holder = pool.listMembers().find((member) => member.row.id === holderId);
  if (sameDisk && holder?.row.kind === 'directory') {
    await pool.catalog.dropMove(move);
    return;
  }
  if (holder?.disk) {
    try {
      // The old copy's location is known; a new copy that was never committed is still a pending allocation on its
      // device, found by its address.
      await holder.disk.deleteFragment(committed ? { ...move, locationBytes: move.sourceLocationBytes } : move);
      await holder.disk.flush();
    } catch (error) {
      if (!isShardpoolError(error)) throw error;
      return; // retried at the next write-open
    }
  } else if (holder && holder.row.state !== 'failed') {
    return; // unreachable for now: keep the record so the copy is deleted once the disk is back
  }
  await pool.catalog.inBatch((tx) => tx.dropMove(move));
}

/**
 * After a crash, a block device may hold allocations the catalog never came to reference: a put whose intent was
 * already cleaned, a drain copy, a commit that did not happen. Each pending allocation is settled when the catalog
 * references exactly it, left to the intent and move cleanups when those own it, and freed otherwise.
 */
export async function reconcilePendingAllocations(pool: Pool): Promise<void> {
  const movingTargets = new Set((await pool.catalog.listMoves()).map((move) => `${move.targetDiskId}:${move.versionId}.${move.extentIndex}.${move.fragmentIndex}`));
  // Looked up together (one catalog read, not one per allocation): a device opens with every allocation journaled
  // since its last checkpoint pending, most of them long committed.
  const intents = new Set((await pool.catalog.listIntents()).map((intent) => intent.versionId));
  const members = pool.listMembers().filter((member) => member.disk !== undefined && member.row.state !== 'failed');
  const allocationsOf = members.map((member) => (member.disk as Disk).pendingAllocations());
  const rows = await pool.catalog.fragmentRows(allocationsOf.flat());
  let looked = 0;
  for (const [memberIndex, member] of members.entries()) {
    const disk = member.disk as Disk;
    const allocations = allocationsOf[memberIndex] as FragmentLocation[];
    let freed = 0;
    for (const allocation of allocations) {
      const row = rows[looked];
      looked += 1;
      if (row && row.diskId === member.row.id && row.locationBytes === allocation.locationBytes) {
        disk.settle([allocation]);
      } else if (intents.has(allocation.versionId)) {
        continue; // its put's cleanup deletes it
      } else if (movingTargets.has(`${member.row.id}:${allocation.versionId}.${allocation.extentIndex}.${allocation.fragmentIndex}`)) {
        continue; // its drain's cleanup decides
      } else {
        await disk.deleteFragment({ versionId: allocation.versionId, extentIndex: allocation.extentIndex, fragmentIndex: allocation.fragmentIndex });
        freed += 1;
      }
    }
    if (freed > 0) await disk.flush();
  }
}

/** Deletes the fragments of puts that recorded an intent but never committed. */
export async function cleanUpInterruptedPuts(pool: Pool): Promise<void> {
  for (const intent of await pool.catalog.listIntents()) await abandonVersion(pool, intent.versionId);
}

/**
 * Deletes every fragment of an uncommitted version from every reachable disk and, when no live disk was out of
 * reach, drops its intent. Fragments a large put recorded under its intent are deleted by their catalog location
 * first, and their rows dropped once those deletes are durable; the rest (never recorded) are found by the disks
 * themselves (pending allocations, file names). A version with an unreachable disk keeps its intent (and rows) so
 * the cleanup is retried later.
 */
export async function abandonVersion(pool: Pool, versionId: string): Promise<void> {
  let complete = true;
  const recorded = await pool.catalog.fragmentsOfVersion(versionId);
  const flushDisks = new Set<number>();
  await forEachBounded(recorded, GC_DELETES_IN_FLIGHT, async (fragment) => {
    const member = pool.member(fragment.diskId);
    if (member.row.state === 'failed') return;
    if (!member.disk) {
      complete = false;
      return;
    }
    try {
      await member.disk.deleteFragment(fragment);
      flushDisks.add(fragment.diskId);
    } catch (error) {
      if (!isShardpoolError(error)) throw error;
      complete = false;
    }
  });
  for (const member of pool.listMembers()) {
    if (member.row.state === 'failed') continue;
    if (!member.disk) {
      complete = false;
      continue;
    }
    try {
      await member.disk.deleteVersion(versionId);
      await member.disk.flush();
      flushDisks.delete(member.row.id);
    } catch (error) {
      if (!isShardpoolError(error)) throw error;
      complete = false;
    }
  }
  if (!complete) return;
  assert(flushDisks.size === 0, 'every disk a recorded fragment was deleted from has been flushed');
  if (recorded.length > 0) await pool.catalog.dropIntentRows(versionId);
  await pool.catalog.dropIntent(versionId);
}
