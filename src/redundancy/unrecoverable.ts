import { ShardpoolError } from '../errors.js';
import { formatPolicy, type Policy } from './policy.js';

/** Too few intact fragments to rebuild an extent. The pool adds the object and extent to the message. */
export function unrecoverable(policy: Policy, presentCount: number, neededCount: number): ShardpoolError {
  return new ShardpoolError(
    'EXTENT_UNRECOVERABLE',
    `only ${presentCount} intact fragments, ${formatPolicy(policy)} needs ${neededCount}`,
    { policy: formatPolicy(policy), presentCount, neededCount },
  );
}
