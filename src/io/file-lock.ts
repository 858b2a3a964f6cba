// Advisory whole-file locks (flock). The kernel drops them when the holder's file is closed or its process dies,
// so a crash never leaves a stale lock behind. Non-blocking: callers poll, so they can give up after a deadline.
import { nativeIo } from './native.js';

/** Tries to take the lock; true when acquired, false when another open file holds a conflicting lock. */
export async function lockFile(fd: number, mode: 'shared' | 'exclusive'): Promise<boolean> {
  return nativeIo().flock(fd, mode === 'shared' ? 1 : 2, true);
}

export async function unlockFile(fd: number): Promise<void> {
  await nativeIo().flock(fd, 0, false);
}
