import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import { checksum128 } from '../../src/redundancy/checksum.js';
import { createCodec } from '../../src/redundancy/create-codec.js';
import { faultTolerance, parsePolicy } from '../../src/redundancy/policy.js';
import { seededRandom, testSeed } from '../support/seeded-random.js';
import { seededBytes } from '../support/test-pool.js';

const POLICIES = ['replica:1', 'replica:3', 'ec:2+1', 'ec:4+2', 'ec:8+3', 'ec:24+6'];
const LENGTHS = [0, 1, 7, 8, 9, 4096, 65536 + 13, 1024 * 1024];

/** Every subset of {0..n-1} with exactly `size` members (small n only). */
function subsets(n: number, size: number): number[][] {
  if (size === 0) return [[]];
  const result: number[][] = [];
  for (let first = 0; first < n; first += 1) {
    for (const rest of subsets(n, size - 1)) if (rest.every((index) => index > first)) result.push([first, ...rest]);
  }
  return result;
}

function randomSubset(n: number, size: number, random: () => number): number[] {
  const indexes = Array.from({ length: n }, (_, index) => index);
  for (let index = n - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [indexes[index], indexes[other]] = [indexes[other] as number, indexes[index] as number];
  }
  return indexes.slice(0, size);
}

for (const policyText of POLICIES) {
  test(`${policyText}: encode gives equal-length fragments and decode with all of them returns the extent`, async () => {
    const codec = createCodec(parsePolicy(policyText));
    for (const length of LENGTHS) {
      const extent = seededBytes(length, length + 5);
      const copy = Buffer.from(extent);
      const fragments = await codec.encode(extent);
      assert.equal(fragments.length, codec.fragmentCount);
      for (const fragment of fragments) assert.equal(fragment.length, codec.fragmentLengthBytes(length));
      assert.ok(extent.equals(copy), 'encode does not mutate the extent');
      assert.ok((await codec.decode(fragments, length)).equals(extent), `${policyText} length ${length}`);
    }
  });

  test(`${policyText}: any M missing fragments are tolerated, M+1 are EXTENT_UNRECOVERABLE`, async () => {
    const seed = testSeed();
    const random = seededRandom(seed);
    const policy = parsePolicy(policyText);
    const codec = createCodec(policy);
    const tolerance = faultTolerance(policy);
    const n = codec.fragmentCount;
    for (const length of [1, 4096, 65536 + 13]) {
      const extent = seededBytes(length, length);
      const fragments = await codec.encode(extent);
      const copies = fragments.map((fragment) => Buffer.from(fragment));
      const lossSets =
        n <= 6
          ? Array.from({ length: tolerance + 1 }, (_, size) => subsets(n, size)).flat()
          : Array.from({ length: 200 }, () => randomSubset(n, 1 + Math.floor(random() * tolerance), random));
      for (const lost of lossSets) {
        const surviving = fragments.map((fragment, index) => (lost.includes(index) ? undefined : fragment));
        const decoded = await codec.decode(surviving, length);
        assert.ok(decoded.equals(extent), `seed ${seed}: ${policyText} length ${length} without ${lost.join(',')}`);
        if (lost.length > 0) {
          const rebuilt = await codec.reconstruct(surviving, length, lost);
          for (const index of lost) {
            assert.ok(rebuilt.get(index)?.equals(copies[index] as Buffer), `seed ${seed}: fragment ${index} rebuilt exactly`);
          }
        }
      }
      fragments.forEach((fragment, index) => assert.ok(fragment.equals(copies[index] as Buffer), 'inputs not mutated'));
      const tooMany = randomSubset(n, tolerance + 1, random);
      const surviving = fragments.map((fragment, index) => (tooMany.includes(index) ? undefined : fragment));
      await assert.rejects(codec.decode(surviving, length), (error: unknown) => isShardpoolError(error, 'EXTENT_UNRECOVERABLE'));
      await assert.rejects(codec.reconstruct(surviving, length, tooMany), (error: unknown) =>
        isShardpoolError(error, 'EXTENT_UNRECOVERABLE'),
      );
    }
  });
}

test('a fragment of the wrong length counts as missing, not as data', async () => {
  const codec = createCodec(parsePolicy('ec:4+2'));
  const extent = seededBytes(10_000, 1);
  const fragments = await codec.encode(extent);
  const damaged = fragments.map((fragment, index) => (index === 0 ? fragment.subarray(1) : fragment));
  assert.ok((await codec.decode(damaged, extent.length)).equals(extent));
});

test('policies parse in their textual form and refuse everything else with POLICY_INVALID', () => {
  assert.deepEqual(parsePolicy('replica:3'), { kind: 'replica', copies: 3 });
  assert.deepEqual(parsePolicy('ec:4+2'), { kind: 'ec', dataFragments: 4, parityFragments: 2 });
  assert.deepEqual(parsePolicy('ec:24+6'), { kind: 'ec', dataFragments: 24, parityFragments: 6 });
  for (const text of ['replica:0', 'replica:9', 'ec:0+1', 'ec:25+1', 'ec:4+0', 'ec:4+7', 'ec:4-2', '', ' ec:4+2', 'EC:4+2', 'raid6']) {
    assert.throws(() => parsePolicy(text), (error: unknown) => isShardpoolError(error, 'POLICY_INVALID'), text);
  }
});

test('checksum128 covers the concatenation of its parts and notices a one-bit flip', () => {
  const data = seededBytes(100_000, 2);
  const whole = checksum128(data);
  assert.equal(whole.length, 16);
  assert.ok(checksum128(data.subarray(0, 333), data.subarray(333)).equals(whole));
  const flipped = Buffer.from(data);
  flipped[54_321] = (flipped[54_321] ?? 0) ^ 0x10;
  assert.ok(!checksum128(flipped).equals(whole));
});

test('checksum128 is xxh3-128 as an independent implementation (hash-wasm) computes it, for any length and view', async () => {
  const { createXXHash128 } = await import('hash-wasm');
  const reference = await createXXHash128();
  const backing = seededBytes(300_000, 3);
  // Empty, the xxh3 size classes (≤16, ≤128, ≤240, long), stripes and blocks, odd offsets into a larger buffer.
  for (const length of [0, 1, 3, 16, 17, 128, 129, 240, 241, 1024, 1025, 65_536, 262_144 + 7]) {
    for (const offset of [0, 1, 13]) {
      const view = backing.subarray(offset, offset + length);
      reference.init();
      reference.update(view);
      const expected = Buffer.from(reference.digest('binary'));
      assert.ok(checksum128(view).equals(expected), `length ${length} at offset ${offset}`);
      const cut = Math.floor(length / 3);
      assert.ok(checksum128(view.subarray(0, cut), new Uint8Array(0), view.subarray(cut)).equals(expected), `parts of ${length}`);
    }
  }
  // The published xxh3-128 of empty input (seed 0).
  assert.equal(checksum128(Buffer.alloc(0)).toString('hex'), '99aa06d3014798d86001c324468d497f');
});

for (const policyText of POLICIES) {
  test(`${policyText}: fragments placed in their assembly slots decode without a copy; a missing one still decodes`, async () => {
    const codec = createCodec(parsePolicy(policyText));
    for (const length of [1, 4096, 65536 + 13, 1024 * 1024]) {
      const extent = seededBytes(length, length + 11);
      const fragments = await codec.encode(extent);
      const assembly = Buffer.alloc(codec.assemblyBytes(length));
      const placed = fragments.map((fragment, index) => {
        const slot = codec.slotOf(assembly, index, length);
        if (!slot) return fragment;
        assert.equal(slot.length, fragment.length, 'a slot has the fragment length');
        fragment.copy(slot);
        return slot;
      });
      const decoded = await codec.decode(placed, length);
      assert.ok(decoded.equals(extent), `${length} bytes decode`);
      assert.equal(decoded.buffer, assembly.buffer, 'decoded in place: a view of the assembly');
      // Fragment 0 lost: rebuilt from the rest, into new memory.
      if (codec.fragmentCount - 1 < codec.fragmentsNeeded) continue;
      const degraded = await codec.decode([undefined, ...placed.slice(1)], length);
      assert.ok(degraded.equals(extent), `${length} bytes decode without fragment 0`);
    }
  });
}
