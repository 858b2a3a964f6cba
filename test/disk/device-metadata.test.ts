import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnitAllocator } from '../../src/disk/device/unit-allocator.js';
import { formatDeviceStorage, openDeviceStorage } from '../../src/disk/device/device-disk.js';
import { isShardpoolError } from '../../src/errors.js';
import { decodeAllocatorCheckpoint, encodeAllocatorCheckpoint } from '../../src/format/allocator-checkpoint.js';
import { decodeJournalRecord, encodeJournalRecord, type JournalEntry } from '../../src/format/journal-record.js';
import { newUuid } from '../../src/format/uuid.js';
import { writeTestFragment } from '../support/device-fragments.js';
import { seededRandom, testSeed } from '../support/seeded-random.js';
import { SimulatedMedium } from '../support/simulated-storage.js';

const DEVICE = '66666666-7777-4888-9999-aaaaaaaaaaaa';
const IDENTITY = { poolUuid: '11111111-2222-4333-8444-555555555555', diskUuid: DEVICE };

test('the unit allocator agrees with a plain bit-per-unit model under random allocations and frees', () => {
  const seed = testSeed();
  const random = seededRandom(seed);
  const units = 1000;
  const allocator = new UnitAllocator(units);
  const model = new Uint8Array(units);
  const live: Array<[number, number]> = [];
  for (let step = 0; step < 5000; step += 1) {
    if (random() < 0.55 || live.length === 0) {
      const count = 1 + Math.floor(random() * 20);
      const start = allocator.allocate(count);
      // First fit: the model's lowest run of `count` free units.
      let expected: number | undefined;
      for (let unit = 0, run = 0; unit < units; unit += 1) {
        run = model[unit] ? 0 : run + 1;
        if (run === count) {
          expected = unit - count + 1;
          break;
        }
      }
      assert.equal(start, expected, `seed ${seed} step ${step}`);
      if (start !== undefined) {
        model.fill(1, start, start + count);
        live.push([start, count]);
      }
    } else {
      const [start, count] = live.splice(Math.floor(random() * live.length), 1)[0] as [number, number];
      allocator.free(start, count);
      model.fill(0, start, start + count);
    }
    assert.equal(allocator.freeUnits, model.filter((bit) => bit === 0).length, `seed ${seed} step ${step}: free + used = total`);
  }
  const rebuilt = new UnitAllocator(units, allocator.snapshot());
  assert.equal(rebuilt.freeUnits, allocator.freeUnits, 'a bitmap snapshot rebuilds the same free runs');
  assert.deepEqual([...rebuilt.allocatedRuns()], [...allocator.allocatedRuns()]);
  const single = allocator.allocate(1) as number;
  allocator.free(single, 1);
  assert.throws(() => allocator.free(single, 1), /allocated before it is freed/, 'a double free is caught');
});

function sampleEntries(count: number): JournalEntry[] {
  return Array.from({ length: count }, (_, index) =>
    index % 3 === 2
      ? { type: 'free' as const, startUnit: index * 7, unitCount: 3 }
      : { type: 'allocate' as const, startUnit: index * 7, unitCount: 5, versionId: newUuid(), extentIndex: index, fragmentIndex: index % 6 },
  );
}

test('journal records and checkpoints round-trip; fuzzed ones are refused with a typed error, never a crash', () => {
  const seed = testSeed();
  const random = seededRandom(seed);
  const record = { sequence: 42, deviceUuid: DEVICE, entries: sampleEntries(50) };
  const encoded = encodeJournalRecord(record, 4096);
  assert.deepEqual(decodeJournalRecord(encoded, 'test'), record);
  const checkpoint = {
    journalSequence: 9,
    dataUnits: 5000,
    deviceUuid: DEVICE,
    bitmap: Uint8Array.from({ length: 625 }, (_, index) => index % 256),
    pending: sampleEntries(9).filter((entry): entry is Extract<JournalEntry, { type: 'allocate' }> => entry.type === 'allocate'),
  };
  const checkpointBytes = encodeAllocatorCheckpoint(checkpoint);
  assert.deepEqual(decodeAllocatorCheckpoint(checkpointBytes, { dataUnits: 5000, deviceUuid: DEVICE }, 'test'), checkpoint);

  for (let iteration = 0; iteration < 3000; iteration += 1) {
    const target = iteration % 2 === 0 ? encoded : checkpointBytes;
    const mutated = Buffer.from(target);
    const flips = 1 + Math.floor(random() * 3);
    for (let flip = 0; flip < flips; flip += 1) {
      const at = Math.floor(random() * Math.min(mutated.length, 6000));
      mutated[at] = (mutated[at] ?? 0) ^ (1 + Math.floor(random() * 255));
    }
    const input = random() < 0.2 ? mutated.subarray(0, Math.floor(random() * mutated.length)) : mutated;
    try {
      if (target === encoded) decodeJournalRecord(input, 'fuzz');
      else decodeAllocatorCheckpoint(input, { dataUnits: 5000, deviceUuid: DEVICE }, 'fuzz');
      // Decoding may only succeed when the bytes that matter are unchanged (a flip in the padding).
      assert.ok(input.length === target.length, `seed ${seed} iteration ${iteration}: a truncated record decoded`);
    } catch (error) {
      assert.ok(
        isShardpoolError(error, 'JOURNAL_RECORD_INVALID') || isShardpoolError(error, 'DEVICE_METADATA_INVALID'),
        `seed ${seed} iteration ${iteration}: ${String(error)}`,
      );
    }
  }
});

test('group commit: concurrent fragment writes on one device share about two flushes per batch', async () => {
  const medium = new SimulatedMedium(64 * 1024 * 1024, { logicalSectorBytes: 4096, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  const disk = await openDeviceStorage(medium.boot(), IDENTITY, 'write');
  const writers = 32;
  await Promise.all(
    Array.from({ length: writers }, async (_, index) => {
      await writeTestFragment(disk, `k${index}`, Buffer.alloc(20_000, index));
      await disk.flush(); // every writer waits for durability on its own
    }),
  );
  assert.ok(disk.stats.batches <= 3, `${writers} concurrent flushes ran ${disk.stats.batches} batches`);
  assert.ok(disk.stats.flushes <= 2 * disk.stats.batches, `${disk.stats.flushes} fdatasyncs for ${disk.stats.batches} batches`);
  assert.ok(disk.stats.flushes < writers / 4, `${disk.stats.flushes} fdatasyncs for ${writers} fragments, not one or two each`);
});

test('one surviving label copy opens the device; with every copy damaged it is refused and nothing is written', async () => {
  const medium = new SimulatedMedium(64 * 1024 * 1024, { logicalSectorBytes: 512, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  medium.flipBit(100, 3);
  medium.flipBit(4096 + 100, 3);
  await (await openDeviceStorage(medium.boot(), IDENTITY, 'read')).close();
  medium.flipBit(64 * 1024 * 1024 - 4096 + 100, 3);
  const before = Buffer.from(medium.durable);
  await assert.rejects(openDeviceStorage(medium.boot(), IDENTITY, 'write'), (error: unknown) => isShardpoolError(error, 'DEVICE_LABEL_INVALID'));
  assert.ok(medium.durable.equals(before), 'a refused device is not written');
});
