// Placement: which disks receive the fragments of one extent. Every fragment of an extent goes to a distinct disk,
// and disks are chosen at random weighted by their free space, so that fuller disks fill more slowly and the pool
// stays balanced without a global rebalance.
import { assert } from '../assert.js';
import { ShardpoolError } from '../errors.js';

export interface PlacementCandidate {
  readonly diskId: number;
  readonly freeBytes: number;
}

export type RandomSource = () => number;

/**
 * Picks `count` distinct disks, weighted by free bytes (Efraimidis–Spirakis weighted sampling without replacement:
 * each candidate draws u^(1/w) and the largest keys win). Disks without free space are never picked.
 */
export function chooseDisks(
  candidates: ReadonlyArray<PlacementCandidate>,
  count: number,
  random: RandomSource = Math.random,
): number[] {
  assert(Number.isInteger(count) && count >= 1, 'a placement asks for at least one disk');
  const usable = candidates.filter((candidate) => candidate.freeBytes > 0);
  if (usable.length < count) {
    throw new ShardpoolError(
      'POLICY_NEEDS_MORE_DISKS',
      `the policy needs ${count} healthy disks with free space for each extent, but only ${usable.length} are available`,
      { needed: count, available: usable.length },
    );
  }
  const keyed = usable.map((candidate) => ({
    diskId: candidate.diskId,
    key: Math.log(Math.max(random(), Number.MIN_VALUE)) / candidate.freeBytes,
  }));
  keyed.sort((a, b) => b.key - a.key);
  const chosen = keyed.slice(0, count).map((entry) => entry.diskId);
  assert(new Set(chosen).size === count, 'fragments of one extent land on distinct disks');
  return chosen;
}
