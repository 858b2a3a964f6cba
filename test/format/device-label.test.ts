import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEVICE_LABEL_BYTES,
  chooseDeviceLabel,
  decodeDeviceLabelCopy,
  deviceLabelOffsets,
  encodeDeviceLabel,
  NO_CHECKPOINT_SLOT,
  type DeviceLabel,
} from '../../src/format/device-label.js';
import { planDeviceRegions } from '../../src/format/device-layout.js';
import { seededRandom, testSeed } from '../support/seeded-random.js';

const LABEL: DeviceLabel = {
  formatVersion: 2,
  sequence: 7,
  deviceSizeBytes: 1024 * 1024 * 1024,
  logicalSectorBytes: 4096,
  physicalSectorBytes: 4096,
  createdAtMs: 1_790_000_000_000,
  poolUuid: '11111111-2222-4333-8444-555555555555',
  deviceUuid: '66666666-7777-4888-9999-aaaaaaaaaaaa',
  regions: planDeviceRegions(1024 * 1024 * 1024),
  activeCheckpointSlot: NO_CHECKPOINT_SLOT,
  journalSequence: 1,
};

test('regions are laid out in order inside the device, and a label with overlapping regions is refused', () => {
  for (const size of [64 * 1024 * 1024, 1024 * 1024 * 1024, 4 * 1024 ** 4]) {
    const regions = planDeviceRegions(size);
    assert.ok(regions.journalOffsetBytes >= 8192);
    assert.ok(regions.checkpointSlotOffsetsBytes[0] >= regions.journalOffsetBytes + regions.journalLengthBytes);
    assert.ok(regions.dataOffsetBytes >= regions.checkpointSlotOffsetsBytes[1] + regions.checkpointSlotLengthBytes);
    assert.ok(regions.dataOffsetBytes + regions.dataUnits * regions.allocationUnitBytes <= size - 4096);
    assert.equal(regions.dataOffsetBytes % regions.allocationUnitBytes, 0);
  }
  const overlapping = { ...LABEL, regions: { ...LABEL.regions, dataOffsetBytes: LABEL.regions.journalOffsetBytes } };
  assert.equal(decodeDeviceLabelCopy(encodeDeviceLabel(overlapping, 0), 0).state, 'invalid');
});

test('label copies sit at 0, 4096 and the last whole 4 KiB block', () => {
  assert.deepEqual(deviceLabelOffsets(1024 * 1024), [0, 4096, 1024 * 1024 - 4096]);
  assert.deepEqual(deviceLabelOffsets(1024 * 1024 + 1000), [0, 4096, 1024 * 1024 - 4096]);
});

test('a label copy round-trips and knows where it was written', () => {
  const bytes = encodeDeviceLabel(LABEL, 4096);
  assert.equal(bytes.length, DEVICE_LABEL_BYTES);
  assert.deepEqual(decodeDeviceLabelCopy(bytes, 4096), { state: 'valid', label: LABEL, locationBytes: 4096 });
  const misdirected = decodeDeviceLabelCopy(bytes, 0);
  assert.equal(misdirected.state, 'invalid', 'a copy read from another offset than it was written to is rejected');
  assert.equal(decodeDeviceLabelCopy(Buffer.alloc(DEVICE_LABEL_BYTES), 0).state, 'absent');
});

test('the open rule: highest valid sequence wins; damaged copies are outvoted; all damaged is unreadable', () => {
  const copy = (sequence: number, offset: number) => decodeDeviceLabelCopy(encodeDeviceLabel({ ...LABEL, sequence }, offset), offset);
  const torn = (offset: number) => {
    const bytes = encodeDeviceLabel(LABEL, offset);
    bytes.fill(0, 2048); // the second half of the block never reached the medium
    return decodeDeviceLabelCopy(bytes, offset);
  };
  const newer = chooseDeviceLabel([copy(8, 0), copy(7, 4096), copy(7, 8192)]);
  assert.equal(newer.state === 'labelled' && newer.label.sequence, 8, 'a rewrite in progress: the new copy wins');
  const tornOne = chooseDeviceLabel([torn(0), copy(7, 4096), copy(7, 8192)]);
  assert.ok(tornOne.state === 'labelled' && tornOne.damagedCopies === 1 && tornOne.label.sequence === 7);
  assert.equal(chooseDeviceLabel([torn(0), torn(4096), torn(8192)]).state, 'unreadable');
  assert.equal(chooseDeviceLabel([{ state: 'absent' }, { state: 'absent' }, { state: 'absent' }]).state, 'unlabelled');
  const newerFormat = encodeDeviceLabel({ ...LABEL, formatVersion: 3 }, 0);
  const verdict = chooseDeviceLabel([decodeDeviceLabelCopy(newerFormat, 0)]);
  assert.ok(verdict.state === 'unreadable' && verdict.newerVersion, 'a newer device format is recognised as such');
  const olderFormat = encodeDeviceLabel({ ...LABEL, formatVersion: 1 }, 0);
  const older = chooseDeviceLabel([decodeDeviceLabelCopy(olderFormat, 0)]);
  assert.ok(older.state === 'unreadable' && /predates/.test(older.why), 'a pre-allocator label asks to re-add the device');
});

test('fuzzed label copies decode to a verdict value, never an exception or a wrong label', () => {
  const seed = testSeed();
  const random = seededRandom(seed);
  const original = encodeDeviceLabel(LABEL, 0);
  for (let iteration = 0; iteration < 3000; iteration += 1) {
    const bytes = Buffer.from(original);
    const flips = 1 + Math.floor(random() * 4);
    for (let flip = 0; flip < flips; flip += 1) {
      const at = Math.floor(random() * bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ (1 + Math.floor(random() * 255));
    }
    const truncated = random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
    const decoded = decodeDeviceLabelCopy(truncated, 0);
    if (decoded.state === 'valid') {
      assert.ok(truncated.subarray(0, 4064).equals(original.subarray(0, 4064)), `seed ${seed} iteration ${iteration}`);
      assert.deepEqual(decoded.label, LABEL);
    }
  }
});
