// Sector-aligned I/O on a block device or a device image file: the one way the rest of shardpool reads and writes
// raw storage. It opens with O_DIRECT (falling back to O_SYNC when the kernel refuses O_DIRECT and the mode allows
// it), holds the device with O_EXCL, and refuses any request whose offset, length or buffer address is not a
// multiple of the logical sector size before it reaches the kernel — a misaligned O_DIRECT call fails at random on
// real devices (while tmpfs and zram accept it), so it must never be issued at all.
import { close } from 'node:fs';
import { promisify } from 'node:util';
import { assert } from '../assert.js';
import { ShardpoolError, systemErrorCode } from '../errors.js';
import { isAligned } from './aligned-buffer.js';
import { nativeIo, openDevice, type DeviceInfo } from './native.js';

import type { DirectIoMode } from './direct-io-mode.js';
export { DIRECT_IO_MODES, type DirectIoMode } from './direct-io-mode.js';

/** Process-wide counters, exported as metrics later. */
export const ioCounters = {
  /** Opens that wanted O_DIRECT, were refused it, and fell back to O_SYNC. */
  directIoFallbacks: 0,
  /** Requests refused before any system call because they were not sector-aligned. */
  alignmentFailures: 0,
};

export interface OpenBlockOptions {
  readonly directIo: DirectIoMode;
  /** O_EXCL: on a block device, fails with DEVICE_BUSY when anyone else has it open exclusively or mounted. */
  readonly exclusive: boolean;
  readonly readOnly: boolean;
}

export class BlockFile {
  private closed = false;

  private constructor(
    readonly path: string,
    readonly fd: number,
    readonly info: DeviceInfo,
    /** True when opened with O_DIRECT; false when O_SYNC stands in for it. */
    readonly direct: boolean,
  ) {}

  static async open(filePath: string, options: OpenBlockOptions): Promise<BlockFile> {
    const base = { exclusive: options.exclusive, readOnly: options.readOnly };
    let fd: number | undefined;
    let direct = options.directIo !== 'never';
    if (direct) {
      try {
        if (process.env.SHARDPOOL_TEST_REFUSE_O_DIRECT === '1') throw Object.assign(new Error('O_DIRECT refused (test)'), { code: 'EINVAL' });
        fd = await openDevice(filePath, { ...base, direct: true, sync: false });
      } catch (error) {
        // EINVAL from open with O_DIRECT means the filesystem or driver cannot do direct I/O (procfs, some FUSE).
        if (systemErrorCode(error) !== 'EINVAL') throw openError(filePath, error);
        if (options.directIo === 'always') {
          throw new ShardpoolError(
            'DIRECT_IO_UNAVAILABLE',
            `${filePath} refuses O_DIRECT (its filesystem or driver does not support it) and --direct-io always was given`,
            { path: filePath },
            { cause: error },
          );
        }
        ioCounters.directIoFallbacks += 1;
        direct = false;
      }
    }
    if (fd === undefined) {
      try {
        fd = await openDevice(filePath, { ...base, direct: false, sync: true });
      } catch (error) {
        throw openError(filePath, error);
      }
    }
    try {
      const info = await nativeIo().deviceInfo(fd);
      assert(Number.isSafeInteger(info.sizeBytes), 'device sizes fit a safe integer');
      assert(info.logicalSectorBytes >= 512 && (info.logicalSectorBytes & (info.logicalSectorBytes - 1)) === 0,
        'the logical sector size is a power of two of at least 512');
      return new BlockFile(filePath, fd, info, direct);
    } catch (error) {
      await closeFd(fd);
      throw error;
    }
  }

  get sectorBytes(): number {
    return this.info.logicalSectorBytes;
  }

  /** Reads exactly `lengthBytes` at `positionBytes` into `buffer` at `bufferOffset` (all sector-aligned). */
  async read(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    await this.transfer('pread', buffer, bufferOffset, lengthBytes, positionBytes);
  }

  /** Writes exactly `lengthBytes` from `buffer` at `bufferOffset` to `positionBytes` (all sector-aligned). */
  async write(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    await this.transfer('pwrite', buffer, bufferOffset, lengthBytes, positionBytes);
  }

  /** Writes `parts` end to end at `positionBytes` in one pwritev; every part is sector-aligned in memory and length. */
  async writeParts(parts: ReadonlyArray<Buffer>, positionBytes: number): Promise<void> {
    let lengthBytes = 0;
    for (const part of parts) {
      this.assertRequest(part, 0, part.length, positionBytes + lengthBytes);
      lengthBytes += part.length;
    }
    let done: number;
    try {
      done = await nativeIo().pwritev(this.fd, [...parts], positionBytes);
    } catch (error) {
      throw ioError(this.path, 'write', error);
    }
    if (done !== lengthBytes) {
      throw new ShardpoolError('DISK_IO_FAILED', `${this.path}: short write of ${done} of ${lengthBytes} bytes at ${positionBytes}`, {
        path: this.path,
        positionBytes,
      });
    }
  }

  /** Makes every completed write durable (fdatasync: the device's volatile cache is flushed too). */
  async flush(): Promise<void> {
    this.assertOpen();
    await nativeIo().fdatasync(this.fd).catch((error: unknown) => {
      throw ioError(this.path, 'flush', error);
    });
  }

  /** Tells the device a range is unused (TRIM / punch hole). Aligned to the logical sector size. */
  async discard(positionBytes: number, lengthBytes: number): Promise<void> {
    this.assertRange(positionBytes, lengthBytes);
    await nativeIo().discard(this.fd, positionBytes, lengthBytes).catch((error: unknown) => {
      throw ioError(this.path, 'discard', error);
    });
  }

  /** Writes zeros over a range (BLKZEROOUT; a hole in an image file). */
  async zeroOut(positionBytes: number, lengthBytes: number): Promise<void> {
    this.assertRange(positionBytes, lengthBytes);
    await nativeIo().zeroOut(this.fd, positionBytes, lengthBytes).catch((error: unknown) => {
      throw ioError(this.path, 'zero-out', error);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeFd(this.fd);
  }

  private async transfer(
    call: 'pread' | 'pwrite',
    buffer: Buffer,
    bufferOffset: number,
    lengthBytes: number,
    positionBytes: number,
  ): Promise<void> {
    this.assertRequest(buffer, bufferOffset, lengthBytes, positionBytes);
    const what = call === 'pread' ? 'read' : 'write';
    let done: number;
    try {
      done = await nativeIo()[call](this.fd, buffer, bufferOffset, lengthBytes, positionBytes);
    } catch (error) {
      throw ioError(this.path, what, error);
    }
    if (done !== lengthBytes) {
      throw new ShardpoolError(
        'DISK_IO_FAILED',
        `${this.path}: short ${what} of ${done} of ${lengthBytes} bytes at ${positionBytes}`,
        { path: this.path, positionBytes },
      );
    }
  }

  private assertRequest(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): void {
    this.assertRange(positionBytes, lengthBytes);
    const sector = this.sectorBytes;
    assert(bufferOffset >= 0 && bufferOffset + lengthBytes <= buffer.length, 'the transfer fits its buffer');
    if (bufferOffset % sector !== 0 || !isAligned(buffer, sector)) {
      throw this.misaligned(`buffer memory at offset ${bufferOffset} is not ${sector}-byte aligned`);
    }
  }

  private assertRange(positionBytes: number, lengthBytes: number): void {
    this.assertOpen();
    const sector = this.sectorBytes;
    assert(Number.isSafeInteger(positionBytes) && positionBytes >= 0, 'positions are non-negative integers');
    assert(Number.isSafeInteger(lengthBytes) && lengthBytes > 0, 'lengths are positive integers');
    if (positionBytes % sector !== 0 || lengthBytes % sector !== 0) {
      throw this.misaligned(`offset ${positionBytes} or length ${lengthBytes} is not a multiple of ${sector} bytes`);
    }
    if (positionBytes + lengthBytes > this.info.sizeBytes) {
      throw new ShardpoolError(
        'DISK_IO_FAILED',
        `${this.path}: range ${positionBytes}+${lengthBytes} is beyond the end of the device (${this.info.sizeBytes} bytes)`,
        { path: this.path, positionBytes, lengthBytes },
      );
    }
  }

  private misaligned(why: string): ShardpoolError {
    ioCounters.alignmentFailures += 1;
    return new ShardpoolError('IO_MISALIGNED', `${this.path}: ${why}; the request was refused before any I/O`, {
      path: this.path,
      sectorBytes: this.sectorBytes,
    });
  }

  private assertOpen(): void {
    assert(!this.closed, `${this.path} is closed`);
  }
}

const closeFd = promisify(close);

function openError(filePath: string, error: unknown): ShardpoolError {
  const code = systemErrorCode(error);
  if (code === 'EBUSY') {
    return new ShardpoolError(
      'DEVICE_BUSY',
      `${filePath} is in use (mounted, part of another device, or open exclusively by another process)`,
      { path: filePath },
      { cause: error },
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new ShardpoolError(
      'DEVICE_PERMISSION_DENIED',
      `no permission to open ${filePath}: block devices need root (or write permission on the device node)`,
      { path: filePath },
      { cause: error },
    );
  }
  if (code === 'ENOENT') {
    return new ShardpoolError('DISK_NOT_FOUND', `${filePath} does not exist`, { path: filePath }, { cause: error });
  }
  if (code === 'ENXIO' || code === 'ENODEV') {
    // A device node with nothing behind it: a detached loop device, an unplugged disk's stale node.
    return new ShardpoolError('DISK_NOT_FOUND', `no device is attached at ${filePath}`, { path: filePath }, { cause: error });
  }
  return ioError(filePath, 'open', error);
}

function ioError(filePath: string, what: string, error: unknown): ShardpoolError {
  return new ShardpoolError(
    'DISK_IO_FAILED',
    `${what} failed on ${filePath}: ${(error as Error).message}`,
    { path: filePath, errno: systemErrorCode(error) ?? null },
    { cause: error },
  );
}
