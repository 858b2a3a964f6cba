// The torture test's checker: a pure function of the history. Each key is a register. An operation is in flight from
// its start to its end (client-side times, so they bracket whatever the daemon did); a write that failed may have
// been applied, so it stays in flight forever. For a read (or a copy's read of its source) over [start, end]:
//
//   candidate writes = every write W of the key with W.start <= read.end, except those superseded before the read
//                      began: W is excluded when some write W2 of the key has W2.end < read.start and
//                      W2.start > W.end (W2 ran entirely after W and completed before the read began);
//                      the key's initial state (absent) is a write that ended at -infinity.
//   the read is legal when what it saw equals one of the candidates' values: the same bytes for the same range of an
//   object of the same size (a torn mix or a stale value matches none), or absent when a candidate deleted the key.
//
// Values: PUT its body; DELETE absent; CompleteMultipartUpload the concatenation of the parts it named; CopyObject
// any present value its source could have had over the copy's interval (by the same rule). Copies only go from a key
// to a later key in the key order, so resolving a copy's values never loops.
import { ABSENT, nameOf, ValueMatcher, type Observation, type Value } from './values.js';

interface Timed {
  /** Which client ran it ("s3-3", "cli-0", "maintenance", "final"). */
  readonly client: string;
  readonly key: string;
  /** Milliseconds on one monotonic clock (performance.now()). */
  readonly startMs: number;
  readonly endMs: number;
  /** What the client was told, for the report ("200", "404 NoSuchKey", "exit 2 DISK_IO_FAILED …"). */
  readonly outcome: string;
}

export type HistoryOp =
  | (Timed & { readonly kind: 'put' | 'complete'; readonly ok: boolean; readonly writeId: number; readonly value: Value })
  | (Timed & { readonly kind: 'delete'; readonly ok: boolean; readonly writeId: number })
  | (Timed & { readonly kind: 'copy'; readonly ok: boolean; readonly writeId: number; readonly sourceKey: string; readonly sourceMissing: boolean })
  | (Timed & { readonly kind: 'get'; readonly observation: Observation })
  /** A read that failed with something other than "no such key": an acknowledged object could not be read. */
  | (Timed & { readonly kind: 'read-failed'; readonly detail: string });

export interface Violation {
  readonly key: string;
  readonly op: HistoryOp;
  readonly problem: string;
  /** The values the op was allowed to see, by name. */
  readonly allowed: ReadonlyArray<string>;
}

export interface CheckResult {
  readonly violations: Violation[];
  readonly readsChecked: number;
  readonly writesSeen: number;
}

interface Write {
  readonly op: HistoryOp & { writeId: number };
  readonly startMs: number;
  /** Infinity when the write failed: it may have been applied at any time after it started. */
  readonly endMs: number;
}

/** Checks every read of the history against the register rule; `finalReads` are reads made after all load ended. */
export function checkHistory(history: ReadonlyArray<HistoryOp>): CheckResult {
  const writesByKey = new Map<string, Write[]>();
  for (const op of history) {
    if (op.kind === 'get' || op.kind === 'read-failed') continue;
    // A copy that found no source wrote nothing (the daemon answers NoSuchKey before it starts a put).
    if (op.kind === 'copy' && op.sourceMissing) continue;
    const writes = writesByKey.get(op.key) ?? [];
    writes.push({ op, startMs: op.startMs, endMs: op.ok ? op.endMs : Infinity });
    writesByKey.set(op.key, writes);
  }
  const registers = new Map<string, Register>();
  const matcher = new ValueMatcher();
  const registerOf = (key: string): Register => {
    let register = registers.get(key);
    if (!register) {
      register = new Register(writesByKey.get(key) ?? [], (copy) => copyValues(copy));
      registers.set(key, register);
    }
    return register;
  };
  const copyValueCache = new Map<number, Value[]>();
  const copyValues = (copy: HistoryOp & { kind: 'copy' }): Value[] => {
    const cached = copyValueCache.get(copy.writeId);
    if (cached) return cached;
    if (copy.sourceKey >= copy.key) throw new Error(`copy ${copy.writeId} goes from ${copy.sourceKey} to an earlier key ${copy.key}`);
    const values = registerOf(copy.sourceKey)
      .allowedValues(copy.startMs, copy.endMs)
      .filter((value) => !value.absent);
    copyValueCache.set(copy.writeId, values);
    return values;
  };

  const violations: Violation[] = [];
  let readsChecked = 0;
  for (const op of history) {
    if (op.kind === 'read-failed') {
      violations.push({ key: op.key, op, problem: `the read failed: ${op.detail}`, allowed: [] });
      continue;
    }
    if (op.kind === 'get' || (op.kind === 'copy' && op.sourceMissing)) {
      const key = op.kind === 'copy' ? op.sourceKey : op.key;
      const observation: Observation = op.kind === 'copy' ? ABSENT : op.observation;
      const allowed = registerOf(key).allowedValues(op.startMs, op.endMs);
      readsChecked += 1;
      if (!allowed.some((value) => matcher.matches(value, observation))) {
        violations.push({ key, op, problem: describeMismatch(observation), allowed: allowed.map(nameOf) });
      }
      continue;
    }
    if (op.kind === 'copy' && op.ok && copyValues(op).length === 0) {
      violations.push({ key: op.key, op, problem: `the copy succeeded, but its source ${op.sourceKey} was absent throughout it`, allowed: ['absent'] });
    }
  }
  return { violations, readsChecked, writesSeen: [...writesByKey.values()].reduce((sum, writes) => sum + writes.length, 0) };
}

function describeMismatch(observation: Observation): string {
  if (observation.absent) return 'the read found no object, but every allowed value is present';
  if ('rangeNotSatisfiable' in observation) return `416: the object is at most ${observation.sizeBytesAtMost} bytes, but no allowed value is`;
  const ids = observation.writeIdsSeen.length === 0 ? 'no block header' : `block headers of w${observation.writeIdsSeen.join(', w')}`;
  const range = `bytes ${observation.startByte}-${observation.endByteExclusive} of ${observation.objectSizeBytes}`;
  const torn = observation.writeIdsSeen.length > 1 ? ' (a torn mix of writes?)' : '';
  return `the read returned ${range} carrying ${ids}${torn}, which matches no allowed value`;
}

/** One key's writes, answering "which values may a read over [start, end] see?". */
class Register {
  /** Writes sorted by end, with the latest start among each prefix: the supersession test in O(log n). */
  private readonly byEnd: Write[];
  private readonly maxStartUpTo: number[];

  constructor(
    private readonly writes: ReadonlyArray<Write>,
    private readonly copyValues: (copy: HistoryOp & { kind: 'copy' }) => Value[],
  ) {
    this.byEnd = [...writes].sort((a, b) => a.endMs - b.endMs);
    let maxStart = -Infinity;
    this.maxStartUpTo = this.byEnd.map((write) => (maxStart = Math.max(maxStart, write.startMs)));
  }

  allowedValues(readStartMs: number, readEndMs: number): Value[] {
    // The latest start of a write that completed before the read began: every write that ended before it is stale.
    const supersededBeforeMs = this.latestStartCompletedBefore(readStartMs);
    const values = new Map<string, Value>();
    if (supersededBeforeMs === -Infinity) values.set('absent', ABSENT);
    for (const write of this.writes) {
      if (write.startMs > readEndMs) continue;
      if (write.endMs < supersededBeforeMs) continue;
      for (const value of this.valuesOf(write)) values.set(nameOf(value), value);
    }
    return [...values.values()];
  }

  private latestStartCompletedBefore(timeMs: number): number {
    let low = 0;
    let high = this.byEnd.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.byEnd[middle] as Write).endMs < timeMs) low = middle + 1;
      else high = middle;
    }
    return low === 0 ? -Infinity : (this.maxStartUpTo[low - 1] as number);
  }

  private valuesOf(write: Write): Value[] {
    const op = write.op;
    if (op.kind === 'put' || op.kind === 'complete') return [op.value];
    if (op.kind === 'delete') return [ABSENT];
    if (op.kind === 'copy') return this.copyValues(op);
    return [];
  }
}
