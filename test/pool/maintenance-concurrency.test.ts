// Maintenance beside object writes: the gate never makes one wait for the other, and what makes that safe holds —
// a drain waits for puts that may still place fragments on its disk, moves keep readers whole, recover never
// mistakes a put in flight for an orphan.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import { drainDisk } from '../../src/maintain/drain.js';
import { recoverPool } from '../../src/maintain/recover.js';
import { PoolGate } from '../../src/serve/pool-gate.js';
import { createTestPool, getBuffer, putBuffer, seededBytes } from '../support/test-pool.js';

/** A source that yields `first`, then waits until `release()` before yielding `rest`. */
function heldSource(first: Buffer, rest: Buffer) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let yieldedFirst!: () => void;
  const started = new Promise<void>((resolve) => (yieldedFirst = resolve));
  async function* source() {
    yield first;
    yieldedFirst();
    await released;
    yield rest;
  }
  return { source: source(), started, release };
}

const turns = async (count = 30) => {
  for (let turn = 0; turn < count; turn += 1) await new Promise((resolve) => setImmediate(resolve));
};

test('the gate: maintenance never waits for a stalled write, and writes never wait for maintenance', async () => {
  const gate = new PoolGate();
  let endStalled!: () => void;
  const stalled = gate.shared(() => new Promise<void>((resolve) => (endStalled = resolve)));
  let endMaintenance!: () => void;
  let maintenanceStarted = false;
  const maintenance = gate.maintenance(async () => {
    maintenanceStarted = true;
    await new Promise<void>((resolve) => (endMaintenance = resolve));
  });
  await turns();
  assert.ok(maintenanceStarted, 'maintenance started beside the stalled write');
  assert.equal(await gate.shared(async () => 'done'), 'done', 'a new write runs while maintenance holds');
  const order: string[] = [];
  const second = gate.maintenance(async () => void order.push('second'));
  await turns();
  assert.deepEqual(order, [], 'maintenance runs one at a time');
  endMaintenance();
  await Promise.all([maintenance, second]);
  assert.deepEqual(order, ['second']);
  let idle = false;
  const idled = gate.idle().then(() => (idle = true));
  await turns();
  assert.equal(idle, false, 'idle waits for the write still in flight');
  endStalled();
  await Promise.all([stalled, idled]);
});

test('a drain waits for the puts that chose its disk before it began draining, then moves their fragments too', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const first = seededBytes(3 * 64 * 1024, 1);
    const rest = seededBytes(5 * 64 * 1024 + 17, 2);
    const held = heldSource(first, rest);
    // With ec:2+1 on 4 disks, every put of several extents touches every disk.
    const put = pool.put('in-flight', held.source);
    await held.started;
    let drained = false;
    const drain = drainDisk(pool, '1').then((result) => {
      drained = true;
      return result;
    });
    await turns(50);
    assert.equal(drained, false, 'the drain waits for the put in flight');
    held.release();
    await put;
    await drain;
    assert.equal((await pool.catalog.countFragmentsOnDisk(1)), 0, 'nothing is left on the drained disk');
    assert.ok(Buffer.concat([first, rest]).equals(await getBuffer(pool, 'in-flight')));
  });
});

test('a reader keeps reading while a drain moves its fragments and deletes their old copies', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const data = seededBytes(40 * 64 * 1024, 3);
    await putBuffer(pool, 'moving', data);
    const reader = await pool.openObject('moving');
    const chunks = reader.chunks();
    const firstChunk = await chunks.next(); // the reader holds every extent's old locations from here on
    const drained = await drainDisk(pool, '1');
    assert.ok(drained.moved + drained.rebuilt > 0);
    const read: Buffer[] = [firstChunk.value as Buffer];
    for await (const chunk of chunks) read.push(chunk);
    assert.ok(Buffer.concat(read).equals(data), 'read whole, looking again where moved fragments went');
  });
});

test('a drained disk is closed only after the calls already made on it end; later calls are refused as DISK_OFFLINE', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    await putBuffer(pool, 'scanned', seededBytes(6 * 64 * 1024, 4));
    const disk = pool.member(1).disk;
    assert.ok(disk);
    // A background scrub's scan of the disk, begun before the drain and still going when the drain ends.
    const scan = disk.scanFragments()[Symbol.asyncIterator]();
    assert.equal((await scan.next()).done, false);
    let drained = false;
    const drain = drainDisk(pool, '1').then(() => (drained = true));
    await turns(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(drained, false, 'the disk stays open while the scan runs');
    while (!(await scan.next()).done); // the scan ends normally on the still-open disk
    await drain;
    await assert.rejects(disk.space(), (error: unknown) => isShardpoolError(error, 'DISK_OFFLINE'));
    assert.ok(!pool.listMembers().some((member) => member.row.id === 1), 'the disk is no longer a member');
  });
});

test('recover --cleanup beside a put in flight deletes nothing of it, before or after it commits', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1', extentSizeBytes: 64 * 1024 });
  await testPool.withPool(async (pool) => {
    const first = seededBytes(4 * 64 * 1024, 4);
    const rest = seededBytes(64 * 1024, 5);
    const held = heldSource(first, rest);
    const put = pool.put('fresh', held.source);
    await held.started;
    await turns(50);
    const during = await recoverPool(pool, { cleanup: true });
    assert.equal(during.problems, 0, 'a put in flight is neither orphan nor stray');
    held.release();
    await put;
    const after = await recoverPool(pool, { cleanup: true });
    assert.equal(after.problems, 0);
    assert.ok(Buffer.concat([first, rest]).equals(await getBuffer(pool, 'fresh')));
  });
});
