// The pool lock: one process at a time may change a pool. It is an flock on <pool>/pool.lock, so the kernel
// releases it when the holder exits or is killed — a crash never leaves a stale lock behind. Readers (get, ls,
// stat, status) take no lock: SQLite's WAL gives them a consistent snapshot and fragments are never rewritten.
import * as path from 'node:path';
import { POOL_LOCK_POLL_INTERVAL_MS } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { openLockFile } from '../io/durable-files.js';

export const POOL_LOCK_FILE_NAME = 'pool.lock';

export class PoolLock {
  private constructor(private readonly release: () => Promise<void>) {}

  /** Waits up to `waitMs` for the lock, polling; then fails with POOL_BUSY. */
  static async acquire(poolDirectory: string, waitMs: number): Promise<PoolLock> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const lock = await PoolLock.tryAcquire(poolDirectory);
      if (lock) return lock;
      if (Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, POOL_LOCK_POLL_INTERVAL_MS));
    }
    throw PoolLock.busy(poolDirectory, waitMs);
  }

  /** The lock if no other process holds it now, else undefined (no waiting). */
  static async tryAcquire(poolDirectory: string): Promise<PoolLock | undefined> {
    const handle = await openLockFile(path.join(poolDirectory, POOL_LOCK_FILE_NAME));
    try {
      const { lockFile } = await import('../io/file-lock.js'); // native code: loaded by writers only
      if (await lockFile(handle.fd, 'exclusive')) return new PoolLock(() => handle.close());
    } catch (error) {
      await handle.close();
      throw error;
    }
    await handle.close();
    return undefined;
  }

  /** POOL_BUSY after waiting `waitMs` for the lock in vain. */
  static busy(poolDirectory: string, waitMs: number): ShardpoolError {
    return new ShardpoolError(
      'POOL_BUSY',
      `pool ${poolDirectory} is busy: another shardpool process is changing it (waited ${Math.round(waitMs / 1000)} s; ` +
        'raise --wait to wait longer)',
      { pool: poolDirectory },
    );
  }

  private released = false;

  /** Closing the file releases the flock (once: a second unlock does nothing). */
  async unlock(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.release();
  }
}
