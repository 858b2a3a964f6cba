// A pool whose members are all remote disks (each in front of the pool's own directory disk, through a fragment
// service on 127.0.0.1) works as it does locally: puts, gets, a read around a corrupt fragment, removal and garbage
// collection. The members are substituted into an open Pool (the lead wires remote members into Pool.open); the
// audit then reopens the pool on its local disks and finds every object intact and nothing leaked.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import type { Disk } from '../../src/disk/disk.js';
import { RemoteDisk } from '../../src/disk/remote/remote-disk.js';
import type { Member, Pool } from '../../src/pool/pool.js';
import { serveDisks } from '../support/fragment-service.js';
import { auditPool } from '../support/pool-audit.js';
import { createTestPool, fragmentFiles, getBuffer, putBuffer, seededBytes } from '../support/test-pool.js';

/** The pool's private member table and wrapping (metering, use tracking): a test reaching into an open Pool. */
interface PoolInternals {
  readonly members: Map<number, Member>;
  tracked(disk: Disk): Disk;
}

test('a pool on remote members puts, reads around a corrupt fragment, removes and collects like a local one', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1', extentSizeBytes: 16 * 1024 });
  const local = seededBytes(50_000, 1);
  await testPool.withPool((pool) => putBuffer(pool, 'before', local));

  const pool: Pool = await testPool.open('write');
  const internals = pool as unknown as PoolInternals;
  const owners = [...internals.members.values()].map((member) => member.disk as Disk);
  const remoteData = seededBytes(120_000, 2);
  try {
    const served = await serveDisks(t, owners);
    for (const [id, member] of internals.members) {
      const remote = await served.remote(member.disk as Disk);
      internals.members.set(id, { ...member, disk: internals.tracked(remote) });
    }
    assert.ok(pool.listMembers().every((member) => member.disk instanceof RemoteDisk), 'every member is remote now');

    await putBuffer(pool, 'through the network', remoteData);
    await putBuffer(pool, 'doomed', seededBytes(40_000, 3));
    assert.ok((await getBuffer(pool, 'before')).equals(local));
    assert.ok((await getBuffer(pool, 'through the network')).equals(remoteData));

    // One data fragment of the remote object damaged on its owner's medium: the read goes around it.
    const object = await pool.requireObject('through the network');
    const [extent] = await pool.catalog.extentsOf(object.versionId);
    const fragment = extent?.fragments.find((one) => one.fragmentIndex === 0);
    assert.ok(fragment);
    const diskDirectory = testPool.diskDirectories[fragment.diskId - 1] as string;
    const file = (await fragmentFiles(diskDirectory)).find((name) => name.includes(`${fragment.versionId}.${fragment.extentIndex}.0.`));
    assert.ok(file, 'the fragment file is on its disk');
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await fs.writeFile(file, bytes);
    assert.ok((await getBuffer(pool, 'through the network')).equals(remoteData), 'read around the corrupt fragment');
    await fs.writeFile(file, bytes.map((byte, index) => (index === bytes.length - 1 ? byte ^ 0xff : byte)));

    await pool.removeObject('doomed');
  } finally {
    await pool.close();
    for (const owner of owners) await owner.close();
  }
  await auditPool(testPool.directory, {
    expected: new Map([['before', local], ['through the network', remoteData]]),
    noOrphans: true,
    context: 'after a pool on remote members',
  });
});
