// A put of any size works on block devices: it records its progress as it goes, so it never holds more allocations
// pending on a device than a checkpoint carries; a logical limit never latches a device; a latched one is reported.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { formatDiskTable } from '../../src/cli/pool-commands.js';
import { ShardpoolError } from '../../src/errors.js';
import { PENDING_ALLOCATIONS_MAX_COUNT } from '../../src/format/device-layout.js';
import { Pool } from '../../src/pool/pool.js';
import { parsePolicy } from '../../src/redundancy/policy.js';
import { auditPool } from '../support/pool-audit.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

const EXTENT_BYTES = 4096;

async function devicePool(root: string, imageBytes: number): Promise<string> {
  const directory = path.join(root, 'pool');
  await Pool.create(directory, { policy: parsePolicy('replica:1'), extentSizeBytes: EXTENT_BYTES });
  const pool = await Pool.open(directory, { access: 'write', lockWaitMs: 1000 });
  try {
    const image = path.join(root, 'device.img');
    await fs.writeFile(image, '');
    await fs.truncate(image, imageBytes);
    await pool.addDisk(image, { device: true, force: false, confirm: async () => true });
  } finally {
    await pool.close();
  }
  return directory;
}

test('a put with more extents than a device checkpoint can hold pending commits, and the device stays writable', async (t) => {
  const root = await makeTempDir(t, 'large-put');
  const directory = await devicePool(root, 400 * 1024 * 1024);
  // One fragment (one allocation) per extent on the one device: more than a checkpoint's pending capacity.
  const extents = PENDING_ALLOCATIONS_MAX_COUNT + 300;
  const data = seededBytes(extents * EXTENT_BYTES - 100, 11);
  const pool = await Pool.open(directory, { access: 'write', lockWaitMs: 1000 });
  try {
    const chunks = function* () {
      for (let offset = 0; offset < data.length; offset += 1024 * 1024) yield data.subarray(offset, offset + 1024 * 1024);
    };
    const result = await pool.put('big', chunks());
    assert.equal(result.object.extentCount, extents);
    const disk = pool.listMembers()[0]?.disk;
    assert.equal(disk?.latchedFailure, undefined, 'no logical limit latched the device');
    assert.equal(disk?.pendingAllocations().length, 0, 'every allocation of the put is settled');
    await pool.put('after', [Buffer.from('still writable')]);
  } finally {
    await pool.close();
  }
  await auditPool(directory, { expected: new Map([['big', data], ['after', Buffer.from('still writable')]]), noOrphans: true, context: 'after a large put' });
});

test('a put that fails after recording progress leaves nothing behind', async (t) => {
  const root = await makeTempDir(t, 'large-put-fail');
  const directory = await devicePool(root, 64 * 1024 * 1024);
  const pool = await Pool.open(directory, { access: 'write', lockWaitMs: 1000 });
  try {
    const failing = async function* () {
      for (let index = 0; index < 700; index += 1) yield seededBytes(EXTENT_BYTES, index + 1); // past two progress records
      throw new Error('the client went away');
    };
    await assert.rejects(pool.put('cut', failing()), /the client went away/);
    assert.deepEqual((await pool.catalog.listIntents()), [], 'the intent is gone');
    assert.equal((await pool.catalog.countFragmentsOnDisk(1)), 0, 'the recorded rows are gone');
    assert.equal((await pool.describe()).disks[0]?.usedBytes, 0);
  } finally {
    await pool.close();
  }
  await auditPool(directory, { expected: new Map(), noOrphans: true, context: 'after a failed large put' });
});

test('a latched disk is shown as latched, with its reason, and takes no new fragments', async (t) => {
  const root = await makeTempDir(t, 'latched');
  const directory = await devicePool(root, 64 * 1024 * 1024);
  const pool = await Pool.open(directory, { access: 'write', lockWaitMs: 1000 });
  try {
    const disk = pool.listMembers()[0]?.disk as object;
    const failure = new ShardpoolError('DISK_IO_FAILED', 'flush failed on the test device: EIO', {});
    Object.defineProperty(disk, 'latchedFailure', { value: failure });
    const description = await pool.describe();
    assert.equal(description.disks[0]?.latchedFailure, failure.message);
    const table = formatDiskTable(description.disks);
    assert.match(table, /healthy,latched/);
    assert.match(table, /writes refused until reopened: flush failed on the test device: EIO/);
  } finally {
    await pool.close();
  }
});
