// Buffers whose memory starts on a sector or page boundary, as O_DIRECT requires. Node's own Buffers are only
// 16-byte aligned, so an O_DIRECT transfer from one fails at random (EINVAL); these come from posix_memalign and are
// freed by the addon's finalizer when the garbage collector drops the last reference.
import { assert } from '../assert.js';
import { nativeIo } from './native.js';

export const PAGE_BYTES = 4096;

/**
 * Zero-filled unless `zeroed` is false, for buffers the caller fills completely (reads, records it assembles and
 * pads itself): skipping the fill saves a pass over every byte on the data path.
 */
export function allocateAlignedBuffer(lengthBytes: number, alignmentBytes = PAGE_BYTES, zeroed = true): Buffer {
  assert(Number.isSafeInteger(lengthBytes) && lengthBytes > 0, 'an aligned buffer has a positive length');
  assert(alignmentBytes > 0 && (alignmentBytes & (alignmentBytes - 1)) === 0, 'alignment is a power of two');
  const memory = nativeIo().allocateAligned(lengthBytes, alignmentBytes, zeroed);
  // Where the runtime refuses external Buffers the addon returns a Uint8Array over the same memory: view it as a
  // Buffer without copying (a copy would lose the alignment).
  const buffer = Buffer.isBuffer(memory) ? memory : Buffer.from(memory.buffer, memory.byteOffset, memory.length);
  assert(buffer.length === lengthBytes && isAligned(buffer, alignmentBytes), 'posix_memalign returned aligned memory');
  return buffer;
}

/** True when the buffer's first byte sits at a multiple of `alignmentBytes` in memory. */
export function isAligned(buffer: Buffer, alignmentBytes: number): boolean {
  return nativeIo().bufferAddress(buffer) % BigInt(alignmentBytes) === 0n;
}
