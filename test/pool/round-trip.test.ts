import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicy } from '../../src/redundancy/policy.js';
import { createTestPool, getBuffer, putBuffer, seededBytes } from '../support/test-pool.js';

const POLICIES = ['replica:1', 'replica:3', 'ec:2+1', 'ec:4+2', 'ec:8+3'];
const EXTENT_BYTES = 64 * 1024;

/** Yields `data` in uneven pieces, as a pipe or socket would, so extent cutting is exercised across chunk edges. */
async function* unevenChunks(data: Buffer, seed: number): AsyncGenerator<Buffer> {
  let state = seed;
  for (let offset = 0; offset < data.length; ) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const length = 1 + (state % (3 * EXTENT_BYTES));
    yield data.subarray(offset, offset + length);
    offset += length;
  }
}

test('objects at extent boundaries round-trip byte for byte under every policy', async (t) => {
  const sizes = [0, 1, EXTENT_BYTES - 1, EXTENT_BYTES, EXTENT_BYTES + 1, 3 * EXTENT_BYTES + 17];
  const testPool = await createTestPool(t, { disks: 11, extentSizeBytes: EXTENT_BYTES });
  await testPool.withPool(async (pool) => {
    for (const policy of POLICIES) {
      for (const size of sizes) {
        const key = `edge/${policy}/${size}`;
        const data = seededBytes(size, size + 1);
        await pool.put(key, unevenChunks(data, size), { policy: parsePolicy(policy) });
        const object = await pool.statObject(key);
        assert.equal(object.sizeBytes, size);
        assert.equal(object.policy, policy);
        assert.equal(object.extentCount, Math.ceil(size / EXTENT_BYTES));
        const back = await getBuffer(pool, key);
        assert.ok(back.equals(data), `${key} reads back identical`);
      }
    }
  });
  // And again from a fresh, read-only open: nothing depended on in-process state.
  await testPool.withPool(async (pool) => {
    for (const policy of POLICIES) {
      for (const size of sizes) {
        const back = await getBuffer(pool, `edge/${policy}/${size}`);
        assert.ok(back.equals(seededBytes(size, size + 1)), `edge/${policy}/${size} reads back after reopen`);
      }
    }
  }, 'read');
});

test('random sizes up to 64 MiB round-trip under every policy with 1 MiB extents', async (t) => {
  const seed = Number(process.env.SHARDPOOL_TEST_SEED ?? Date.now() % 100_000);
  const testPool = await createTestPool(t, { disks: 11, extentSizeBytes: 1024 * 1024 });
  await testPool.withPool(async (pool) => {
    for (const [index, policy] of POLICIES.entries()) {
      // The largest size is the limit itself once; the rest are seeded random sizes below it.
      const size = index === 0 ? 64 * 1024 * 1024 : (seed * 7919 * (index + 1)) % (64 * 1024 * 1024);
      const data = seededBytes(size, seed + index);
      await putBuffer(pool, `random/${policy}`, data, policy);
      const back = await getBuffer(pool, `random/${policy}`);
      assert.equal(back.length, size, `seed ${seed}: ${policy} size ${size}`);
      assert.ok(back.equals(data), `seed ${seed}: ${policy} of ${size} bytes reads back identical`);
    }
  });
});

test('a get of intact extents reads just the fragments the policy needs, data fragments only', async (t) => {
  const { setDiskIoObserver } = await import('../../src/disk/metered-disk.js');
  const testPool = await createTestPool(t, { disks: 6, extentSizeBytes: EXTENT_BYTES });
  await testPool.withPool(async (pool) => {
    for (const [policy, perExtent] of [['ec:4+2', 4], ['ec:2+1', 2], ['replica:3', 1]] as const) {
      const data = seededBytes(10 * EXTENT_BYTES + 5, 3);
      await pool.put(`reads/${policy}`, [data], { policy: parsePolicy(policy) });
      let reads = 0;
      setDiskIoObserver((event) => {
        if (event.operation === 'read') reads += 1;
      });
      try {
        assert.ok((await getBuffer(pool, `reads/${policy}`)).equals(data));
      } finally {
        setDiskIoObserver(undefined);
      }
      assert.equal(reads, 11 * perExtent, `${policy}: ${perExtent} fragment reads per extent`);
    }
  });
});
