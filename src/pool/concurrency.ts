// Small concurrency tools for bounded parallelism: a counting semaphore and a bounded parallel map.
import { assert } from '../assert.js';

export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(permits: number) {
    assert(Number.isInteger(permits) && permits >= 1, 'a semaphore has at least one permit');
    this.available = permits;
  }

  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available += 1;
  }
}

/** Runs `work` on every item with at most `limit` running at once; rejects with the first failure after all settle. */
export async function forEachBounded<T>(
  items: Iterable<T>,
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const iterator = items[Symbol.iterator]();
  let firstError: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) {
      if (firstError) return;
      try {
        await work(next.value);
      } catch (error) {
        firstError ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  if (firstError) throw firstError.error;
}

/** True when `test` holds for every item, tested one after another (stops at the first that fails). */
export async function everyAsync<T>(items: Iterable<T>, test: (item: T) => Promise<boolean>): Promise<boolean> {
  for (const item of items) if (!(await test(item))) return false;
  return true;
}
