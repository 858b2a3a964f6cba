// Garbage collection beside other work: one collector per version, pins respected, background collections awaited.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pool } from '../../src/pool/pool.js';
import { createTestPool, getBuffer, putBuffer, seededBytes } from '../support/test-pool.js';

/** Counts deleteFragment calls per fragment address on every member disk. */
function countDeletes(pool: Pool): Map<string, number> {
  const counts = new Map<string, number>();
  for (const member of pool.listMembers()) {
    const disk = member.disk;
    if (!disk) continue;
    const original = disk.deleteFragment.bind(disk);
    disk.deleteFragment = async (fragment) => {
      const address = `${fragment.versionId}.${fragment.extentIndex}.${fragment.fragmentIndex}`;
      counts.set(address, (counts.get(address) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 5)); // keep the collection in flight a while
      return original(fragment);
    };
  }
  return counts;
}

test('one garbage version is collected once even when several collections of it start at once', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const first = await putBuffer(pool, 'hot', seededBytes(200_000, 1));
    const reader = await pool.openObject('hot'); // pins the first version
    await putBuffer(pool, 'hot', seededBytes(100_000, 2));
    await putBuffer(pool, 'other', seededBytes(10_000, 3));
    assert.ok((await pool.catalog.isGarbage(first.object.versionId)), 'the overwritten version waits for its reader');
    const deletes = countDeletes(pool);
    reader.close(); // the last pin goes: a background collection starts
    const a = pool.collectVersion(first.object.versionId);
    const b = pool.collectVersion(first.object.versionId);
    assert.equal(a, b, 'a second collection of a version in flight joins the first');
    const removal = pool.removeObject('other'); // used to collect every garbage version again
    await Promise.all([a, b, removal]);
    await pool.settleBackgroundWork();
    assert.equal((await pool.catalog.isGarbage(first.object.versionId)), false);
    const firstVersionDeletes = [...deletes].filter(([address]) => address.startsWith(first.object.versionId));
    // Its fragments and its two manifest copies.
    assert.equal(firstVersionDeletes.length, first.object.extentCount * 3 + 2, 'every fragment of the version was deleted');
    for (const [address, count] of firstVersionDeletes) assert.equal(count, 1, `fragment ${address} deleted once, not ${count} times`);
    assert.ok(seededBytes(100_000, 2).equals(await getBuffer(pool, 'hot')));
  });
});

test('a reader opened before an overwrite reads the old version to its end, pinned from the moment it opened', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const old = seededBytes(300_000, 4);
    await putBuffer(pool, 'k', old);
    const reader = await pool.openObject('k'); // not pulled yet: a copy that waits for the gate looks like this
    await putBuffer(pool, 'k', seededBytes(1000, 5));
    await pool.removeObject('k');
    const chunks: Buffer[] = [];
    for await (const chunk of reader.chunks()) chunks.push(chunk);
    assert.ok(Buffer.concat(chunks).equals(old), 'the old version was still whole');
    await pool.settleBackgroundWork();
    assert.deepEqual((await pool.catalog.listGarbage()), [], 'released at the end of the read, then collected');
  });
});

test('closing the pool waits for a background collection in flight', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  const pool = await testPool.open();
  await putBuffer(pool, 'k', seededBytes(200_000, 6));
  const reader = await pool.openObject('k');
  await putBuffer(pool, 'k', seededBytes(200_000, 7));
  const deletes = countDeletes(pool);
  reader.close();
  await pool.close();
  assert.ok(deletes.size > 0, 'the collection ran before the disks closed');
  const reopened = await testPool.open();
  try {
    assert.deepEqual((await reopened.catalog.listGarbage()), [], 'and finished');
  } finally {
    await reopened.close();
  }
});
