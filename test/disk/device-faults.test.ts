// Seeded fault injection on the block-device disk: random workloads of fragment writes, group commits and deletes,
// interrupted by power losses (unflushed writes dropped, kept or torn at sector granularity, also in the middle of
// a group commit or a checkpoint) and bit flips. After every crash the device is reopened (journal replay) and
// reconciled as the pool would; every acknowledged fragment must read back verified, and a corrupted one must be
// reported, never returned. `npm run faults -- --iterations 5000` runs thousands locally (CI runs 150);
// SHARDPOOL_TEST_SEED=<seed> replays a failing run from the seed its message prints.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDeviceStorage, openDeviceStorage, type DeviceDisk } from '../../src/disk/device/device-disk.js';
import type { FragmentLocation } from '../../src/disk/disk.js';
import { isShardpoolError } from '../../src/errors.js';
import { fragmentHeaderLengthBytes } from '../../src/format/fragment-header.js';
import { newUuid } from '../../src/format/uuid.js';
import { PAGE_BYTES, allocateAlignedBuffer } from '../../src/io/aligned-buffer.js';
import { checksum128 } from '../../src/redundancy/checksum.js';
import { seededRandom, testSeed } from '../support/seeded-random.js';
import { SimulatedCrash, SimulatedMedium, type SimulatedStorage } from '../support/simulated-storage.js';

// `npm run faults -- --iterations 5000` (the file run directly) or SHARDPOOL_FAULT_ITERATIONS=5000 npm test.
const iterationsFlag = process.argv.indexOf('--iterations');
const ITERATIONS = Number(iterationsFlag > 0 ? process.argv[iterationsFlag + 1] : (process.env.SHARDPOOL_FAULT_ITERATIONS ?? 150));
const DEVICE_BYTES = 8 * 1024 * 1024;
const IDENTITY = { poolUuid: '11111111-2222-4333-8444-555555555555', diskUuid: '66666666-7777-4888-9999-aaaaaaaaaaaa' };

/** A buffer of `lengthBytes` starting `headerBytes` past a page boundary, as a put's extents and parity are. */
function recordAlignedBuffer(lengthBytes: number, headerBytes: number): Buffer {
  const offset = headerBytes % PAGE_BYTES;
  return allocateAlignedBuffer(lengthBytes + offset).subarray(offset, offset + lengthBytes);
}

interface Acknowledged {
  readonly location: FragmentLocation;
  readonly data: Buffer;
}

class Run {
  readonly random: () => number;
  readonly medium: SimulatedMedium;
  storage!: SimulatedStorage;
  disk!: DeviceDisk;
  /** What the "catalog" references: fragments whose group commit returned. */
  readonly acknowledged = new Map<string, Acknowledged>();
  crashes = 0;
  corruptionsDetected = 0;
  checkpoints = 0;

  constructor(readonly seed: number) {
    this.random = seededRandom(seed);
    const sectors = [
      { logicalSectorBytes: 512, physicalSectorBytes: 512 },
      { logicalSectorBytes: 512, physicalSectorBytes: 4096 },
      { logicalSectorBytes: 4096, physicalSectorBytes: 4096 },
    ][Math.floor(this.random() * 3)] as { logicalSectorBytes: number; physicalSectorBytes: number };
    this.medium = new SimulatedMedium(DEVICE_BYTES, sectors);
  }

  context(what: string): string {
    return `seed ${this.seed}: ${what} (replay with SHARDPOOL_TEST_SEED=${this.seed})`;
  }

  async start(): Promise<void> {
    const storage = this.medium.boot();
    await formatDeviceStorage(storage, IDENTITY);
    await this.boot();
  }

  /** Reopens after a crash and reconciles pending allocations against the acknowledged set, as the pool does. */
  async boot(): Promise<void> {
    if (this.disk) this.checkpoints += this.disk.stats.checkpoints;
    this.storage = this.medium.boot(`sim-${this.seed}`);
    this.disk = await openDeviceStorage(this.storage, IDENTITY, 'write');
    for (const pending of this.disk.pendingAllocations()) {
      const known = this.acknowledged.get(key(pending));
      if (known && known.location.locationBytes === pending.locationBytes) this.disk.settle([pending]);
      else await this.disk.deleteFragment({ versionId: pending.versionId, extentIndex: pending.extentIndex, fragmentIndex: pending.fragmentIndex });
    }
    await this.disk.flush();
    await this.verifyAll('after reopening');
  }

  async verifyAll(when: string): Promise<void> {
    for (const [name, fragment] of this.acknowledged) {
      const { data } = await this.disk.readFragment(fragment.location);
      assert.ok(data.equals(fragment.data), this.context(`${name} reads back exactly ${when}`));
    }
  }

  async writeBatch(count: number, acknowledge: boolean): Promise<void> {
    const versionId = newUuid();
    const written = await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const objectKey = `object-${versionId.slice(0, 8)}`;
        // Half the fragments are laid out as a put lays out its extents (page-aligned where the record's second page
        // starts), so the device writes them as one gathered write from their own memory; the rest are copied whole.
        const data = this.random() < 0.5
          ? Buffer.alloc(1 + Math.floor(this.random() * 70_000))
          : recordAlignedBuffer(1 + Math.floor(this.random() * 70_000), fragmentHeaderLengthBytes(objectKey));
        const seed = Math.floor(this.random() * 251);
        for (let offset = 0; offset < data.length; offset += 1) data[offset] = (offset * 7 + seed) % 251;
        const address = { versionId, extentIndex: index, fragmentIndex: Math.floor(this.random() * 6) };
        const { locationBytes } = await this.disk.writeFragment(
          {
            ...address,
            key: objectKey,
            policy: { kind: 'ec', dataFragments: 4, parityFragments: 2 },
            extentLengthBytes: data.length * 4,
            extentChecksum: checksum128(data),
            dataLengthBytes: data.length,
            dataChecksum: checksum128(data),
          },
          data,
        );
        return { address, locationBytes, data };
      }),
    );
    if (!acknowledge) return;
    await this.disk.flush();
    for (const fragment of written) {
      const location = { ...fragment.address, locationBytes: fragment.locationBytes, storedBytes: 160 + `object-${versionId.slice(0, 8)}`.length + fragment.data.length };
      this.acknowledged.set(key(location), { location, data: fragment.data });
    }
    this.disk.settle(written.map((fragment) => fragment.address));
  }

  async deleteSome(): Promise<void> {
    for (const [name, fragment] of [...this.acknowledged]) {
      if (this.random() < 0.3) {
        this.acknowledged.delete(name); // the catalog stops referencing it first
        await this.disk.deleteFragment(fragment.location);
      }
    }
    if (this.random() < 0.7) await this.disk.flush();
  }

  async corruptOne(): Promise<void> {
    const victims = [...this.acknowledged];
    if (victims.length === 0) return;
    const [name, fragment] = victims[Math.floor(this.random() * victims.length)] as [string, Acknowledged];
    const at = fragment.location.locationBytes + Math.floor(this.random() * fragment.location.storedBytes);
    this.medium.flipBit(at, Math.floor(this.random() * 8));
    await assert.rejects(this.disk.readFragment(fragment.location), (error: unknown) => {
      assert.ok(isShardpoolError(error) && /^FRAGMENT_/.test(error.code), this.context(`a flipped bit is reported, got ${String(error)}`));
      return true;
    });
    this.corruptionsDetected += 1;
    // Repair would rewrite it from redundancy; here it is dropped like a removed object.
    this.acknowledged.delete(name);
    await this.disk.deleteFragment(fragment.location);
  }

  /** Power loss now, or armed to strike a few storage operations into the next step. */
  async crash(): Promise<void> {
    this.storage.crash(this.random);
    this.crashes += 1;
    await this.boot();
  }

  async step(): Promise<void> {
    const choice = this.random();
    const armed = this.random() < 0.15;
    if (armed) this.medium.crashAt = this.medium.operations + 1 + Math.floor(this.random() * 6);
    try {
      if (choice < 0.45) await this.writeBatch(1 + Math.floor(this.random() * 8), true);
      else if (choice < 0.6) await this.writeBatch(1 + Math.floor(this.random() * 4), false);
      else if (choice < 0.75) await this.deleteSome();
      else if (choice < 0.82) await this.corruptOne();
      else if (choice < 0.9) await this.crash();
      else {
        await this.disk.close(); // a clean close checkpoints
        await this.boot();
      }
    } catch (error) {
      if (!(error instanceof SimulatedCrash) && !(isShardpoolError(error, 'DISK_IO_FAILED') && error.cause instanceof SimulatedCrash)) {
        if (isShardpoolError(error, 'DISK_FULL')) return;
        throw error;
      }
      this.medium.crashAt = undefined;
      this.storage.settleCrash(this.random);
      this.crashes += 1;
      await this.boot();
    }
    this.medium.crashAt = undefined;
  }
}

function key(address: { versionId: string; extentIndex: number; fragmentIndex: number }): string {
  return `${address.versionId}.${address.extentIndex}.${address.fragmentIndex}`;
}

test(`seeded power losses, torn writes and bit flips never lose an acknowledged fragment (${ITERATIONS} runs)`, async (t) => {
  const first = testSeed();
  let crashes = 0;
  let corruptions = 0;
  let checkpoints = 0;
  for (let iteration = 0; iteration < ITERATIONS; iteration += 1) {
    const run = new Run(first + iteration);
    await run.start();
    const steps = 20 + Math.floor(run.random() * 40);
    for (let step = 0; step < steps; step += 1) await run.step();
    await run.verifyAll('at the end');
    crashes += run.crashes;
    corruptions += run.corruptionsDetected;
    checkpoints += run.checkpoints + run.disk.stats.checkpoints;
  }
  t.diagnostic(
    `seeds ${first}..${first + ITERATIONS - 1}: ${crashes} crashes survived, ${checkpoints} checkpoints, ${corruptions} corruptions detected`,
  );
  assert.ok(crashes > ITERATIONS, 'the runs really crashed');
  assert.ok(checkpoints > 0, 'the runs reached checkpoints (journal full or a quarter full at close)');
});
