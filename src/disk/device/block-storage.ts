// What a device disk needs of its storage: sector-aligned reads and writes, a flush that makes them durable, discard.
// BlockFile (io/block-io.ts) is the real one; tests pass a simulated storage that loses unflushed writes, tears them
// at sector granularity and flips bits, to prove the on-device protocols survive it.
import type { DeviceInfo } from '../../io/native.js';

export interface BlockStorage {
  readonly path: string;
  readonly info: DeviceInfo;
  /** True when writes bypass the page cache (O_DIRECT); false when O_SYNC stands in. */
  readonly direct: boolean;
  read(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void>;
  write(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void>;
  /**
   * One write of `parts` laid end to end at `positionBytes` (a gathered write, so a record can be written from the
   * fragment's own memory between two small blocks). Each part is sector-aligned in memory and length.
   */
  writeParts(parts: ReadonlyArray<Buffer>, positionBytes: number): Promise<void>;
  /** Every write that completed before the call is durable when it resolves. */
  flush(): Promise<void>;
  discard(positionBytes: number, lengthBytes: number): Promise<void>;
  close(): Promise<void>;
}
