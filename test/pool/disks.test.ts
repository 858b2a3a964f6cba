import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { isShardpoolError, type ErrorCode } from '../../src/errors.js';
import { drainDisk } from '../../src/maintain/drain.js';
import { Pool } from '../../src/pool/pool.js';
import { parsePolicy } from '../../src/redundancy/policy.js';
import { createTestPool, fragmentFiles, getBuffer, putBuffer, seededBytes } from '../support/test-pool.js';
import { toArray } from '../support/async.js';

const EXTENT_BYTES = 64 * 1024;

function rejectsWith(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isShardpoolError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

async function countAllFragments(diskDirectories: string[]): Promise<number> {
  let count = 0;
  for (const disk of diskDirectories) count += (await fragmentFiles(disk)).length;
  return count;
}

test('a failed disk is never read again and every object still reads back', async (t) => {
  const testPool = await createTestPool(t, { disks: 6, extentSizeBytes: EXTENT_BYTES });
  const objects = [0, 1, 5 * EXTENT_BYTES + 3].map((size, index) => ({ key: `o${index}`, data: seededBytes(size, index + 1) }));
  await testPool.withPool(async (pool) => {
    for (const object of objects) await putBuffer(pool, object.key, object.data);
    await pool.failDisk('2');
  });
  // A failed disk whose files vanish entirely must not matter: it is never opened.
  await fs.rm(testPool.diskDirectories[1] as string, { recursive: true });
  await testPool.withPool(async (pool) => {
    for (const object of objects) assert.ok((await getBuffer(pool, object.key)).equals(object.data));
    const status = await pool.describe();
    assert.equal(status.health, 'degraded');
    assert.equal(status.extentsBelowFullRedundancy, 7, 'the 1-byte object has 1 extent, the other 6');
    // New writes avoid the failed disk, which leaves 5 disks: too few for ec:4+2's 6 fragments.
    await assert.rejects(putBuffer(pool, 'new', seededBytes(10, 1)), rejectsWith('POLICY_NEEDS_MORE_DISKS'));
    await putBuffer(pool, 'new', seededBytes(10, 1), 'ec:3+2');
  });
});

test('remove-disk drains every fragment elsewhere, forgets the disk, and all objects read back', async (t) => {
  const testPool = await createTestPool(t, { disks: 7, extentSizeBytes: EXTENT_BYTES });
  const data = seededBytes(9 * EXTENT_BYTES + 11, 3);
  await testPool.withPool(async (pool) => {
    await putBuffer(pool, 'a', data);
    await putBuffer(pool, 'b', data, 'replica:2');
  });
  const drained = testPool.diskDirectories[0] as string;
  await testPool.withPool(async (pool) => {
    const before = (await fragmentFiles(drained)).length;
    assert.ok(before > 0, 'the disk to drain holds fragments');
    const result = await drainDisk(pool, drained);
    assert.equal(result.moved, before);
    assert.equal(result.rebuilt, 0);
    assert.equal(pool.listMembers().length, 6);
  });
  assert.deepEqual(await fragmentFiles(drained), [], 'a drained disk keeps no fragments');
  await assert.rejects(fs.access(path.join(drained, 'disk.json')), 'its label is released');
  await testPool.withPool(async (pool) => {
    assert.ok((await getBuffer(pool, 'a')).equals(data));
    assert.ok((await getBuffer(pool, 'b')).equals(data));
    assert.equal((await pool.describe()).health, 'healthy');
  }, 'read');
});

test('remove-disk of a failed disk rebuilds its fragments from redundancy', async (t) => {
  const testPool = await createTestPool(t, { disks: 7, extentSizeBytes: EXTENT_BYTES });
  const data = seededBytes(4 * EXTENT_BYTES, 4);
  await testPool.withPool(async (pool) => {
    await putBuffer(pool, 'a', data);
    await pool.failDisk('1');
  });
  await testPool.withPool(async (pool) => {
    const result = await drainDisk(pool, '1');
    assert.equal(result.moved, 0);
    assert.ok(result.rebuilt > 0);
    const status = await pool.describe();
    assert.equal(status.health, 'healthy');
    assert.equal(status.extentsBelowFullRedundancy, 0);
  });
  // Fail another disk: the rebuilt fragments are real, so the object survives two more losses.
  await testPool.withPool(async (pool) => {
    await pool.failDisk('2');
    await pool.failDisk('3');
    assert.ok((await getBuffer(pool, 'a')).equals(data));
  });
});

test('remove-disk is refused, changing nothing, when too few other disks remain for the policy', async (t) => {
  const testPool = await createTestPool(t, { disks: 6, extentSizeBytes: EXTENT_BYTES });
  await testPool.withPool(async (pool) => {
    await putBuffer(pool, 'a', seededBytes(EXTENT_BYTES, 1));
    await assert.rejects(drainDisk(pool, '1'), rejectsWith('POLICY_NEEDS_MORE_DISKS'));
    assert.equal(pool.member(1).row.state, 'healthy');
  });
});

test('overwrite replaces an object atomically and frees the old fragments; rm frees the rest', async (t) => {
  const testPool = await createTestPool(t, { disks: 6, extentSizeBytes: EXTENT_BYTES });
  const large = seededBytes(8 * EXTENT_BYTES, 1);
  const small = seededBytes(100, 2);
  await testPool.withPool(async (pool) => {
    const first = await putBuffer(pool, 'key', large);
    // Each version also leaves three manifest copies (ec:4+2 may lose two disks).
    assert.equal(await countAllFragments(testPool.diskDirectories), 8 * 6 + 3);
    const usedBefore = (await pool.describe()).storedBytes;
    const second = await putBuffer(pool, 'key', small);
    assert.equal(second.replacedVersionId, first.object.versionId);
    assert.ok((await getBuffer(pool, 'key')).equals(small));
    assert.equal(await countAllFragments(testPool.diskDirectories), 6 + 3, 'only the new version remains');
    assert.ok((await pool.describe()).storedBytes < usedBefore / 8);
    await pool.removeObject('key');
    assert.equal(await countAllFragments(testPool.diskDirectories), 0);
    const status = await pool.describe();
    assert.equal(status.objectCount, 0);
    assert.equal(status.storedBytes, 0);
    assert.ok(status.disks.every((disk) => disk.usedBytes === 0 && disk.fragmentCount === 0));
    await assert.rejects(getBuffer(pool, 'key'), rejectsWith('OBJECT_NOT_FOUND'));
    await assert.rejects(pool.removeObject('key'), rejectsWith('OBJECT_NOT_FOUND'));
  });
});

test('add-disk refuses non-empty directories, files, the pool itself, duplicates and other pools\' disks', async (t) => {
  const first = await createTestPool(t, { disks: 1 });
  const second = await createTestPool(t, { disks: 0 });
  const occupied = path.join(first.root, 'occupied');
  await fs.mkdir(occupied);
  await fs.writeFile(path.join(occupied, 'precious.txt'), 'do not touch');
  const plainFile = path.join(first.root, 'plain-file');
  await fs.writeFile(plainFile, 'x');
  const insidePool = path.join(first.directory, 'inside');
  await fs.mkdir(insidePool);
  await first.withPool(async (pool) => {
    await assert.rejects(pool.addDisk(occupied), rejectsWith('DISK_NOT_EMPTY'));
    await assert.rejects(pool.addDisk(plainFile), rejectsWith('DEVICE_FLAG_REQUIRED'));
    await assert.rejects(pool.addDisk(insidePool), rejectsWith('DISK_NOT_EMPTY'));
    await assert.rejects(pool.addDisk(path.join(first.root, 'missing')), rejectsWith('DISK_NOT_FOUND'));
    await assert.rejects(pool.addDisk(first.diskDirectories[0] as string), rejectsWith('DISK_ALREADY_IN_POOL'));
  });
  await second.withPool(async (pool) => {
    await assert.rejects(pool.addDisk(first.diskDirectories[0] as string), rejectsWith('DISK_BELONGS_TO_OTHER_POOL'));
  });
  assert.equal(await fs.readFile(path.join(occupied, 'precious.txt'), 'utf8'), 'do not touch');
  assert.deepEqual(await fs.readdir(occupied), ['precious.txt'], 'nothing was written into a refused directory');
});

test('a policy that needs more disks than the pool has is refused before anything is written', async (t) => {
  const testPool = await createTestPool(t, { disks: 3 });
  await testPool.withPool(async (pool) => {
    await assert.rejects(putBuffer(pool, 'a', seededBytes(10, 1), 'ec:4+2'), (error: unknown) => {
      assert.ok(isShardpoolError(error, 'POLICY_NEEDS_MORE_DISKS'));
      assert.match(error.message, /needs 6 healthy disks, the pool has 3/);
      return true;
    });
    assert.equal(await countAllFragments(testPool.diskDirectories), 0);
    assert.equal((await toArray(pool.listObjects())).length, 0);
    await pool.put('b', [seededBytes(10, 1)], { policy: parsePolicy('replica:3') });
  });
});

test('a disk that went missing is reported offline, reads degrade around it, and it returns when remounted', async (t) => {
  const testPool = await createTestPool(t, { disks: 6, extentSizeBytes: EXTENT_BYTES });
  const data = seededBytes(3 * EXTENT_BYTES, 5);
  await testPool.withPool((pool) => putBuffer(pool, 'a', data));
  const disk = testPool.diskDirectories[3] as string;
  await fs.rename(disk, `${disk}.unmounted`);
  await testPool.withPool(async (pool) => {
    const status = await pool.describe();
    const offline = status.disks.find((candidate) => candidate.id === 4);
    assert.equal(offline?.online, false);
    assert.equal(status.health, 'degraded');
    assert.ok((await getBuffer(pool, 'a')).equals(data));
  }, 'read');
  await fs.rename(`${disk}.unmounted`, disk);
  const pool = await Pool.open(testPool.directory, { access: 'read', lockWaitMs: 0 });
  try {
    assert.equal((await pool.describe()).health, 'healthy');
  } finally {
    await pool.close();
  }
});
