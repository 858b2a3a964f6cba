// Scrub, repair, rebuild, trim and defrag against injected faults, on directory disks and device images (no root),
// and on loop devices (root; CI). Every injected fault must be found; --repair must fix every extent with at most M
// bad fragments and name the ones it cannot; a second scrub must find nothing.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { auditPool } from '../support/pool-audit.js';
import { runCli, runCliOk, type CliResult } from '../support/cli.js';
import { canUseLoopDevices, createLoopDevice, sh } from '../support/loop-device.js';
import { makeTempDir } from '../support/temp-dir.js';
import { fragmentFiles, seededBytes } from '../support/test-pool.js';

const EXTENT = 64 * 1024;

interface ScrubJson {
  counts: Record<string, number>;
  perDisk: Record<string, Record<string, number>>;
  repaired: number;
  unrepairable: Array<{ key: string; extentIndex: number }>;
  clean: boolean;
}

function scrubJson(result: CliResult): ScrubJson {
  return JSON.parse(result.stdout.toString()) as ScrubJson;
}

interface StatJson {
  versionId: string;
  extents: Array<{ index: number; fragments: Array<{ index: number; diskId: number; diskPath: string }> }>;
}

async function stat(pool: string, key: string): Promise<StatJson> {
  return JSON.parse((await runCliOk(['stat', '--pool', pool, key, '--json'])).stdout.toString()) as StatJson;
}

/** A pool of 3 directory disks and 3 device images (ec:4+2), with a few objects. */
async function mixedPool(t: TestContext): Promise<{ root: string; pool: string; objects: Map<string, Buffer>; images: string[] }> {
  const root = await makeTempDir(t, 'scrub');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'ec:4+2', '--extent-size', '64KiB']);
  const images: string[] = [];
  for (let index = 1; index <= 3; index += 1) {
    await fs.mkdir(path.join(root, `dir${index}`));
    await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, `dir${index}`)]);
    const image = path.join(root, `device${index}.img`);
    await fs.writeFile(image, '');
    await fs.truncate(image, 96 * 1024 * 1024);
    await runCliOk(['add-disk', '--pool', pool, '--disk', image, '--device', '--yes']);
    images.push(image);
  }
  const objects = new Map<string, Buffer>();
  for (let index = 0; index < 4; index += 1) {
    const data = seededBytes(6 * EXTENT + index * 1000, 50 + index);
    objects.set(`object-${index}`, data);
    await runCliOk(['put', '--pool', pool, `object-${index}`, '-'], { input: data });
  }
  return { root, pool, objects, images };
}

async function flipByteAt(file: string, offset: number): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}


test('scrub finds every injected fault on directories and device images, --repair fixes them, a second scrub is clean', async (t) => {
  const { pool, objects, images } = await mixedPool(t);
  assert.equal((await runCli(['scrub', '--pool', pool])).code, 0, 'a healthy pool scrubs clean');
  const object0 = await stat(pool, 'object-0');
  // Faults on directory disks: a deleted fragment file, a flipped data byte, a zeroed header.
  const dirFragments = object0.extents.flatMap((extent) => extent.fragments.map((fragment) => ({ extent: extent.index, ...fragment }))).filter((f) => f.diskPath.includes(`${path.sep}dir`));
  const fileOf = async (fragment: { extent: number; index: number; diskPath: string }) =>
    (await fragmentFiles(fragment.diskPath)).find((file) => file.endsWith(`${object0.versionId}.${fragment.extent}.${fragment.index}.frag`)) as string;
  const [deleted, flipped, zeroed] = [dirFragments[0], dirFragments.find((f) => f.extent === 1), dirFragments.find((f) => f.extent === 2)];
  await fs.rm(await fileOf(deleted!));
  const flippedFile = await fileOf(flipped!);
  await flipByteAt(flippedFile, (await fs.stat(flippedFile)).size - 7);
  const zeroedFile = await fileOf(zeroed!);
  const zeroedBytes = await fs.readFile(zeroedFile);
  zeroedBytes.fill(0, 0, 160);
  await fs.writeFile(zeroedFile, zeroedBytes);
  // Faults on a device image: one byte flipped inside every record of object-1 on device 1 (written straight to the
  // image at the record's offset), and one label copy overwritten.
  const object1 = await stat(pool, 'object-1');
  const onDevice = object1.extents.flatMap((extent) => extent.fragments.map((fragment) => ({ extent: extent.index, ...fragment }))).filter((f) => f.diskPath === images[0]);
  const image = await fs.readFile(images[0] as string);
  let injectedOnDevice = 0;
  for (let offset = image.indexOf('SHRDFRAG'); offset >= 0; offset = image.indexOf('SHRDFRAG', offset + 8)) {
    const version = image.subarray(offset + 96, offset + 112).toString('hex');
    if (version === object1.versionId.replaceAll('-', '') && injectedOnDevice < 2) {
      await flipByteAt(images[0] as string, offset + 160 + 40 + injectedOnDevice * 1000);
      injectedOnDevice += 1;
    }
  }
  assert.equal(injectedOnDevice, 2, `object-1 has records on device 1 (${onDevice.length} fragments there)`);
  await flipByteAt(images[0] as string, 4096 + 100); // label copy 1

  const found = await runCli(['scrub', '--pool', pool, '--json']);
  assert.equal(found.code, 1, 'problems found without --repair: exit 1');
  const report = scrubJson(found);
  assert.equal(report.counts.missing, 1, 'the deleted file');
  assert.equal(report.counts.corrupt, 2 + 2 + 1, 'flipped data byte, zeroed header, two device records, a label copy');
  assert.equal(report.clean, false);

  // A repair killed in the middle of a move, then rerun, ends consistent.
  const killed = await runCli(['scrub', '--pool', pool, '--repair'], { env: { SHARDPOOL_KILL_AT: 'drain.fragment-copied@2' } });
  assert.equal(killed.signal, 'SIGKILL');
  const repaired = await runCli(['scrub', '--pool', pool, '--repair', '--json', '--restart']);
  assert.equal(repaired.code, 0, `repair leaves the pool clean: ${repaired.stdout.toString()}`);
  assert.ok(scrubJson(repaired).repaired >= 4);
  const again = await runCli(['scrub', '--pool', pool, '--json']);
  assert.equal(again.code, 0, `a second scrub finds nothing: ${again.stdout.toString()}`);
  await auditPool(pool, { expected: objects, noOrphans: true, context: 'after repair' });
});

test('repair names every extent it cannot fix (more than M bad fragments) and fixes the rest', async (t) => {
  const { pool, objects } = await mixedPool(t);
  const object2 = await stat(pool, 'object-2');
  // Extent 0 of object-2 loses 3 fragments (M = 2): beyond repair. Extent 1 loses 2: repairable.
  for (const [extentIndex, count] of [[0, 3], [1, 2]] as const) {
    const fragments = object2.extents[extentIndex]!.fragments.filter((fragment) => !fragment.diskPath.endsWith('.img')).slice(0, count);
    const devices = object2.extents[extentIndex]!.fragments.filter((fragment) => fragment.diskPath.endsWith('.img'));
    for (const fragment of [...fragments, ...devices].slice(0, count)) {
      if (fragment.diskPath.endsWith('.img')) continue;
      const file = (await fragmentFiles(fragment.diskPath)).find((name) => name.endsWith(`${object2.versionId}.${extentIndex}.${fragment.index}.frag`));
      await fs.rm(file as string);
    }
  }
  // Directory disks hold 3 of the 6 fragments of each extent: extent 0 lost 3, extent 1 lost 2.
  const result = await runCli(['scrub', '--pool', pool, '--repair', '--json']);
  assert.equal(result.code, 1, 'an unrepairable extent leaves problems: exit 1');
  const report = scrubJson(result);
  assert.deepEqual(report.unrepairable.map((failure) => [failure.key, failure.extentIndex]), [['object-2', 0]]);
  assert.equal(report.counts.missing, 5);
  const others = new Map([...objects].filter(([key]) => key !== 'object-2'));
  for (const [key, data] of others) assert.ok((await runCliOk(['get', '--pool', pool, key])).stdout.equals(data), `${key} intact`);
  const get = await runCli(['get', '--pool', pool, 'object-2']);
  assert.equal(get.code, 2);
  assert.match(get.stderr, /EXTENT_UNRECOVERABLE: object "object-2" extent 0/);
});

test('scrub continues where it was interrupted, and --rate limits its speed', async (t) => {
  const { pool } = await mixedPool(t);
  for (let index = 0; index < 20; index += 1) await runCliOk(['put', '--pool', pool, `many/${String(index).padStart(2, '0')}`, '-'], { input: seededBytes(3 * EXTENT, index) });
  // Kill a rate-limited scrub part-way, then rerun: it continues after the last object it saved.
  const child = (await import('node:child_process')).spawn(process.execPath, [(await import('../support/cli.js')).SHARDPOOL_BIN, 'scrub', '--pool', pool, '--rate', '2MiB/s', '--json'], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 3500));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('close', resolve));
  const state = JSON.parse(await fs.readFile(path.join(pool, 'scrub-state.json'), 'utf8')) as { afterKey: string };
  assert.ok(state.afterKey.length > 0, 'progress was saved while it ran');
  const resumed = await runCliOk(['scrub', '--pool', pool, '--json']);
  const report = JSON.parse(resumed.stdout.toString()) as { resumedAfterKey: string; objectsScrubbed: number; clean: boolean };
  assert.equal(report.resumedAfterKey, state.afterKey);
  assert.ok(report.clean);
  await assert.rejects(fs.access(path.join(pool, 'scrub-state.json')), 'a finished scrub leaves no state behind');
  // Rate: 1.5 MiB of fragments at 1 MiB/s takes over a second.
  const started = Date.now();
  await runCliOk(['scrub', '--pool', pool, '--disk', '1', '--rate', '1MiB/s']);
  assert.ok(Date.now() - started > 500, 'the rate limit slowed it down');
});

test('rebuild after fail-disk restores full redundancy; killed mid-way and rerun it ends consistent', async (t) => {
  const { root, pool, objects } = await mixedPool(t);
  await fs.mkdir(path.join(root, 'spare'));
  await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, 'spare')]);
  await runCliOk(['fail-disk', '--pool', pool, '--disk', '2']); // a device image
  assert.equal(JSON.parse((await runCliOk(['status', '--pool', pool, '--json'])).stdout.toString()).health, 'degraded');
  const killed = await runCli(['rebuild', '--pool', pool], { env: { SHARDPOOL_KILL_AT: 'drain.fragment-moved@3' } });
  assert.equal(killed.signal, 'SIGKILL');
  await runCliOk(['rebuild', '--pool', pool]);
  const status = JSON.parse((await runCliOk(['status', '--pool', pool, '--json'])).stdout.toString()) as { health: string; extentsBelowFullRedundancy: number; disks: Array<{ id: number; state: string; fragmentCount: number }> };
  assert.equal(status.health, 'healthy');
  assert.equal(status.extentsBelowFullRedundancy, 0);
  assert.equal(status.disks.find((disk) => disk.id === 2)?.fragmentCount, 0, 'the failed disk holds nothing, still listed');
  await auditPool(pool, { expected: objects, noOrphans: true, context: 'after rebuild' });
  const scrub = await runCli(['scrub', '--pool', pool]);
  assert.equal(scrub.code, 0, `scrub after the rebuild: ${scrub.stdout.toString()}${scrub.stderr}`);
});

test('replace-disk moves everything from an old disk to a new device image', async (t) => {
  const { root, pool, objects } = await mixedPool(t);
  const image = path.join(root, 'new.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 96 * 1024 * 1024);
  const replaced = await runCliOk(['replace-disk', '--pool', pool, '--disk', '1', '--with', image, '--device', '--yes']);
  assert.match(replaced.stdout.toString(), /replaced disk 1 .* with disk 7/);
  const disks = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as Array<{ id: number; fragmentCount: number }>;
  assert.ok(!disks.some((disk) => disk.id === 1));
  assert.ok((disks.find((disk) => disk.id === 7)?.fragmentCount ?? 0) >= 24, 'the new disk took the old one\'s fragments');
  await auditPool(pool, { expected: objects, noOrphans: true, context: 'after replace' });
});

test('defrag grows the largest free run of a device, and everything still reads back', async (t) => {
  const { pool, objects, images } = await mixedPool(t);
  // Punch holes: remove every other object, leaving gaps between the survivors.
  await runCliOk(['rm', '--pool', pool, 'object-0']);
  await runCliOk(['rm', '--pool', pool, 'object-2']);
  objects.delete('object-0');
  objects.delete('object-2');
  const result = JSON.parse((await runCliOk(['defrag', '--pool', pool, '--disk', images[0] as string, '--json'])).stdout.toString()) as Array<{ moved: number; largestFreeRunBeforeBytes: number; largestFreeRunAfterBytes: number }>;
  assert.ok(result[0]!.moved > 0, 'fragments moved into the holes');
  assert.ok(result[0]!.largestFreeRunAfterBytes > result[0]!.largestFreeRunBeforeBytes, 'free space coalesced');
  await auditPool(pool, { expected: objects, noOrphans: true, context: 'after defrag' });
  assert.equal((await runCli(['defrag', '--pool', pool, '--disk', '1'])).code, 2, 'a directory disk is not defragmented');
});

test('trim returns discarded space to the sparse file behind a loop device and never touches allocated units', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const root = await makeTempDir(t, 'trim');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'replica:1']);
  const loop = await createLoopDevice(t, { sizeBytes: 256 * 1024 * 1024, sectorBytes: 4096 });
  await runCliOk(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes']);
  const keep = seededBytes(8 * 1024 * 1024, 1);
  await runCliOk(['put', '--pool', pool, 'keep', '-'], { input: keep });
  await runCliOk(['put', '--pool', pool, 'drop', '-'], { input: seededBytes(64 * 1024 * 1024, 2) });
  await sh('sync', []);
  const blocksBefore = (await fs.stat(loop.imagePath)).blocks;
  await runCliOk(['rm', '--pool', pool, 'drop']);
  const trimmed = JSON.parse((await runCliOk(['trim', '--pool', pool, '--json'])).stdout.toString()) as Array<{ discardedBytes: number }>;
  assert.ok(trimmed[0]!.discardedBytes >= 64 * 1024 * 1024, 'the freed space was discarded');
  await sh('sync', []);
  const blocksAfter = (await fs.stat(loop.imagePath)).blocks;
  assert.ok(blocksAfter * 512 < blocksBefore * 512 - 60 * 1024 * 1024, `the backing file shrank: ${blocksBefore * 512} → ${blocksAfter * 512} bytes`);
  assert.ok((await runCliOk(['get', '--pool', pool, 'keep'])).stdout.equals(keep), 'allocated units were not discarded');
  // Online discard: freed units are discarded as soon as their free is durable.
  await runCliOk(['config', '--pool', pool, '--discard', 'online']);
  await runCliOk(['put', '--pool', pool, 'drop2', '-'], { input: seededBytes(32 * 1024 * 1024, 3) });
  await sh('sync', []);
  const withDrop2 = (await fs.stat(loop.imagePath)).blocks;
  await runCliOk(['rm', '--pool', pool, 'drop2']);
  await sh('sync', []);
  assert.ok((await fs.stat(loop.imagePath)).blocks * 512 < withDrop2 * 512 - 28 * 1024 * 1024, 'online discard returned the space at rm');
  assert.ok((await runCliOk(['get', '--pool', pool, 'keep'])).stdout.equals(keep));
  assert.equal((await runCli(['scrub', '--pool', pool])).code, 0);
});
