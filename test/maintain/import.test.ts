// A pool outlives its catalog: after a mixed workload (puts of every size, overwrites, removals, S3 metadata), the
// pool directory is destroyed and `shardpool import` rebuilds the pool from the disks alone — every acknowledged
// object back byte-exact with its metadata, every removal still removed, scrub and recover clean. With a disk
// missing the objects come back degraded and `rebuild` restores them; disks of two pools are refused.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { Pool } from '../../src/pool/pool.js';
import { parsePolicy } from '../../src/redundancy/policy.js';
import { toArray } from '../support/async.js';
import { runCli, runCliOk } from '../support/cli.js';
import { auditPool } from '../support/pool-audit.js';
import { getBuffer } from '../support/read-object.js';
import { makeTempDir } from '../support/temp-dir.js';
import { testCatalogArgs } from '../support/test-catalog.js';
import { seededBytes } from '../support/test-pool.js';

const EXTENT_BYTES = 64 * 1024;

interface Workload {
  readonly expected: Map<string, Buffer>;
  readonly metadata: Map<string, { etag: string; contentType: string; userMetadata: Record<string, string> }>;
}

/** Puts, overwrites and removals through the Pool API, some with S3 metadata; what must come back. */
async function runWorkload(poolDirectory: string): Promise<Workload> {
  const expected = new Map<string, Buffer>();
  const metadata: Workload['metadata'] = new Map();
  const pool = await Pool.open(poolDirectory, { access: 'write', lockWaitMs: 10_000 });
  try {
    const put = async (key: string, data: Buffer, withMetadata = false, policy?: string) => {
      const meta = { etag: `"${key.length}abc"`, contentType: 'text/plain', userMetadata: { owner: `o-${key.length}` } };
      await pool.put(key, [data], { ...(policy ? { policy: parsePolicy(policy) } : {}), ...(withMetadata ? { metadata: () => meta } : {}) });
      expected.set(key, data);
      if (withMetadata) metadata.set(key, meta);
      else metadata.delete(key);
    };
    const remove = async (key: string) => {
      await pool.removeObject(key);
      expected.delete(key);
      metadata.delete(key);
    };
    await put('empty', Buffer.alloc(0));
    await put('tiny', Buffer.from('x'));
    await put('bucket/photo.jpg', seededBytes(3 * EXTENT_BYTES + 17, 1), true);
    await put('bucket/nested/deep', seededBytes(1000, 2), true);
    await put('replicated', seededBytes(EXTENT_BYTES * 2, 3), false, 'replica:3');
    for (let round = 0; round < 3; round += 1) await put('overwritten', seededBytes(5000 + round, 10 + round));
    await put('removed', seededBytes(700, 4));
    await remove('removed');
    await put('removed-then-back', seededBytes(800, 5));
    await remove('removed-then-back');
    await put('removed-then-back', seededBytes(900, 6), true);
    // An old version pinned by a reader while its key is removed: its fragments and the removal marker stay on the
    // disks (garbage) when the catalog is lost, and the marker must keep it removed.
    await put('pinned-and-removed', seededBytes(2 * EXTENT_BYTES, 7));
    const reader = await pool.openObject('pinned-and-removed');
    await remove('pinned-and-removed');
    await put('pinned-overwritten', seededBytes(EXTENT_BYTES, 8));
    const second = await pool.openObject('pinned-overwritten');
    await put('pinned-overwritten', seededBytes(EXTENT_BYTES + 1, 9));
    // The catalog is lost with the readers still open: their versions are never collected.
    void reader;
    void second;
  } finally {
    await pool.close();
  }
  return { expected, metadata };
}

async function checkImported(poolDirectory: string, workload: Workload): Promise<void> {
  await auditPool(poolDirectory, { expected: workload.expected, noOrphans: true, context: 'after import' });
  const pool = await Pool.open(poolDirectory, { access: 'read', lockWaitMs: 0 });
  try {
    for (const [key, meta] of workload.metadata) {
      const object = await pool.requireObject(key);
      assert.deepEqual(await pool.catalog.objectMetadata(object.versionId), meta, `S3 metadata of ${key}`);
    }
    assert.deepEqual((await pool.catalog.s3.listBuckets()).map((bucket) => bucket.name), ['bucket']);
    assert.deepEqual(await pool.catalog.listGarbage(), [], 'the first write-open collected every older version');
    for (const [key, data] of workload.expected) assert.ok((await getBuffer(pool, key)).equals(data));
    assert.deepEqual((await toArray(pool.listObjects())).map((object) => object.key).sort(), [...workload.expected.keys()].sort());
  } finally {
    await pool.close();
  }
  const scrub = JSON.parse((await runCliOk(['scrub', '--pool', poolDirectory, '--json'])).stdout.toString()) as { counts: Record<string, number> };
  assert.ok(Object.values(scrub.counts).every((count) => count === 0), `scrub is clean: ${JSON.stringify(scrub.counts)}`);
  assert.equal((await runCli(['recover', '--pool', poolDirectory])).code, 0, 'recover finds nothing wrong');
}

async function makePool(root: string, disks: ReadonlyArray<string>, device: boolean): Promise<string> {
  const poolDirectory = path.join(root, 'pool');
  await runCliOk(['init', '--pool', poolDirectory, '--policy', 'ec:2+1', '--extent-size', '64KiB', ...(await testCatalogArgs())]);
  for (const disk of disks) await runCliOk(['add-disk', '--pool', poolDirectory, '--disk', disk, ...(device ? ['--device', '--yes'] : [])]);
  return poolDirectory;
}

for (const kind of ['directory', 'device image'] as const) {
  test(`on ${kind} disks, a destroyed pool directory is rebuilt by import from the disks alone; with a disk missing, degraded`, async (t) => {
    const root = await makeTempDir(t, 'import');
    const disks: string[] = [];
    for (let index = 1; index <= 4; index += 1) {
      const disk = path.join(root, kind === 'directory' ? `disk${index}` : `disk${index}.img`);
      if (kind === 'directory') await fs.mkdir(disk);
      else {
        await fs.writeFile(disk, '');
        await fs.truncate(disk, 64 * 1024 * 1024);
      }
      disks.push(disk);
    }
    const poolDirectory = await makePool(root, disks, kind !== 'directory');
    const workload = await runWorkload(poolDirectory);
    const before = JSON.parse((await runCliOk(['list-disks', '--pool', poolDirectory, '--json'])).stdout.toString()) as Array<{ uuid: string }>;
    await fs.rm(poolDirectory, { recursive: true });

    // One disk short first (into a copy of the disks, so the full import below sees them as they were).
    const spare = path.join(root, 'spare');
    await fs.mkdir(spare);
    const copies: string[] = [];
    for (const disk of disks.slice(0, 3)) {
      const copy = path.join(spare, path.basename(disk));
      await fs.cp(disk, copy, { recursive: true });
      copies.push(copy);
    }
    const degradedPool = path.join(root, 'degraded');
    const degraded = await runCliOk(['import', '--pool', degradedPool, ...copies.flatMap((disk) => ['--disk', disk]), '--json', ...(await testCatalogArgs())]);
    const degradedReport = JSON.parse(degraded.stdout.toString()) as { missingDisks: string[]; degraded: string[]; unreadable: unknown[]; objects: number };
    assert.deepEqual(degradedReport.missingDisks, [before[3]?.uuid]);
    assert.equal(degradedReport.objects, workload.expected.size, degraded.stdout.toString());
    assert.deepEqual(degradedReport.unreadable, []);
    {
      const pool = await Pool.open(degradedPool, { access: 'read', lockWaitMs: 0 });
      try {
        for (const [key, data] of workload.expected) assert.ok((await getBuffer(pool, key)).equals(data), `${key} reads degraded`);
      } finally {
        await pool.close();
      }
    }
    await runCliOk(['rebuild', '--pool', degradedPool]);
    const status = JSON.parse((await runCliOk(['status', '--pool', degradedPool, '--json'])).stdout.toString()) as { extentsBelowFullRedundancy: number };
    assert.equal(status.extentsBelowFullRedundancy, 0, 'rebuild restores full redundancy');

    // All disks: everything back as it was.
    const restored = path.join(root, 'restored');
    const result = await runCliOk(['import', '--pool', restored, ...disks.flatMap((disk) => ['--disk', disk]), '--json', ...(await testCatalogArgs())]);
    const report = JSON.parse(result.stdout.toString()) as { missingDisks: string[]; degraded: string[]; objects: number; removed: number; garbage: number };
    assert.deepEqual(report.missingDisks, []);
    assert.deepEqual(report.degraded, []);
    assert.equal(report.objects, workload.expected.size);
    assert.ok(report.removed >= 1, 'the pinned removal came back as a removal');
    const after = JSON.parse((await runCliOk(['list-disks', '--pool', restored, '--json'])).stdout.toString()) as Array<{ uuid: string }>;
    assert.deepEqual(after.map((disk) => disk.uuid).sort(), before.map((disk) => disk.uuid).sort());
    await checkImported(restored, workload);
    // The restored pool takes new writes, and a removal after the import sticks.
    await runCliOk(['put', '--pool', restored, 'after-import', '-'], { input: Buffer.from('new') });
    await runCliOk(['rm', '--pool', restored, 'tiny']);
    assert.equal((await runCli(['get', '--pool', restored, 'tiny', '-'])).code, 2);
  });
}

test('import refuses disks of two pools, and a pool directory that exists', async (t) => {
  const root = await makeTempDir(t, 'import-mixed');
  const first = path.join(root, 'a');
  const second = path.join(root, 'b');
  await fs.mkdir(first);
  await fs.mkdir(second);
  await makePool(path.join(root, 'one'), [first], false);
  await makePool(path.join(root, 'two'), [second], false);
  const mixed = await runCli(['import', '--pool', path.join(root, 'new'), '--disk', first, '--disk', second]);
  assert.equal(mixed.code, 2);
  assert.match(mixed.stderr.toString(), /IMPORT_POOLS_MIXED.*2 pools/);
  await assert.rejects(fs.stat(path.join(root, 'new')), 'nothing was written');
  const twice = await runCli(['import', '--pool', path.join(root, 'new'), '--disk', first, '--disk', first]);
  assert.match(twice.stderr.toString(), /IMPORT_POOLS_MIXED.*both carry the label/);
  const existing = await runCli(['import', '--pool', path.join(root, 'one', 'pool'), '--disk', first]);
  assert.equal(existing.code, 2);
  assert.match(existing.stderr.toString(), /POOL_ALREADY_EXISTS/);
});
