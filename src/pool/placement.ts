// Placement: which disks receive the fragments of one extent. Every fragment of an extent goes to a distinct disk,
// and disks are chosen at random weighted by their free space, so that fuller disks fill more slowly and the pool
// stays balanced without a global rebalance.
import { assert } from '../assert.js';
import { ShardpoolError } from '../errors.js';

export interface PlacementCandidate {
  readonly diskId: number;
  readonly freeBytes: number;
  /** The failure domain the disk is in (its node, in a pool across hosts placed by node); undefined: its own. */
  readonly domain?: string | undefined;
}

export type RandomSource = () => number;

/** How many fragments of one extent a failure domain may hold, and how many it holds already (a replacement's). */
export interface DomainLimit {
  readonly maxPerDomain: number;
  readonly alreadyPerDomain?: ReadonlyMap<string, number>;
}

/**
 * Picks `count` distinct disks, weighted by free bytes (Efraimidis–Spirakis weighted sampling without replacement:
 * each candidate draws u^(1/w) and the largest keys win). Disks without free space are never picked. With a domain
 * limit, no failure domain gets more than `maxPerDomain` of the extent's fragments: the draw goes down the keys and
 * passes over a disk whose domain is full, which finds a placement whenever one exists (a domain can only take
 * min(limit, its disks), and that many are taken before any is passed over).
 */
export function chooseDisks(
  candidates: ReadonlyArray<PlacementCandidate>,
  count: number,
  random: RandomSource = Math.random,
  limit?: DomainLimit,
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
    domain: candidate.domain,
    key: Math.log(Math.max(random(), Number.MIN_VALUE)) / candidate.freeBytes,
  }));
  keyed.sort((a, b) => b.key - a.key);
  if (limit === undefined) {
    const chosen = keyed.slice(0, count).map((entry) => entry.diskId);
    assert(new Set(chosen).size === count, 'fragments of one extent land on distinct disks');
    return chosen;
  }
  assert(limit.maxPerDomain >= 1, 'a failure domain may hold at least one fragment of an extent');
  const held = new Map(limit.alreadyPerDomain ?? []);
  const chosen: number[] = [];
  for (const entry of keyed) {
    if (chosen.length === count) break;
    if (entry.domain !== undefined) {
      const inDomain = held.get(entry.domain) ?? 0;
      if (inDomain >= limit.maxPerDomain) continue;
      held.set(entry.domain, inDomain + 1);
    }
    chosen.push(entry.diskId);
  }
  if (chosen.length < count) {
    const domains = [...new Set(usable.map((candidate) => candidate.domain ?? `disk ${candidate.diskId}`))].sort();
    throw new ShardpoolError(
      'POLICY_NEEDS_MORE_DOMAINS',
      `the policy needs ${count} fragments per extent with at most ${limit.maxPerDomain} in one failure domain, ` +
        `but the domains with free disks (${domains.join(', ')}) can take only ${chosen.length}`,
      { needed: count, placeable: chosen.length, maxPerDomain: limit.maxPerDomain, domains: domains.join(",") },
    );
  }
  for (const [domain, inDomain] of held) assert(inDomain <= limit.maxPerDomain, `failure domain ${domain} holds no more than its share`);
  assert(new Set(chosen).size === count, 'fragments of one extent land on distinct disks');
  return chosen;
}

/**
 * The most fragments of one extent a failure domain may hold: losing the domain must leave enough to read the
 * extent (fragmentCount − fragmentsNeeded; a single copy has no redundancy to spread, so 1).
 */
export function fragmentsPerDomainMax(fragmentCount: number, fragmentsNeeded: number): number {
  return Math.max(1, fragmentCount - fragmentsNeeded);
}
