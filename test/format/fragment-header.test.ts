import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import {
  decodeFragmentHeader,
  encodeFragmentHeader,
  fragmentHeaderLengthBytes,
  verifyFragmentData,
  verifyFragmentIdentity,
  type FragmentHeader,
} from '../../src/format/fragment-header.js';
import { checksum128 } from '../../src/redundancy/checksum.js';
import { seededRandom, testSeed } from '../support/seeded-random.js';

const FIXTURE_V1 = new URL('../../../test/fixtures/format/v1/fragment.frag', import.meta.url);

function sampleHeader(key: string, data: Buffer): FragmentHeader {
  return {
    poolUuid: '0d8f3b1e-4a3c-4c1e-9f55-0a1b2c3d4e5f',
    diskUuid: '9b7e2a10-5c4d-4e3f-8a2b-1c0d9e8f7a6b',
    versionId: '3c2b1a09-8f7e-4d6c-9b5a-493827160504',
    key,
    policy: { kind: 'ec', dataFragments: 8, parityFragments: 3 },
    extentIndex: 123_456,
    extentLengthBytes: 1024 * 1024,
    fragmentIndex: 10,
    dataLengthBytes: data.length,
    locationBytes: 0,
    extentChecksum: checksum128(Buffer.from('extent')),
    dataChecksum: checksum128(data),
  };
}

test('fragment headers round-trip with ASCII, multi-byte and 1024-byte keys', () => {
  for (const key of ['a', 'photos/cat.jpg', 'ключ/鍵/🔑', 'k'.repeat(1024)]) {
    const header = sampleHeader(key, Buffer.from('data'));
    const bytes = encodeFragmentHeader(header);
    assert.equal(bytes.length, fragmentHeaderLengthBytes(key));
    assert.deepEqual(decodeFragmentHeader(Buffer.concat([bytes, Buffer.from('data')]), 'test'), header);
  }
});

test('the format v1 fixture still decodes, field for field', async () => {
  const bytes = await fs.readFile(FIXTURE_V1);
  const header = decodeFragmentHeader(bytes, 'fixture v1');
  assert.equal(header.key, 'photos/2026/cat 🐈.jpg');
  assert.equal(header.poolUuid, '11111111-2222-4333-8444-555555555555');
  assert.equal(header.diskUuid, '66666666-7777-4888-9999-aaaaaaaaaaaa');
  assert.equal(header.versionId, 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff');
  assert.deepEqual(header.policy, { kind: 'ec', dataFragments: 4, parityFragments: 2 });
  assert.equal(header.extentIndex, 3);
  assert.equal(header.extentLengthBytes, 1024 * 1024);
  assert.equal(header.fragmentIndex, 5);
  const data = bytes.subarray(fragmentHeaderLengthBytes(header.key));
  assert.equal(data.toString(), 'fragment data of the v1 fixture\n');
  verifyFragmentData(header, data, 'fixture v1');
});

test('identity and data verification catch misdirected, stale and corrupt fragments', () => {
  const data = Buffer.from('some fragment data');
  const header = sampleHeader('k', data);
  const identity = {
    poolUuid: header.poolUuid,
    diskUuid: header.diskUuid,
    versionId: header.versionId,
    extentIndex: header.extentIndex,
    fragmentIndex: header.fragmentIndex,
  };
  verifyFragmentIdentity(header, identity, 'test');
  for (const [field, value] of Object.entries({
    poolUuid: '00000000-0000-4000-8000-000000000000',
    diskUuid: '00000000-0000-4000-8000-000000000001',
    versionId: '00000000-0000-4000-8000-000000000002',
    extentIndex: 1,
    fragmentIndex: 0,
  })) {
    assert.throws(
      () => verifyFragmentIdentity(header, { ...identity, [field]: value }, 'test'),
      (error: unknown) => isShardpoolError(error, 'FRAGMENT_IDENTITY_MISMATCH') && error.message.includes(field),
    );
  }
  verifyFragmentData(header, data, 'test');
  const flipped = Buffer.from(data);
  flipped[3] = (flipped[3] ?? 0) ^ 1;
  assert.throws(() => verifyFragmentData(header, flipped, 'test'), (error: unknown) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
  assert.throws(() => verifyFragmentData(header, data.subarray(1), 'test'), (error: unknown) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
});

type Mutation = (bytes: Buffer, random: () => number) => Buffer;

const MUTATIONS: Record<string, Mutation> = {
  truncate: (bytes, random) => bytes.subarray(0, Math.floor(random() * bytes.length)),
  flipBit: (bytes, random) => {
    const copy = Buffer.from(bytes);
    const at = Math.floor(random() * copy.length);
    copy[at] = (copy[at] ?? 0) ^ (1 << Math.floor(random() * 8));
    return copy;
  },
  overwriteByte: (bytes, random) => {
    const copy = Buffer.from(bytes);
    const at = Math.floor(random() * copy.length);
    const value = Math.floor(random() * 256);
    copy[at] = value === copy[at] ? (value + 1) % 256 : value;
    return copy;
  },
  wrongMagic: (bytes) => Buffer.concat([Buffer.from('NOTFRAG!'), bytes.subarray(8)]),
  newerVersion: (bytes) => {
    const copy = Buffer.from(bytes);
    copy.writeUInt16LE(2, 8);
    return copy;
  },
  randomBytes: (_bytes, random) => Buffer.from(Array.from({ length: Math.floor(random() * 400) }, () => Math.floor(random() * 256))),
  hugeKeyLength: (bytes) => {
    const copy = Buffer.from(bytes);
    copy.writeUInt16LE(0xffff, 12);
    return copy;
  },
};

test('fuzzed headers are always FRAGMENT_HEADER_INVALID, never a crash or a wrong header', () => {
  const seed = testSeed();
  const random = seededRandom(seed);
  const names = Object.keys(MUTATIONS);
  const data = Buffer.from('data');
  const original = encodeFragmentHeader(sampleHeader('fuzz/key/✓', data));
  const iterations = Number(process.env.SHARDPOOL_FUZZ_ITERATIONS ?? 5000);
  for (let iteration = 0; iteration < iterations; iteration += 1) {
    const name = names[Math.floor(random() * names.length)] as string;
    const mutated = (MUTATIONS[name] as Mutation)(original, random);
    try {
      const decoded = decodeFragmentHeader(mutated, 'fuzz');
      // Only a mutation that left the header bytes intact may decode, and then to the original header.
      assert.ok(mutated.subarray(0, original.length).equals(original), `seed ${seed} iteration ${iteration} (${name}) decoded a changed header`);
      assert.deepEqual(decoded, sampleHeader('fuzz/key/✓', data));
    } catch (error) {
      assert.ok(
        isShardpoolError(error, 'FRAGMENT_HEADER_INVALID'),
        `seed ${seed} iteration ${iteration} (${name}): ${String(error)}`,
      );
    }
  }
});
