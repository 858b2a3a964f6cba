// Invariant checks for programmer errors. An operating error (bad input, bad disk) is a ShardpoolError instead;
// a failed assert means shardpool itself is wrong, so it crashes loudly rather than writing on.

export class AssertionFailure extends Error {
  override readonly name = 'AssertionFailure';
}

export function assert(condition: unknown, invariant: string): asserts condition {
  if (!condition) throw new AssertionFailure(`invariant violated: ${invariant}`);
}
