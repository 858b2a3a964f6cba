// A pool held open by one long-running process (the daemon): reads that overlap overwrites and deletes, range reads,
// and the keys reserved for shardpool's own use.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTestPool, getBuffer, putBuffer, seededBytes } from '../support/test-pool.js';
import { toArray } from '../support/async.js';

test('a GET streaming an object survives an overwrite and a delete that commit meanwhile', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+2', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const original = seededBytes(20 * 64 * 1024 + 123, 1);
    await putBuffer(pool, 'doc', original);
    const oldVersion = (await pool.catalog.getObject('doc'))?.versionId as string;
    const chunks = (await pool.openObject('doc')).chunks();
    const first = await chunks.next();
    assert.equal(first.done, false);
    // Overwrite, then delete, while the first reader is between extents: its version is queued as garbage but
    // pinned, so its fragments stay until it is done.
    const replacement = seededBytes(5000, 2);
    await putBuffer(pool, 'doc', replacement);
    assert.deepEqual(await getBuffer(pool, 'doc'), replacement);
    await pool.removeObject('doc');
    assert.ok((await pool.catalog.isGarbage(oldVersion)), 'the old version waits for its reader');
    const rest: Buffer[] = [first.value as Buffer];
    for await (const chunk of { [Symbol.asyncIterator]: () => chunks }) rest.push(chunk);
    assert.deepEqual(Buffer.concat(rest), original);
    // The last reader's release collected the garbage.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await pool.catalog.isGarbage(oldVersion)), false);
    assert.equal((await pool.catalog.fragmentsOfVersion(oldVersion)).length, 0);
  });
});

test('range reads return exactly the bytes asked for, across extent boundaries', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+2', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const data = seededBytes(5 * 64 * 1024 + 77, 3);
    await putBuffer(pool, 'ranged', data);
    const size = data.length;
    for (const [start, end] of [[0, 1], [0, size], [65535, 65537], [64 * 1024, 2 * 64 * 1024], [size - 1, size], [100, 100], [3 * 65536 + 5, size]] as const) {
      const parts: Buffer[] = [];
      for await (const chunk of (await pool.openObject('ranged', { startByte: start, endByteExclusive: end })).chunks()) parts.push(chunk);
      assert.deepEqual(Buffer.concat(parts), data.subarray(start, end), `bytes ${start}..${end}`);
    }
  });
});

test('keys under .shardpool/ are reserved: users cannot put them and listings leave them out', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+2' });
  await testPool.withPool(async (pool) => {
    await assert.rejects(putBuffer(pool, '.shardpool/multipart/x', Buffer.from('no')), { code: 'KEY_INVALID' });
    await pool.put('.shardpool/multipart/u/00001', [Buffer.from('part')], { internal: true });
    await putBuffer(pool, 'visible', Buffer.from('yes'));
    assert.deepEqual((await toArray(pool.listObjects())).map((object) => object.key), ['visible']);
    assert.deepEqual((await toArray(pool.listObjects('.shardpool/'))).map((object) => object.key), ['.shardpool/multipart/u/00001']);
  });
});
