// Who is using a member disk right now. The pool wraps each member in a Proxy (like metered-disk.ts, so `instanceof`
// still works) that counts the calls in flight — an async iteration counts until it ends — so a disk taken out of the
// pool (a finished drain) is closed only after the last reader, scrub or collection that looked it up has finished
// with it. From the moment it is retired, new calls are refused with DISK_OFFLINE, which every caller already handles
// as an unavailable disk (a read rebuilds from redundancy, a scrub sees the fragment moved), never with an invariant.
import { ShardpoolError } from '../errors.js';
import type { Disk } from './disk.js';

export interface TrackedDisk<D extends Disk> {
  /** The disk to hand out: every call through it is counted. */
  readonly disk: D;
  /** Refuses new calls, waits for those in flight, and returns the disk itself for its last calls (release, close). */
  retire(why: string): Promise<D>;
}

export function trackDiskUse<D extends Disk>(target: D): TrackedDisk<D> {
  let inFlight = 0;
  let retired: string | undefined;
  let idle: Array<() => void> = [];
  const begin = (): void => {
    if (retired !== undefined) throw new ShardpoolError('DISK_OFFLINE', `disk ${target.path} ${retired}`, { disk: target.path });
    inFlight += 1;
  };
  const end = (): void => {
    inFlight -= 1;
    if (inFlight === 0) for (const resume of idle.splice(0)) resume();
  };
  const disk = new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      const isAsync = (value as { constructor?: { name?: string } }).constructor?.name === 'AsyncFunction';
      return (...args: unknown[]) => {
        try {
          begin();
        } catch (error) {
          if (isAsync) return Promise.reject(error); // refused the way the method fails: `.catch()` on it still works
          throw error;
        }
        let result: unknown;
        try {
          result = (value as (...args: unknown[]) => unknown).apply(object, args);
        } catch (error) {
          end();
          throw error;
        }
        if (result instanceof Promise) return result.finally(end);
        end();
        // A scan counts while it is iterated (from its first step to its end), not while it merely exists.
        if (isAsyncIterable(result)) return countedIteration(result, begin, end);
        return result;
      };
    },
  });
  return {
    disk,
    async retire(why: string): Promise<D> {
      retired = why;
      while (inFlight > 0) await new Promise<void>((resolve) => idle.push(resolve));
      idle = [];
      return target;
    },
  };
}

async function* countedIteration<T>(iterable: AsyncIterable<T>, begin: () => void, end: () => void): AsyncGenerator<T> {
  begin();
  try {
    yield* iterable;
  } finally {
    end();
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}
