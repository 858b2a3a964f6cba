// A simulated block device for fault-injection tests. Writes land in a volatile cache until flush(); a crash keeps,
// drops or tears (at physical-sector granularity) each unflushed write, chosen by a seeded PRNG, and bit flips can
// corrupt durable sectors. A crash can be armed to strike in the middle of an operation (the n-th write or flush),
// which is how a crash inside a group commit or a checkpoint is produced.
import { assert } from '../../src/assert.js';
import type { BlockStorage } from '../../src/disk/device/block-storage.js';
import type { DeviceInfo } from '../../src/io/native.js';

export class SimulatedCrash extends Error {
  constructor() {
    super('simulated power loss');
  }
}

interface PendingWrite {
  readonly positionBytes: number;
  readonly bytes: Buffer;
}

/** The medium: survives reboots. Each boot gets a fresh BlockStorage view on it. */
export class SimulatedMedium {
  readonly durable: Buffer;
  readonly info: DeviceInfo;
  /** Counts writes and flushes, for arming crashes. */
  operations = 0;
  crashAt: number | undefined;

  constructor(sizeBytes: number, sectors: { logicalSectorBytes: number; physicalSectorBytes: number }) {
    this.durable = Buffer.alloc(sizeBytes);
    this.info = { isBlockDevice: true, sizeBytes, blockSizeBytes: 4096, ...sectors };
  }

  boot(name = 'sim'): SimulatedStorage {
    return new SimulatedStorage(this, name);
  }

  /** Flips one bit of the durable medium. */
  flipBit(positionBytes: number, bit: number): void {
    this.durable[positionBytes] = (this.durable[positionBytes] as number) ^ (1 << (bit & 7));
  }
}

export class SimulatedStorage implements BlockStorage {
  readonly direct = true;
  private readonly volatile: PendingWrite[] = [];
  private crashed = false;
  closed = false;

  constructor(
    private readonly medium: SimulatedMedium,
    readonly path: string,
  ) {}

  get info(): DeviceInfo {
    return this.medium.info;
  }

  async read(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    this.check(positionBytes, lengthBytes);
    this.medium.durable.copy(buffer, bufferOffset, positionBytes, positionBytes + lengthBytes);
    // The cache: later writes win.
    for (const write of this.volatile) {
      const start = Math.max(positionBytes, write.positionBytes);
      const end = Math.min(positionBytes + lengthBytes, write.positionBytes + write.bytes.length);
      if (start < end) write.bytes.copy(buffer, bufferOffset + start - positionBytes, start - write.positionBytes, end - write.positionBytes);
    }
  }

  async write(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    this.check(positionBytes, lengthBytes);
    this.tick();
    this.volatile.push({ positionBytes, bytes: Buffer.from(buffer.subarray(bufferOffset, bufferOffset + lengthBytes)) });
  }

  /** A gathered write is one write, torn or dropped like any other; each part must be whole sectors long. */
  async writeParts(parts: ReadonlyArray<Buffer>, positionBytes: number): Promise<void> {
    for (const part of parts) {
      if (part.length % this.info.logicalSectorBytes !== 0) throw new Error(`simulated storage: a part of ${part.length} bytes is not whole sectors`);
    }
    const whole = Buffer.concat(parts);
    await this.write(whole, 0, whole.length, positionBytes);
  }

  async flush(): Promise<void> {
    this.tick();
    for (const write of this.volatile.splice(0)) write.bytes.copy(this.medium.durable, write.positionBytes);
  }

  async discard(positionBytes: number, lengthBytes: number): Promise<void> {
    this.check(positionBytes, lengthBytes);
    this.volatile.push({ positionBytes, bytes: Buffer.alloc(lengthBytes) });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /**
   * Power loss: every unflushed write is kept, dropped, or torn (a random subset of its physical sectors reaches
   * the medium), as `random` decides. Afterwards this view is dead; boot a new one from the medium.
   */
  crash(random: () => number): void {
    const sector = this.medium.info.physicalSectorBytes;
    for (const write of this.volatile.splice(0)) {
      const fate = random();
      if (fate < 1 / 3) continue; // dropped
      for (let offset = 0; offset < write.bytes.length; offset += sector) {
        const keep = fate < 2 / 3 ? true : random() < 0.5; // whole, or torn sector by sector
        if (keep) write.bytes.copy(this.medium.durable, write.positionBytes + offset, offset, Math.min(offset + sector, write.bytes.length));
      }
    }
    this.crashed = true;
  }

  private tick(): void {
    if (this.crashed) throw new SimulatedCrash();
    this.medium.operations += 1;
    if (this.medium.crashAt !== undefined && this.medium.operations >= this.medium.crashAt) {
      this.medium.crashAt = undefined;
      this.crashed = true;
      throw new SimulatedCrash();
    }
  }

  private check(positionBytes: number, lengthBytes: number): void {
    if (this.crashed) throw new SimulatedCrash();
    const sector = this.medium.info.logicalSectorBytes;
    assert(positionBytes % sector === 0 && lengthBytes % sector === 0, 'simulated storage sees only sector-aligned I/O');
    assert(positionBytes + lengthBytes <= this.medium.info.sizeBytes, 'simulated I/O stays on the device');
  }

  /** For a crash armed mid-operation: the writes still volatile at that instant meet their fate now. */
  settleCrash(random: () => number): void {
    this.crashed = false;
    this.crash(random);
  }
}
