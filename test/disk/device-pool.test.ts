// End to end on real loop devices (root; CI runs it): six devices mixing 512- and 4096-byte sectors under ec:4+2,
// objects from 0 bytes to 256 MiB, a failed device read around, a device drained onto a directory disk.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliOk } from '../support/cli.js';
import { canUseLoopDevices, createLoopDevice, type LoopDevice } from '../support/loop-device.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

const MiB = 1024 * 1024;

async function sha256(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface DiskJson {
  id: number;
  kind: string;
  path: string;
  state: string;
  geometry?: { logicalSectorBytes: number; physicalSectorBytes: number; directIo: boolean };
  capacityBytes: number;
  freeBytes: number;
  usedBytes: number;
  fragmentCount: number;
}

test('six loop devices of mixed sector sizes hold ec:4+2 objects up to 256 MiB through failure and drain', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const root = await makeTempDir(t, 'device-pool');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'ec:4+2']);
  const loops: LoopDevice[] = [];
  for (let index = 0; index < 6; index += 1) {
    const loop = await createLoopDevice(t, { sizeBytes: 384 * MiB, sectorBytes: index % 2 === 0 ? 512 : 4096 });
    loops.push(loop);
    await runCliOk(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes']);
  }
  const disks = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as DiskJson[];
  assert.deepEqual(disks.map((disk) => disk.geometry?.logicalSectorBytes), [512, 4096, 512, 4096, 512, 4096]);
  assert.ok(disks.every((disk) => disk.kind === 'block-device' && disk.geometry?.directIo === true && disk.freeBytes > 300 * MiB));
  const table = (await runCliOk(['list-disks', '--pool', pool])).stdout.toString();
  assert.match(table, /SECTORS\s+IO\s+CAPACITY\s+FREE\s+USED\s+FRAGMENTS/);
  assert.match(table, /block-device\s+4096\/4096\s+direct/);

  // Objects from empty to 256 MiB; the big one goes through a file, the small ones through stdin.
  const small = new Map<string, Buffer>([
    ['empty', Buffer.alloc(0)],
    ['one-byte', Buffer.from('x')],
    ['extent-plus-one', seededBytes(MiB + 1, 3)],
    ['odd/7MiB', seededBytes(7 * MiB + 12_345, 4)],
  ]);
  for (const [key, data] of small) await runCliOk(['put', '--pool', pool, key, '-'], { input: data });
  const big = path.join(root, 'big.bin');
  const handle = await fs.open(big, 'w');
  for (let chunk = 0; chunk < 64; chunk += 1) await handle.write(seededBytes(4 * MiB, 1000 + chunk));
  await handle.close();
  const bigDigest = await sha256(big);
  await runCliOk(['put', '--pool', pool, 'big/256MiB', big]);
  const out = path.join(root, 'out.bin');
  await runCliOk(['get', '--pool', pool, 'big/256MiB', out]);
  assert.equal(await sha256(out), bigDigest, '256 MiB reads back identical');
  for (const [key, data] of small) assert.ok((await runCliOk(['get', '--pool', pool, key])).stdout.equals(data), key);
  const listed = JSON.parse((await runCliOk(['ls', '--pool', pool, '--json'])).stdout.toString()) as Array<{ key: string }>;
  assert.deepEqual(listed.map((object) => object.key).sort(), ['big/256MiB', ...small.keys()].sort());
  const used = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as DiskJson[];
  for (const disk of used) {
    assert.ok(disk.fragmentCount >= 256, `disk ${disk.id} holds a fragment of every extent`);
    assert.ok(disk.usedBytes >= 64 * MiB && disk.freeBytes <= disk.capacityBytes - disk.usedBytes, `disk ${disk.id} accounting`);
  }

  // A device fails: reads rebuild around it.
  await runCliOk(['fail-disk', '--pool', pool, '--disk', '2']);
  const degraded = await runCliOk(['get', '--pool', pool, 'big/256MiB', out]);
  assert.match(degraded.stderr, /read degraded/);
  assert.equal(await sha256(out), bigDigest);

  // A directory disk joins (a mixed pool), and a healthy device is drained onto the others.
  await fs.mkdir(path.join(root, 'dir-disk'));
  await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, 'dir-disk')]);
  await runCliOk(['remove-disk', '--pool', pool, '--disk', '2']); // the failed device: rebuilt from redundancy
  await fs.mkdir(path.join(root, 'dir-disk-2'));
  await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, 'dir-disk-2')]);
  const drained = await runCliOk(['remove-disk', '--pool', pool, '--disk', '3']); // a healthy device: copied
  assert.match(drained.stdout.toString(), /[1-9]\d* fragments moved/);
  const after = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as DiskJson[];
  assert.deepEqual(after.map((disk) => disk.kind).sort(), ['block-device', 'block-device', 'block-device', 'block-device', 'directory', 'directory']);
  assert.ok(after.filter((disk) => disk.kind === 'directory').every((disk) => disk.fragmentCount > 0), 'fragments moved to the directory disks');
  await runCliOk(['get', '--pool', pool, 'big/256MiB', out]);
  assert.equal(await sha256(out), bigDigest);
  for (const [key, data] of small) assert.ok((await runCliOk(['get', '--pool', pool, key])).stdout.equals(data), key);
  assert.equal(JSON.parse((await runCliOk(['status', '--pool', pool, '--json'])).stdout.toString()).health, 'healthy');

  // Crashes on real devices: a put killed after its data flush and after its journal flush leaves the old object.
  const before = (await runCliOk(['get', '--pool', pool, 'odd/7MiB'])).stdout;
  for (const killAt of ['device.data-flushed', 'device.journal-flushed']) {
    const killed = await runCli(['put', '--pool', pool, 'odd/7MiB', '-'], { env: { SHARDPOOL_KILL_AT: killAt }, input: seededBytes(3 * MiB, 9) });
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok((await runCliOk(['get', '--pool', pool, 'odd/7MiB'])).stdout.equals(before), `old object intact after ${killAt}`);
    const check = await runCli(['recover', '--pool', pool]);
    assert.equal(check.code, 0, `recover after ${killAt}: ${check.stdout.toString()}`);
  }

  // rm frees device space; recover finds nothing wrong.
  await runCliOk(['rm', '--pool', pool, 'big/256MiB']);
  const freed = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as DiskJson[];
  for (const disk of freed.filter((candidate) => candidate.kind === 'block-device')) {
    assert.ok(disk.usedBytes < 8 * MiB, `disk ${disk.id} gave the big object's space back`);
  }
  const recovered = await runCli(['recover', '--pool', pool]);
  assert.equal(recovered.code, 0, recovered.stdout.toString() + recovered.stderr);
});
