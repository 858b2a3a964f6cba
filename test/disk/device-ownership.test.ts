// Who may free a device's units: only the owner of the run (docs/architecture.md § concurrency). These tests drive
// the interleaving that lost acknowledged data under concurrent S3 load: two deletes of one fragment, a put given the
// freed units in between, and a third put that would then overwrite the second.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BlockStorage } from '../../src/disk/device/block-storage.js';
import { formatDeviceStorage, openDeviceStorage, type DeviceDisk } from '../../src/disk/device/device-disk.js';
import type { FragmentLocation } from '../../src/disk/disk.js';
import { fragmentHeaderLengthBytes } from '../../src/format/fragment-header.js';
import { newUuid } from '../../src/format/uuid.js';
import { writeTestFragment } from '../support/device-fragments.js';
import { SimulatedMedium } from '../support/simulated-storage.js';

const IDENTITY = { poolUuid: '11111111-2222-4333-8444-555555555555', diskUuid: '66666666-7777-4888-9999-bbbbbbbbbbbb' };

/** Storage whose reads wait while `held` is set, so a test decides when a delete's header read returns. */
class HeldReads implements BlockStorage {
  held = false;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly inner: BlockStorage) {}
  get path(): string {
    return this.inner.path;
  }
  get info() {
    return this.inner.info;
  }
  get direct(): boolean {
    return this.inner.direct;
  }
  async read(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    await this.inner.read(buffer, bufferOffset, lengthBytes, positionBytes);
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    this.held = false;
    for (const resume of this.waiting.splice(0)) resume();
  }
  get readsWaiting(): number {
    return this.waiting.length;
  }
  write(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    return this.inner.write(buffer, bufferOffset, lengthBytes, positionBytes);
  }
  writeParts(parts: ReadonlyArray<Buffer>, positionBytes: number): Promise<void> {
    return this.inner.writeParts(parts, positionBytes);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  discard(positionBytes: number, lengthBytes: number): Promise<void> {
    return this.inner.discard(positionBytes, lengthBytes);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function writeOne(disk: DeviceDisk, fill: number): Promise<FragmentLocation> {
  const data = Buffer.alloc(20_000, fill);
  const { versionId, locationBytes } = await writeTestFragment(disk, `key-${fill}`, data);
  await disk.flush();
  const location = { versionId, extentIndex: 0, fragmentIndex: 0, locationBytes, storedBytes: fragmentHeaderLengthBytes(`key-${fill}`) + data.length };
  disk.settle([location]);
  return location;
}

for (const when of ['allocated before this open', 'allocated by this process'] as const) {
  test(`two deletes of one fragment never free the units a later put was given (${when})`, async () => {
    const medium = new SimulatedMedium(64 * 1024 * 1024, { logicalSectorBytes: 4096, physicalSectorBytes: 4096 });
    await formatDeviceStorage(medium.boot(), IDENTITY);
    let storage = new HeldReads(medium.boot());
    let disk = await openDeviceStorage(storage, IDENTITY, 'write');
    const first = await writeOne(disk, 1);
    if (when === 'allocated before this open') {
      await disk.close();
      storage = new HeldReads(medium.boot());
      disk = await openDeviceStorage(storage, IDENTITY, 'write');
    }
    // Both deletes read the record's header; the reads are held until both have started.
    storage.held = true;
    const deleteA = disk.deleteFragment(first);
    const deleteB = disk.deleteFragment(first);
    storage.release();
    await deleteA;
    // First fit hands the freed units to the next put while the second delete may still be deciding.
    storage.held = true;
    const secondWrite = writeOne(disk, 2);
    const deleteC = disk.deleteFragment(first); // a third, late collector of the same version
    storage.release();
    const second = await secondWrite;
    await Promise.all([deleteB, deleteC]);
    await disk.flush();
    assert.equal(second.locationBytes, first.locationBytes, 'the second put reused the freed units (the dangerous case)');
    const third = await writeOne(disk, 3);
    assert.notEqual(third.locationBytes, second.locationBytes, 'the second put still owns its units');
    const { data } = await disk.readFragment(second);
    assert.ok(data.equals(Buffer.alloc(20_000, 2)), "the second put's committed fragment is intact");
    await disk.close();
  });
}

test('a delete by the wrong identity at an owned location frees nothing', async () => {
  const medium = new SimulatedMedium(64 * 1024 * 1024, { logicalSectorBytes: 4096, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  const disk = await openDeviceStorage(medium.boot(), IDENTITY, 'write');
  const kept = await writeOne(disk, 4);
  const before = (await disk.space()).freeBytes;
  await disk.deleteFragment({ ...kept, versionId: newUuid() });
  await disk.deleteFragment({ ...kept, locationBytes: kept.locationBytes + 16 * 1024 });
  await disk.flush();
  assert.equal((await disk.space()).freeBytes, before, 'no unit changed hands');
  await disk.close();
});

/** Storage whose next data write (a fragment record) waits until the test releases it. */
class HeldWrite extends HeldReads {
  holdNextWriteAtOrAfter: number | undefined;
  private releaseWrite: (() => void) | undefined;
  writeHeld = false;
  override async writeParts(parts: ReadonlyArray<Buffer>, positionBytes: number): Promise<void> {
    await this.maybeHold(positionBytes);
    return super.writeParts(parts, positionBytes);
  }
  override async write(buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<void> {
    await this.maybeHold(positionBytes);
    return super.write(buffer, bufferOffset, lengthBytes, positionBytes);
  }
  releaseHeldWrite(): void {
    this.releaseWrite?.();
  }
  private async maybeHold(positionBytes: number): Promise<void> {
    if (this.holdNextWriteAtOrAfter === undefined || positionBytes < this.holdNextWriteAtOrAfter) return;
    this.holdNextWriteAtOrAfter = undefined;
    this.writeHeld = true;
    await new Promise<void>((resolve) => (this.releaseWrite = resolve));
  }
}

test('a checkpoint taken while a fragment write is in flight leaves a journal that replays (no unit allocated twice)', async () => {
  const medium = new SimulatedMedium(64 * 1024 * 1024, { logicalSectorBytes: 4096, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  const storage = new HeldWrite(medium.boot());
  const disk = await openDeviceStorage(storage, IDENTITY, 'write');
  storage.holdNextWriteAtOrAfter = disk.dataRegion.offsetBytes;
  const inFlight = writeOne(disk, 1); // allocated at once, its record write held
  for (let turn = 0; turn < 20 && !storage.writeHeld; turn += 1) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(storage.writeHeld);
  // Fill the journal until group commits checkpoint, all while the first write is still in flight.
  const others: FragmentLocation[] = [];
  for (let index = 0; disk.stats.checkpoints < 2; index += 1) {
    others.push(await writeOne(disk, 10 + (index % 200)));
    assert.ok(index < 5000, 'the journal fills and checkpoints');
  }
  storage.releaseHeldWrite();
  const first = await inFlight;
  await disk.close();
  const reopened = await openDeviceStorage(medium.boot(), IDENTITY, 'write');
  const { data } = await reopened.readFragment(first);
  assert.ok(data.equals(Buffer.alloc(20_000, 1)), 'the write that spanned the checkpoints is intact and allocated');
  for (const other of others.slice(-3)) await reopened.verifyFragment(other);
  const before = (await reopened.space()).freeBytes;
  await writeOne(reopened, 250);
  assert.ok((await reopened.space()).freeBytes < before);
  await reopened.close();
});

test('a scan never lists the stale record left in units handed to a write in flight, nor a record freed since', async () => {
  const medium = new SimulatedMedium(64 * 1024 * 1024, { logicalSectorBytes: 4096, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  const storage = new HeldWrite(medium.boot());
  const disk = await openDeviceStorage(storage, IDENTITY, 'write');
  const collected = await writeOne(disk, 1);
  const kept = await writeOne(disk, 2);
  const found = async () => {
    const names: string[] = [];
    for await (const fragment of disk.scanFragments()) names.push(fragment.versionId);
    return names;
  };
  assert.deepEqual(await found(), [collected.versionId, kept.versionId]);
  const staleFound = { ...collected, key: 'key-1', policy: { kind: 'replica' as const, copies: 1 }, extentLengthBytes: 20_000, extentChecksum: Buffer.alloc(16) };
  assert.equal(await disk.holdsRecord(staleFound), true);
  await disk.deleteFragment(collected);
  await disk.flush();
  assert.equal(await disk.holdsRecord(staleFound), false, 'its units are free: the bytes left there are stale');
  // First fit gives the freed units to the next write, whose record write is held: the old bytes are still there.
  storage.holdNextWriteAtOrAfter = disk.dataRegion.offsetBytes;
  const inFlight = writeOne(disk, 3);
  for (let turn = 0; turn < 20 && !storage.writeHeld; turn += 1) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(storage.writeHeld);
  assert.deepEqual(await found(), [kept.versionId], 'the stale record is not listed (recover would call it an orphan)');
  assert.equal(await disk.holdsRecord(staleFound), false);
  storage.releaseHeldWrite();
  const written = await inFlight;
  assert.equal(written.locationBytes, collected.locationBytes, 'the dangerous case: the same units');
  assert.deepEqual(await found(), [written.versionId, kept.versionId]);
  await disk.close();
});
