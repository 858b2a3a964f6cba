// Members found by label: block devices re-attached under other names (as /dev/sdX names change across reboots)
// are found by the disk uuid in their labels and their new paths recorded; two devices carrying one disk's label are
// both left alone; a directory disk moved elsewhere is pointed at with `disk relocate`. Loop devices (root; CI runs
// it), each detached by its exact name and image when the test ends.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliOk } from '../support/cli.js';
import { attachLoopImage, canUseLoopDevices, createLoopDevice, detachLoopDevice, type LoopDevice } from '../support/loop-device.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';
import { testCatalogArgs } from '../support/test-catalog.js';

const MiB = 1024 * 1024;

interface DiskJson {
  id: number;
  uuid: string;
  path: string;
  online: boolean;
  offlineReason?: string;
}

async function listDisks(pool: string): Promise<DiskJson[]> {
  return JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as DiskJson[];
}

async function checkObjects(pool: string, objects: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [key, data] of objects) {
    const got = (await runCliOk(['get', '--pool', pool, key, '-'])).stdout;
    assert.ok(got.equals(data), `${key} reads back byte-exact`);
  }
}

test('devices re-attached under other names are found by label, their paths recorded; a cloned label is refused', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const root = await makeTempDir(t, 'device-relocation');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'ec:2+1', '--extent-size', '256KiB', ...(await testCatalogArgs())]);
  const loops: LoopDevice[] = [];
  for (let index = 0; index < 3; index += 1) {
    const loop = await createLoopDevice(t, { sizeBytes: 64 * MiB, sectorBytes: 4096 });
    loops.push(loop);
    await runCliOk(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes']);
  }
  const [first, second, third] = loops as [LoopDevice, LoopDevice, LoopDevice];
  const objects = new Map<string, Buffer>([
    ['small', seededBytes(10_000, 1)],
    ['multi-extent', seededBytes(3 * MiB + 17, 2)],
  ]);
  for (const [key, data] of objects) await runCliOk(['put', '--pool', pool, key, '-'], { input: data });
  const before = await listDisks(pool);

  // The first disk moves to a new name; the second and third trade names (or take any free one).
  const moved = await attachLoopImage(t, first.imagePath, { sectorBytes: 4096 });
  await detachLoopDevice(first.path, first.imagePath);
  await detachLoopDevice(second.path, second.imagePath);
  await detachLoopDevice(third.path, third.imagePath);
  const secondNow = await attachLoopImage(t, second.imagePath, { sectorBytes: 4096, devicePath: third.path });
  const thirdNow = await attachLoopImage(t, third.imagePath, { sectorBytes: 4096, devicePath: second.path });

  // A read-only command finds every disk where it is and reads; it records nothing (the write-open below still has
  // to look), and a write-open records the new paths and says so.
  await checkObjects(pool, objects);
  const put = await runCliOk(['put', '--pool', pool, 'after-move', '-'], { input: seededBytes(5000, 3) });
  assert.match(put.stderr.toString(), /found it by its label at/);
  objects.set('after-move', seededBytes(5000, 3));
  const after = await listDisks(pool);
  assert.deepEqual(after.map((disk) => disk.uuid), before.map((disk) => disk.uuid));
  assert.deepEqual(after.map((disk) => disk.path), [moved.path, secondNow.path, thirdNow.path]);
  assert.ok(after.every((disk) => disk.online));
  const quiet = await runCliOk(['put', '--pool', pool, 'quiet', '-'], { input: Buffer.from('q') });
  assert.doesNotMatch(quiet.stderr.toString(), /found it by its label/, 'once recorded, nothing is searched');
  objects.set('quiet', Buffer.from('q'));
  await checkObjects(pool, objects);

  // Two devices carrying the first disk's label, its recorded name gone: which is the disk cannot be told, so
  // neither is used; the pool reads around the disk and says why.
  await attachLoopImage(t, first.imagePath, { sectorBytes: 4096 });
  await attachLoopImage(t, first.imagePath, { sectorBytes: 4096 });
  await moved.detach();
  const cloned = (await listDisks(pool))[0] as DiskJson;
  assert.equal(cloned.online, false);
  assert.match(cloned.offlineReason ?? '', /all carry its label/);
  await checkObjects(pool, objects);
});

test('disk relocate points a directory disk at where it was moved, checking its label', async (t) => {
  const root = await makeTempDir(t, 'directory-relocation');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'replica:2', '--extent-size', '64KiB', ...(await testCatalogArgs())]);
  for (const name of ['a', 'b', 'c']) {
    await fs.mkdir(path.join(root, name));
    await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, name)]);
  }
  const data = seededBytes(200_000, 9);
  await runCliOk(['put', '--pool', pool, 'k', '-'], { input: data });
  await fs.rename(path.join(root, 'a'), path.join(root, 'a-moved'));
  const offline = (await listDisks(pool))[0] as DiskJson;
  assert.equal(offline.online, false);

  // Refused: a disk that is online, another disk's directory, a directory without its label.
  const online = await runCli(['disk', 'relocate', '--pool', pool, '--disk', '2', '--to', path.join(root, 'a-moved')]);
  assert.equal(online.code, 2);
  assert.match(online.stderr.toString(), /DISK_ONLINE|is online/);
  const other = await runCli(['disk', 'relocate', '--pool', pool, '--disk', '1', '--to', path.join(root, 'b')]);
  assert.equal(other.code, 2);
  assert.match(other.stderr.toString(), /already disk 2/);
  await fs.mkdir(path.join(root, 'empty'));
  const unlabelled = await runCli(['disk', 'relocate', '--pool', pool, '--disk', '1', '--to', path.join(root, 'empty')]);
  assert.equal(unlabelled.code, 2);
  assert.match(unlabelled.stderr.toString(), /no shardpool label/);

  const relocated = await runCliOk(['disk', 'relocate', '--pool', pool, '--disk', '1', '--to', path.join(root, 'a-moved'), '--json']);
  assert.equal((JSON.parse(relocated.stdout.toString()) as DiskJson).path, path.join(root, 'a-moved'));
  const disks = await listDisks(pool);
  assert.ok(disks.every((disk) => disk.online));
  assert.equal((disks[0] as DiskJson).path, path.join(root, 'a-moved'));
  assert.ok((await runCliOk(['get', '--pool', pool, 'k', '-'])).stdout.equals(data));
  const scrub = JSON.parse((await runCliOk(['scrub', '--pool', pool, '--json'])).stdout.toString()) as { counts: Record<string, number> };
  assert.ok(Object.values(scrub.counts).every((count) => count === 0), `scrub is clean: ${JSON.stringify(scrub.counts)}`);
});
