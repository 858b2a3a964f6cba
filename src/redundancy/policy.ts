// Redundancy policies: `replica:N` (N full copies) and `ec:K+M` (Reed–Solomon, K data + M parity fragments).
// The textual form is what users type and what the catalog stores; parsePolicy is its only reader.
import {
  EC_DATA_FRAGMENTS_MAX_COUNT,
  EC_PARITY_FRAGMENTS_MAX_COUNT,
  REPLICA_COUNT_MAX,
} from '../constants.js';
import { ShardpoolError } from '../errors.js';

export type Policy =
  | { readonly kind: 'replica'; readonly copies: number }
  | { readonly kind: 'ec'; readonly dataFragments: number; readonly parityFragments: number };

export const DEFAULT_POLICY_TEXT = 'ec:4+2';

/** Total fragments one extent is stored as; each lands on a distinct disk. */
export function fragmentCount(policy: Policy): number {
  return policy.kind === 'replica' ? policy.copies : policy.dataFragments + policy.parityFragments;
}

/** How many intact fragments are needed to read an extent back. */
export function fragmentsNeeded(policy: Policy): number {
  return policy.kind === 'replica' ? 1 : policy.dataFragments;
}

/** How many fragments of one extent may be lost without losing the extent. */
export function faultTolerance(policy: Policy): number {
  return fragmentCount(policy) - fragmentsNeeded(policy);
}

export function formatPolicy(policy: Policy): string {
  return policy.kind === 'replica'
    ? `replica:${policy.copies}`
    : `ec:${policy.dataFragments}+${policy.parityFragments}`;
}

export function parsePolicy(text: string): Policy {
  const replica = /^replica:(\d{1,3})$/.exec(text);
  if (replica) {
    const copies = Number(replica[1]);
    if (copies < 1 || copies > REPLICA_COUNT_MAX) {
      throw invalid(text, `replica count must be 1 to ${REPLICA_COUNT_MAX}`);
    }
    return { kind: 'replica', copies };
  }
  const ec = /^ec:(\d{1,3})\+(\d{1,3})$/.exec(text);
  if (ec) {
    const dataFragments = Number(ec[1]);
    const parityFragments = Number(ec[2]);
    if (dataFragments < 1 || dataFragments > EC_DATA_FRAGMENTS_MAX_COUNT) {
      throw invalid(text, `K (data fragments) must be 1 to ${EC_DATA_FRAGMENTS_MAX_COUNT}`);
    }
    if (parityFragments < 1 || parityFragments > EC_PARITY_FRAGMENTS_MAX_COUNT) {
      throw invalid(text, `M (parity fragments) must be 1 to ${EC_PARITY_FRAGMENTS_MAX_COUNT}`);
    }
    return { kind: 'ec', dataFragments, parityFragments };
  }
  throw invalid(text, 'expected replica:N or ec:K+M, e.g. ec:4+2');
}

function invalid(text: string, why: string): ShardpoolError {
  return new ShardpoolError('POLICY_INVALID', `invalid redundancy policy "${text}": ${why}`, { policy: text });
}
