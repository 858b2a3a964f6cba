// Page-aligned buffers lent out and taken back, for the data path's records. Allocating a fresh aligned buffer for
// every fragment read or written costs more than the I/O itself at disk speed: each one is new memory from
// posix_memalign, so the kernel faults in and zeroes every page on first touch, and the buffers die only when the
// garbage collector runs their finalizers (measured on this machine: 0.4–1.5 GB/s to allocate and fill 260 KiB
// records, against 100+ GB/s refilling a reused one). Buffers here are reused, so their pages stay mapped.
//
// Lent buffers are NOT zeroed and hold whatever the previous borrower left: a borrower fills every byte it writes
// out (records zero their own padding) and reads whole records over them. A borrower that never gives a buffer back
// costs nothing but the reuse (the garbage collector frees it); giving one back twice is a bug the pool refuses.
import { assert } from '../assert.js';
import { PAGE_BYTES, allocateAlignedBuffer } from './aligned-buffer.js';

/** Sizes up to this round up to whole pages; larger ones to an eighth of their power of two (≤ 12.5 % slack). */
const PAGE_ROUNDED_UP_TO_BYTES = 64 * 1024;

export function sizeClassOf(lengthBytes: number): number {
  assert(Number.isSafeInteger(lengthBytes) && lengthBytes > 0, 'a lent buffer has a positive length');
  if (lengthBytes <= PAGE_ROUNDED_UP_TO_BYTES) return Math.ceil(lengthBytes / PAGE_BYTES) * PAGE_BYTES;
  const step = 2 ** (Math.floor(Math.log2(lengthBytes)) - 3);
  return Math.ceil(lengthBytes / step) * step;
}

export class AlignedBufferPool {
  /** Idle buffers by capacity (a size class). */
  private readonly idle = new Map<number, Buffer[]>();
  /** Each lent view → the whole buffer it is cut from. */
  private readonly lent = new WeakMap<Buffer, Buffer>();
  private idleBytes = 0;
  readonly stats = { lent: 0, allocated: 0, returned: 0, dropped: 0 };

  /** `idleBytesMax`: what the pool keeps between uses; buffers given back beyond it are left to the collector. */
  constructor(private readonly idleBytesMax: number) {}

  /** A page-aligned buffer of exactly `lengthBytes`, not zeroed. */
  lend(lengthBytes: number): Buffer {
    const capacity = sizeClassOf(lengthBytes);
    let whole = this.idle.get(capacity)?.pop();
    if (whole) {
      this.idleBytes -= capacity;
    } else {
      whole = allocateAlignedBuffer(capacity, PAGE_BYTES, false);
      this.stats.allocated += 1;
    }
    const view = whole.subarray(0, lengthBytes);
    this.lent.set(view, whole);
    this.stats.lent += 1;
    return view;
  }

  /** Takes back a buffer `lend` returned, once no I/O and no reader uses it any more. */
  giveBack(view: Buffer): void {
    const whole = this.lent.get(view);
    assert(whole !== undefined, 'only a lent buffer is given back, and only once');
    this.lent.delete(view);
    this.stats.returned += 1;
    if (this.idleBytes + whole.length > this.idleBytesMax) {
      this.stats.dropped += 1;
      return;
    }
    const list = this.idle.get(whole.length) ?? [];
    list.push(whole);
    this.idle.set(whole.length, list);
    this.idleBytes += whole.length;
  }

  get idleBytesHeld(): number {
    return this.idleBytes;
  }
}

/**
 * The process's pool for the data path: extents being written, their parity, and fragment records read or written.
 * 64 MiB keeps what a few puts and gets have in flight at once at the default 1 MiB extent (a put: 4 extents of
 * 1 MiB, their parity and 24 records' first and last pages).
 */
export const dataBuffers = new AlignedBufferPool(64 * 1024 * 1024);

/** Runs `use` with a lent buffer and gives it back afterwards, whatever happens. */
export async function withLentBuffer<T>(pool: AlignedBufferPool, lengthBytes: number, use: (buffer: Buffer) => Promise<T>): Promise<T> {
  const buffer = pool.lend(lengthBytes);
  try {
    return await use(buffer);
  } finally {
    pool.giveBack(buffer);
  }
}
