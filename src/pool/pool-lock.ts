// The pool lock: one process at a time may change a pool. It is an flock on <pool>/pool.lock, so the kernel
// releases it when the holder exits or is killed — a crash never leaves a stale lock behind. Readers (get, ls,
// stat, status) take no lock: SQLite's WAL gives them a consistent snapshot and fragments are never rewritten.
import * as path from 'node:path';
import { POOL_LOCK_POLL_INTERVAL_MS } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { openLockFile } from '../io/durable-files.js';
import { lockFile } from '../io/file-lock.js';

export const POOL_LOCK_FILE_NAME = 'pool.lock';

export class PoolLock {
  private constructor(private readonly release: () => Promise<void>) {}

  /** Waits up to `waitMs` for the lock, polling; then fails with POOL_BUSY. */
  static async acquire(poolDirectory: string, waitMs: number): Promise<PoolLock> {
    const handle = await openLockFile(path.join(poolDirectory, POOL_LOCK_FILE_NAME));
    const deadline = Date.now() + waitMs;
    try {
      for (;;) {
        if (await lockFile(handle.fd, 'exclusive')) return new PoolLock(() => handle.close());
        if (Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, POOL_LOCK_POLL_INTERVAL_MS));
      }
    } catch (error) {
      await handle.close();
      throw error;
    }
    await handle.close();
    throw new ShardpoolError(
      'POOL_BUSY',
      `pool ${poolDirectory} is busy: another shardpool process is changing it (waited ${Math.round(waitMs / 1000)} s; ` +
        'raise --wait to wait longer)',
      { pool: poolDirectory },
    );
  }

  /** Closing the file releases the flock. */
  async unlock(): Promise<void> {
    await this.release();
  }
}
