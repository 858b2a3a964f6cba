// How a device lays out a fragment record, whichever way it is written: assembled whole in a lent buffer (copied),
// or as one gathered write from the fragment's own memory (when a put laid its extent out for that). The device
// must hold the same bytes either way, and reads must hand back exactly the data, into the caller's slot if asked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDeviceStorage, openDeviceStorage } from '../../src/disk/device/device-disk.js';
import type { FragmentToWrite } from '../../src/disk/disk.js';
import { isShardpoolError } from '../../src/errors.js';
import { fragmentHeaderLengthBytes } from '../../src/format/fragment-header.js';
import { PAGE_BYTES, allocateAlignedBuffer } from '../../src/io/aligned-buffer.js';
import { checksum128 } from '../../src/redundancy/checksum.js';
import { SimulatedMedium } from '../support/simulated-storage.js';
import { seededBytes } from '../support/test-pool.js';

const IDENTITY = { poolUuid: '11111111-2222-4333-8444-555555555555', diskUuid: '66666666-7777-4888-9999-aaaaaaaaaaaa' };
const VERSION = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';

function fragmentOf(key: string, data: Buffer, extentIndex: number): FragmentToWrite {
  return {
    versionId: VERSION,
    key,
    policy: { kind: 'ec', dataFragments: 4, parityFragments: 2 },
    extentIndex,
    extentLengthBytes: data.length * 4,
    extentChecksum: checksum128(data),
    fragmentIndex: 0,
    dataLengthBytes: data.length,
    dataChecksum: checksum128(data),
  };
}

for (const logicalSectorBytes of [512, 4096]) {
  test(`${logicalSectorBytes}-byte sectors: a gathered record and a copied one are the same bytes on the device`, async () => {
    const medium = new SimulatedMedium(8 * 1024 * 1024, { logicalSectorBytes, physicalSectorBytes: 4096 });
    await formatDeviceStorage(medium.boot(), IDENTITY);
    const storage = medium.boot();
    const gathered: number[] = [];
    const writeParts = storage.writeParts.bind(storage);
    storage.writeParts = async (parts, positionBytes) => {
      gathered.push(parts.length);
      return writeParts(parts, positionBytes);
    };
    const disk = await openDeviceStorage(storage, IDENTITY, 'write');
    const key = 'bucket/some key';
    const headerBytes = fragmentHeaderLengthBytes(key);
    // Lengths: shorter than the head page's share, exactly filling pages, and with a ragged tail.
    for (const [extentIndex, length] of [1, PAGE_BYTES - headerBytes, 3 * PAGE_BYTES - headerBytes, 262_144, 70_001].entries()) {
      const content = seededBytes(length, extentIndex + 1);
      const offset = headerBytes % PAGE_BYTES;
      const laidOut = allocateAlignedBuffer(length + offset + PAGE_BYTES).subarray(offset, offset + length);
      content.copy(laidOut);
      const before = gathered.length;
      const viaParts = await disk.writeFragment(fragmentOf(key, laidOut, extentIndex), laidOut);
      const copied = await disk.writeFragment(fragmentOf(key, content, extentIndex + 100), Buffer.from(content));
      const expectGathered = length >= PAGE_BYTES - headerBytes + PAGE_BYTES;
      assert.equal(gathered.length - before, expectGathered ? 1 : 0, `length ${length}: gathered write used iff a whole page of data follows the head`);
      await disk.flush();
      const recordBytes = Math.ceil((headerBytes + length) / PAGE_BYTES) * PAGE_BYTES;
      const first = medium.durable.subarray(viaParts.locationBytes, viaParts.locationBytes + recordBytes);
      const second = medium.durable.subarray(copied.locationBytes, copied.locationBytes + recordBytes);
      // Identical but for the header fields that name the extent and location (and the header checksum).
      assert.ok(first.subarray(headerBytes).equals(second.subarray(headerBytes)), `length ${length}: data and zero padding match`);
      assert.ok(first.subarray(headerBytes, headerBytes + length).equals(content), `length ${length}: the data is in place`);
      assert.ok(first.subarray(headerBytes + length).every((byte) => byte === 0), `length ${length}: padding is zeros`);

      const location = { versionId: VERSION, extentIndex, fragmentIndex: 0, locationBytes: viaParts.locationBytes, storedBytes: headerBytes + length };
      const slot = Buffer.alloc(length + 1, 0xee);
      const fitting = slot.subarray(0, length);
      const read = await disk.readFragment(location, fitting);
      assert.equal(read.data, fitting, 'data goes into a destination of its exact length');
      assert.ok(fitting.equals(content));
      assert.equal(slot[length], 0xee, 'and not a byte beyond it');
      const elsewhere = await disk.readFragment(location, Buffer.alloc(length + 1));
      assert.ok(elsewhere.data.equals(content), 'a destination of another length is ignored');
      assert.equal((await disk.verifyFragment(location)).dataLengthBytes, length);
    }
    await disk.close();
  });
}

test('a flipped bit in a gathered record is caught by read and verify alike, and nothing is copied out', async () => {
  const medium = new SimulatedMedium(8 * 1024 * 1024, { logicalSectorBytes: 512, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  const disk = await openDeviceStorage(medium.boot(), IDENTITY, 'write');
  const key = 'k';
  const headerBytes = fragmentHeaderLengthBytes(key);
  const offset = headerBytes % PAGE_BYTES;
  const data = allocateAlignedBuffer(65_536 + offset).subarray(offset, offset + 65_536);
  seededBytes(65_536, 9).copy(data);
  const { locationBytes } = await disk.writeFragment(fragmentOf(key, data, 0), data);
  await disk.flush();
  medium.flipBit(locationBytes + headerBytes + 40_000, 3);
  const location = { versionId: VERSION, extentIndex: 0, fragmentIndex: 0, locationBytes, storedBytes: headerBytes + 65_536 };
  const slot = Buffer.alloc(65_536, 0xee);
  await assert.rejects(disk.readFragment(location, slot), (error: unknown) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
  assert.ok(slot.every((byte) => byte === 0xee), 'a corrupt fragment never reaches the caller');
  await assert.rejects(disk.verifyFragment(location), (error: unknown) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
  await disk.close();
});

test('a scan finds the same records whatever locations it is told to expect, right, wrong or stale', async () => {
  const medium = new SimulatedMedium(8 * 1024 * 1024, { logicalSectorBytes: 512, physicalSectorBytes: 4096 });
  await formatDeviceStorage(medium.boot(), IDENTITY);
  const disk = await openDeviceStorage(medium.boot(), IDENTITY, 'write');
  const locations: number[] = [];
  for (let extentIndex = 0; extentIndex < 12; extentIndex += 1) {
    const data = seededBytes(5_000 + extentIndex * 9_000, extentIndex);
    locations.push((await disk.writeFragment(fragmentOf(`key-${extentIndex}`, data, extentIndex), data)).locationBytes);
  }
  await disk.flush();
  // Free two records: their units keep stale bytes but are no longer allocated, so a scan must not list them.
  for (const extentIndex of [3, 7]) await disk.deleteFragment({ versionId: VERSION, extentIndex, fragmentIndex: 0, locationBytes: locations[extentIndex] as number });
  await disk.flush();
  const scan = async (expected?: number[]) => {
    const found = [];
    for await (const fragment of disk.scanFragments(expected)) found.push(`${fragment.extentIndex}@${fragment.locationBytes}`);
    return found;
  };
  const truth = await scan();
  assert.deepEqual(truth, locations.filter((_, index) => index !== 3 && index !== 7).map((location, index) => `${index >= 3 ? (index >= 6 ? index + 2 : index + 1) : index}@${location}`));
  assert.deepEqual(await scan(locations), truth, 'the catalog right, stale entries included');
  const wrong = [...locations.map((location) => location + 4096), 0, 8 * 1024 * 1024 - 4096, locations[5] as number];
  assert.deepEqual(await scan(wrong), truth, 'locations inside records, before and past the data region');
  await disk.close();
});
