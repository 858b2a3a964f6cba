// One behaviour suite for every Disk backend: a directory, a block-device image file, and a remote disk (through a
// fragment service on 127.0.0.1) in front of each. What the pool relies on must hold the same on all of them,
// errors included: the pool reads around a remote FRAGMENT_CHECKSUM_MISMATCH exactly as around a local one.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { formatDeviceDisk, openDeviceDisk } from '../../src/disk/device/device-disk.js';
import type { Disk, FoundFragment, FragmentLocation, FragmentToWrite } from '../../src/disk/disk.js';
import { RemoteDisk } from '../../src/disk/remote/remote-disk.js';
import { isShardpoolError } from '../../src/errors.js';
import { fragmentHeaderLengthBytes } from '../../src/format/fragment-header.js';
import { newUuid } from '../../src/format/uuid.js';
import { checksum128 } from '../../src/redundancy/checksum.js';
import { openTempDirectoryDisk, serveDisks } from '../support/fragment-service.js';
import { makeTempDir } from '../support/temp-dir.js';
import { fragmentFiles, seededBytes } from '../support/test-pool.js';

interface Backend {
  /** The disk under test. */
  readonly disk: Disk;
  /** The local disk that holds the bytes (the disk itself, or the one the remote disk is in front of). */
  readonly owner: Disk;
  /** Flips one data byte of a written fragment on the medium itself. */
  corrupt(fragment: FragmentLocation, key: string): Promise<void>;
}

type LocalBackend = Omit<Backend, 'disk'>;

const POOL_UUID = '0f0e0d0c-0b0a-4908-8706-050403020100';

async function directoryBackend(t: TestContext): Promise<LocalBackend> {
  const owner = await openTempDirectoryDisk(t, POOL_UUID, 'conformance-dir');
  const root = owner.path;
  return {
    owner,
    corrupt: async (fragment) => {
      const file = (await fragmentFiles(root)).find((name) => path.basename(name).startsWith(`${fragment.versionId}.${fragment.extentIndex}.${fragment.fragmentIndex}.`));
      assert.ok(file, 'the fragment file exists');
      const bytes = await fs.readFile(file);
      bytes[bytes.length - 1] ^= 0x5a;
      await fs.writeFile(file, bytes);
    },
  };
}

async function deviceImageBackend(t: TestContext): Promise<LocalBackend> {
  const root = await makeTempDir(t, 'conformance-device');
  const image = path.join(root, 'device.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 64 * 1024 * 1024);
  const identity = { poolUuid: POOL_UUID, diskUuid: newUuid() };
  await formatDeviceDisk(image, identity, 'auto');
  const owner = await openDeviceDisk(image, identity, { directIo: 'auto', access: 'write' });
  t.after(() => owner.close());
  return {
    owner,
    corrupt: async (fragment, key) => {
      const handle = await fs.open(image, 'r+');
      try {
        const at = fragment.locationBytes + fragmentHeaderLengthBytes(key);
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, at);
        byte[0] ^= 0x5a;
        await handle.write(byte, 0, 1, at);
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
  };
}

const LOCAL: ReadonlyArray<[string, (t: TestContext) => Promise<LocalBackend>]> = [
  ['directory', directoryBackend],
  ['block-device image', deviceImageBackend],
];

const BACKENDS: ReadonlyArray<[string, (t: TestContext) => Promise<Backend>]> = LOCAL.flatMap(([name, open]) => [
  [name, async (t: TestContext) => {
    const local = await open(t);
    return { ...local, disk: local.owner };
  }],
  [`remote ${name}`, async (t: TestContext) => {
    const local = await open(t);
    const served = await serveDisks(t, [local.owner]);
    return { ...local, disk: await served.remote(local.owner) };
  }],
] as Array<[string, (t: TestContext) => Promise<Backend>]>);

function fragmentOf(data: Buffer, options: { versionId?: string; extentIndex?: number; fragmentIndex?: number; key?: string } = {}): FragmentToWrite {
  return {
    versionId: options.versionId ?? newUuid(),
    key: options.key ?? 'bucket/conformance key ✓',
    policy: { kind: 'ec', dataFragments: 2, parityFragments: 1 },
    extentIndex: options.extentIndex ?? 0,
    extentLengthBytes: data.length * 2,
    extentChecksum: checksum128(data, data),
    fragmentIndex: options.fragmentIndex ?? 0,
    dataLengthBytes: data.length,
    dataChecksum: checksum128(data),
  };
}

async function writeOne(disk: Disk, data: Buffer, options: Parameters<typeof fragmentOf>[1] = {}): Promise<{ fragment: FragmentToWrite; location: FragmentLocation }> {
  const fragment = fragmentOf(data, options);
  const { locationBytes } = await disk.writeFragment(fragment, data);
  const location = { ...fragment, locationBytes, storedBytes: fragmentHeaderLengthBytes(fragment.key) + data.length };
  return { fragment, location: { versionId: location.versionId, extentIndex: location.extentIndex, fragmentIndex: location.fragmentIndex, locationBytes, storedBytes: location.storedBytes } };
}

async function collect(found: AsyncIterable<FoundFragment>): Promise<FoundFragment[]> {
  const all: FoundFragment[] = [];
  for await (const fragment of found) all.push(fragment);
  return all;
}

for (const [name, open] of BACKENDS) {
  test(`${name}: a written and flushed fragment reads back verified, into a destination of its exact length only`, async (t) => {
    const { disk } = await open(t);
    const data = seededBytes(70_001, 3);
    const { fragment, location } = await writeOne(disk, data);
    await disk.flush();
    const plain = await disk.readFragment(location);
    assert.ok(plain.data.equals(data));
    assert.equal(plain.header.key, fragment.key);
    assert.equal(plain.header.diskUuid, disk.diskUuid);
    assert.equal(plain.header.poolUuid, POOL_UUID);
    assert.deepEqual(plain.header.policy, fragment.policy);
    assert.ok(plain.header.dataChecksum.equals(fragment.dataChecksum));
    const slot = Buffer.alloc(data.length + 1, 0xee);
    const exact = slot.subarray(0, data.length);
    const into = await disk.readFragment(location, exact);
    assert.equal(into.data, exact, 'the data is the destination');
    assert.ok(exact.equals(data));
    assert.equal(slot[data.length], 0xee, 'not a byte past it');
    const other = Buffer.alloc(data.length - 1, 0xee);
    const elsewhere = await disk.readFragment(location, other);
    assert.notEqual(elsewhere.data, other, 'a destination of another length is not used');
    assert.ok(elsewhere.data.equals(data));
    assert.ok(other.every((byte) => byte === 0xee), 'and not written');
    const verified = await disk.verifyFragment(location);
    assert.equal(verified.dataLengthBytes, data.length);
    assert.equal(verified.versionId, fragment.versionId);
  });

  test(`${name}: a fragment corrupted on the medium is a checksum mismatch on read and verify`, async (t) => {
    const backend = await open(t);
    const data = seededBytes(9000, 4);
    const { fragment, location } = await writeOne(backend.disk, data);
    await backend.disk.flush();
    await backend.corrupt(location, fragment.key);
    await assert.rejects(backend.disk.readFragment(location), (error) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
    await assert.rejects(backend.disk.readFragment(location, Buffer.alloc(data.length)), (error) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
    await assert.rejects(backend.disk.verifyFragment(location), (error) => isShardpoolError(error, 'FRAGMENT_CHECKSUM_MISMATCH'));
  });

  test(`${name}: a fragment never written is missing`, async (t) => {
    const { disk } = await open(t);
    const absent = { versionId: newUuid(), extentIndex: 0, fragmentIndex: 0, locationBytes: 0, storedBytes: 4096 };
    await assert.rejects(disk.readFragment(absent), (error) => isShardpoolError(error, 'FRAGMENT_MISSING'));
    await assert.rejects(disk.verifyFragment(absent), (error) => isShardpoolError(error, 'FRAGMENT_MISSING'));
  });

  test(`${name}: a scan finds what was written; deletes (by fragment and by version) take it away`, async (t) => {
    const { disk } = await open(t);
    const kept = await writeOne(disk, seededBytes(5000, 5));
    const doomed = await writeOne(disk, seededBytes(6000, 6));
    const version = newUuid();
    const versionParts = [
      await writeOne(disk, seededBytes(3000, 7), { versionId: version, extentIndex: 0 }),
      await writeOne(disk, seededBytes(3000, 8), { versionId: version, extentIndex: 1 }),
      await writeOne(disk, seededBytes(3000, 9), { versionId: version, extentIndex: 2, fragmentIndex: 1 }),
    ];
    await disk.flush();
    const all = [kept, doomed, ...versionParts];
    const found = await collect(disk.scanFragments(all.map((one) => one.location.locationBytes)));
    assert.deepEqual(
      found.map((one) => `${one.versionId}.${one.extentIndex}.${one.fragmentIndex}`).sort(),
      all.map((one) => `${one.location.versionId}.${one.location.extentIndex}.${one.location.fragmentIndex}`).sort(),
    );
    const foundKept = found.find((one) => one.versionId === kept.location.versionId) as FoundFragment;
    assert.equal(foundKept.key, kept.fragment.key);
    assert.equal(foundKept.locationBytes, kept.location.locationBytes);
    assert.ok(foundKept.extentChecksum.equals(kept.fragment.extentChecksum));
    const foundDoomed = found.find((one) => one.versionId === doomed.location.versionId) as FoundFragment;
    assert.equal(await disk.holdsRecord(foundDoomed), true);

    await disk.deleteFragment(doomed.location);
    await disk.deleteFragment(doomed.location); // not there any more: not an error
    assert.equal(await disk.deleteVersion(version), 3);
    assert.equal(await disk.deleteVersion(version), 0);
    await disk.flush();
    assert.equal(await disk.holdsRecord(foundDoomed), false);
    assert.equal(await disk.holdsRecord(foundKept), true);
    const after = await collect(disk.scanFragments());
    assert.deepEqual(after.map((one) => one.versionId), [kept.location.versionId]);
  });

  test(`${name}: a scan stopped early leaves the disk usable`, async (t) => {
    const { disk } = await open(t);
    for (let index = 0; index < 5; index += 1) await writeOne(disk, seededBytes(2000, 20 + index));
    await disk.flush();
    for await (const _found of disk.scanFragments()) break;
    assert.equal((await collect(disk.scanFragments())).length, 5);
  });

  test(`${name}: space is reported, and settled fragments are no longer pending on the owner`, async (t) => {
    const backend = await open(t);
    const { disk, owner } = backend;
    const before = await disk.space();
    assert.ok(before.capacityBytes > 0 && before.freeBytes <= before.capacityBytes);
    const { location } = await writeOne(disk, seededBytes(100_000, 10));
    await disk.flush();
    const after = await disk.space();
    const ownerSpace = await owner.space();
    assert.equal(after.capacityBytes, ownerSpace.capacityBytes, 'the same capacity as the owner reports');
    const pendingOnOwner = () => owner.pendingAllocations().some((one) => one.versionId === location.versionId);
    if (owner.kind === 'block-device') {
      // (A directory's free space is its filesystem's, which other processes change at any moment.)
      assert.equal(after.freeBytes, ownerSpace.freeBytes, 'the same free space as the owner reports');
      assert.equal(before.freeBytes - after.freeBytes, 112 * 1024, 'the record took its units (7 of 16 KiB)');
      assert.ok(pendingOnOwner(), 'a write is pending until settled');
    }
    disk.settle([location]);
    const deadline = Date.now() + 5000;
    while (pendingOnOwner() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(pendingOnOwner(), false, 'settled on the owner');
    assert.ok((await disk.readFragment(location)).data.equals(seededBytes(100_000, 10)), 'and still readable');
  });

  if (name.startsWith('remote')) {
    test(`${name}: allocations and strays stay the owner's; release is refused; state follows the owner`, async (t) => {
      const { disk, owner } = await open(t);
      assert.ok(disk instanceof RemoteDisk);
      await writeOne(disk, seededBytes(4000, 11));
      assert.deepEqual(disk.pendingAllocations(), []);
      assert.deepEqual(await collect(disk.strays() as AsyncIterable<never>), []);
      await assert.rejects(disk.release(), (error) => isShardpoolError(error, 'NOT_ON_OWNING_NODE'));
      assert.equal(disk.kind, owner.kind);
      assert.equal(disk.path, owner.path);
      assert.deepEqual(disk.geometry, owner.geometry);
      assert.equal(disk.acceptsFragments, true);
      assert.equal(disk.latchedFailure, undefined);
    });
  }
}
