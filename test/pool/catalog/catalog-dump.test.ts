// Catalog dump and load through the pool: every table round-trips, a loaded pool reads its objects back, a bad or
// short dump leaves the catalog untouched, and a large catalog streams through in bounded memory.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { isShardpoolError } from '../../../src/errors.js';
import { CATALOG_DUMP_TABLES } from '../../../src/format/catalog-dump.js';
import { POOL_CONFIG_FILE_NAME } from '../../../src/format/pool-config.js';
import { Pool } from '../../../src/pool/pool.js';
import type { ExtentRow } from '../../../src/pool/catalog/catalog.js';
import { openCatalog } from '../../../src/pool/catalog/open-catalog.js';
import { toArray } from '../../support/async.js';
import { dumpPoolCatalog, loadPoolCatalog } from '../../../src/pool/catalog-transfer.js';
import { liveHeapBytes, trackPeakRss } from '../../support/memory.js';
import { createTestPool, getBuffer, putBuffer, seededBytes, type TestPool } from '../../support/test-pool.js';

const FIXED_NOW = () => new Date('2025-01-31T02:00:00.000Z');

async function dumpBytes(directory: string): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of dumpPoolCatalog(directory, { now: FIXED_NOW })) pieces.push(piece);
  return Buffer.concat(pieces);
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  // In odd pieces, so lines straddle chunk boundaries as they do when read from a file or a pipe.
  for (let offset = 0; offset < bytes.length; offset += 777) yield bytes.subarray(offset, offset + 777);
}

/** A copy of the pool's pool.json beside a new, empty catalog: where a lost catalog is rebuilt. */
async function freshPoolDirectory(testPool: TestPool, name: string): Promise<string> {
  const directory = path.join(testPool.root, name);
  await fs.mkdir(directory);
  await fs.copyFile(path.join(testPool.directory, POOL_CONFIG_FILE_NAME), path.join(directory, POOL_CONFIG_FILE_NAME));
  await (await openCatalog(directory, { engine: 'sqlite' }, { create: true })).close();
  return directory;
}

function load(directory: string, bytes: Buffer, source = 'test.jsonl') {
  return loadPoolCatalog(directory, once(bytes), { source, lockWaitMs: 1000 });
}

/** Every table gets rows: objects (one with S3 metadata), a multipart upload with a part, garbage, a move... */
async function fillEveryTable(testPool: TestPool): Promise<Map<string, Buffer>> {
  const contents = new Map<string, Buffer>();
  await testPool.withPool(async (pool) => {
    for (let index = 0; index < 12; index += 1) {
      const key = `photos/${String(index).padStart(3, '0')}-ü.bin`;
      const data = seededBytes(1000 + index * 37_001, index + 1);
      await putBuffer(pool, key, data, index % 3 === 0 ? 'replica:2' : undefined);
      contents.set(key, data);
    }
    const withMetadata = seededBytes(5000, 99);
    await pool.put('bucket-a/doc.txt', [withMetadata], {
      metadata: () => ({ etag: '"abc"', contentType: 'text/plain', userMetadata: { owner: 'me' }, acl: 'public-read' }),
    });
    contents.set('bucket-a/doc.txt', withMetadata);
    const catalog = pool.catalog;
    await catalog.s3.createBucket('bucket-a', { owner: 'backup', acl: 'public-read' });
    await catalog.s3.insertUser({ name: 'backup', accessKeyId: 'SPTESTKEY', secretAccessKey: 'secret', createdAtMs: 1, admin: false });
    await catalog.s3.putGrant({ bucket: 'bucket-a', user: 'backup', read: true, write: true, owner: false });
    await catalog.s3.insertUpload({ uploadId: 'up-1', bucket: 'bucket-a', key: 'big', contentType: undefined, userMetadata: {}, createdAtMs: 2 });
    const partKey = '.shardpool/multipart/up-1/1-0';
    const part = seededBytes(70_000, 7);
    await pool.put(partKey, [part], {
      internal: true,
      inCommit: (tx) => tx.s3.replacePart({ uploadId: 'up-1', partNumber: 1, partKey, etag: '"p1"', sizeBytes: part.length }),
    });
    contents.set(partKey, part);
    // Rows a running pool holds only for a moment, written directly: a put in flight, a move, garbage, counters.
    const doomed = await putBuffer(pool, 'to-remove', seededBytes(3000, 5));
    await catalog.removeObject(doomed.object.key);
    await catalog.beginIntent('00000000-0000-4000-8000-000000000001', 'in-flight');
    // A node of a pool across hosts (this pool's disks stay the local host's).
    await catalog.joinNode({ name: 'n1', address: 'http://198.18.0.2:7480', nowMs: 1_000, leaseMs: 10_000 });
    const moving = (await catalog.extentsOf((await catalog.getObject('photos/001-ü.bin'))?.versionId as string))[0] as ExtentRow;
    const fragment = moving.fragments[0];
    assert.ok(fragment);
    const target = (await catalog.listDisks()).find((disk) => !moving.fragments.some((candidate) => candidate.diskId === disk.id));
    assert.ok(target, 'a disk without a fragment of the extent');
    await catalog.beginMove(fragment, target.id);
    await catalog.addToCounter('extents_read_degraded', 3);
    await catalog.setSetting('last-scrub', '12345');
  });
  return contents;
}

test('dump, load into a fresh catalog, dump again: the same bytes; every table is covered and every object reads back', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+1' });
  const contents = await fillEveryTable(testPool);
  const first = await dumpBytes(testPool.directory);

  const restored = await freshPoolDirectory(testPool, 'restored');
  const loaded = await load(restored, first);
  for (const table of CATALOG_DUMP_TABLES) {
    assert.ok((loaded.rowCounts[table.name] ?? 0) > 0, `the test pool has rows in ${table.name}`);
  }
  const second = await dumpBytes(restored);
  assert.ok(second.equals(first), 'a loaded catalog dumps to the very bytes it was loaded from');

  // Read-only: a write-open would finish the intent, the move and the garbage on disks the original pool shares.
  const pool = await Pool.open(restored, { access: 'read', lockWaitMs: 1000 });
  try {
    assert.deepEqual(
      (await toArray(pool.listObjects(''))).map((object) => object.key).filter((key) => !key.startsWith('.shardpool/')),
      [...contents.keys()].filter((key) => !key.startsWith('.shardpool/')).sort(),
    );
    for (const [key, data] of contents) assert.ok((await getBuffer(pool, key)).equals(data), `${key} reads back`);
    assert.deepEqual(await pool.catalog.objectMetadata((await pool.catalog.getObject('bucket-a/doc.txt'))?.versionId as string), {
      etag: '"abc"',
      contentType: 'text/plain',
      userMetadata: { owner: 'me' },
      acl: 'public-read',
    });
    assert.deepEqual(await pool.catalog.s3.listGrants({}), [{ bucket: 'bucket-a', user: 'backup', read: true, write: true, owner: false }]);
    assert.equal((await pool.catalog.s3.getBucket('bucket-a'))?.owner, 'backup');
    assert.equal((await pool.catalog.s3.listParts('up-1')).length, 1);
  } finally {
    await pool.close();
  }
});

test('a load into a catalog that holds rows is refused with CATALOG_NOT_EMPTY and changes nothing', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1' });
  await testPool.withPool(async (pool) => {
    await putBuffer(pool, 'one', seededBytes(1000, 1));
  });
  const dump = await dumpBytes(testPool.directory);
  await assert.rejects(load(testPool.directory, dump), (error: unknown) => isShardpoolError(error, 'CATALOG_NOT_EMPTY'));
  assert.ok((await dumpBytes(testPool.directory)).equals(dump));
});

test('a bad line, a short dump or a dump of another pool leaves the new catalog empty; a good dump then loads', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1' });
  await testPool.withPool(async (pool) => {
    for (let index = 0; index < 5; index += 1) await putBuffer(pool, `key-${index}`, seededBytes(150_000, index));
  });
  const dump = await dumpBytes(testPool.directory);
  const lines = dump.toString('utf8').split('\n');
  const restored = await freshPoolDirectory(testPool, 'restored');
  const emptyDump = await dumpBytes(restored);

  const fragmentLine = lines.findIndex((line) => line.startsWith('{"table":"fragments"'));
  const onUnknownDisk = [...lines];
  onUnknownDisk[fragmentLine] = (lines[fragmentLine] as string).replace(/"disk_id":\d+/, '"disk_id":99');
  const cases: Array<{ bytes: Buffer; code: string; line?: number }> = [
    { bytes: Buffer.from(lines.slice(0, -2).join('\n') + '\n'), code: 'CATALOG_DUMP_TRUNCATED' },
    { bytes: dump.subarray(0, dump.length - 40), code: 'CATALOG_DUMP_TRUNCATED' },
    { bytes: Buffer.from(onUnknownDisk.join('\n')), code: 'CATALOG_DUMP_INVALID', line: fragmentLine + 1 },
  ];
  for (const { bytes, code, line } of cases) {
    await assert.rejects(load(restored, bytes), (error: unknown) => {
      assert.ok(isShardpoolError(error, code as 'CATALOG_DUMP_INVALID'), String(error));
      if (line !== undefined) assert.match(error.message, new RegExp(`test\\.jsonl line ${line}: `));
      return true;
    });
    assert.ok((await dumpBytes(restored)).equals(emptyDump), `${code}: nothing of the dump was loaded`);
  }
  const otherPool = Buffer.from(dump.toString('utf8').replace(/"poolUuid":"[^"]+"/, '"poolUuid":"00000000-0000-4000-8000-000000000000"'));
  await assert.rejects(load(restored, otherPool), (error: unknown) => isShardpoolError(error, 'CATALOG_DUMP_OTHER_POOL'));

  await load(restored, dump);
  assert.ok((await dumpBytes(restored)).equals(dump));
});

test('20,000 objects dump and load in bounded memory, a page of rows at a time', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1' });
  const OBJECTS = 20_000;
  const started = Date.now();
  await testPool.withPool(async (pool) => {
    const disks = await pool.catalog.listDisks();
    const commits: Array<Promise<unknown>> = [];
    for (let index = 0; index < OBJECTS; index += 1) {
      const versionId = `${index.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
      const extents: ExtentRow[] = [0, 1].map((extentIndex) => ({
        versionId,
        extentIndex,
        lengthBytes: 65536,
        checksum: Buffer.alloc(16, (index + extentIndex) % 251),
        fragments: disks.map((disk, fragmentIndex) => ({
          versionId,
          extentIndex,
          fragmentIndex,
          diskId: disk.id,
          storedBytes: 32_933,
          locationBytes: 0,
        })),
      }));
      const object = {
        key: `bulk/${String(index).padStart(6, '0')}/${'k'.repeat(40)}`,
        versionId,
        sizeBytes: 131_072,
        policy: 'ec:2+1',
        fragmentCount: 3,
        fragmentsNeeded: 2,
        extentSizeBytes: 65536,
        extentCount: 2,
        createdAtMs: 1_700_000_000_000 + index,
        sequence: 0,
      };
      // Group commit: thousands of rows per transaction instead of one fsync each.
      commits.push(pool.catalog.inBatch((tx) => tx.commitObject({ object, extents })));
      if (commits.length === 2000) await Promise.all(commits.splice(0));
    }
    await Promise.all(commits);
  });

  t.diagnostic(`catalog filled in ${Date.now() - started} ms`);
  const dumpFile = path.join(testPool.root, 'dump.jsonl');
  const dumpStarted = Date.now();
  const baseline = process.memoryUsage.rss();
  const liveBaseline = liveHeapBytes();
  const peak = trackPeakRss();
  let dumpedBytes = 0;
  let dumpLive = 0;
  const handle = await fs.open(dumpFile, 'w');
  try {
    let pieces = 0;
    for await (const piece of dumpPoolCatalog(testPool.directory)) {
      dumpedBytes += piece.length;
      await handle.write(piece);
      if (++pieces % 20 === 0) dumpLive = Math.max(dumpLive, liveHeapBytes() - liveBaseline);
    }
  } finally {
    await handle.close();
  }
  const dumpGrowth = peak.stop() - baseline;
  const dumpMs = Date.now() - dumpStarted;

  const restored = await freshPoolDirectory(testPool, 'restored');
  const loadStarted = Date.now();
  const loadPeak = trackPeakRss();
  let loadLive = 0;
  async function* sampledFile(): AsyncGenerator<Buffer> {
    let chunks = 0;
    for await (const chunk of createReadStream(dumpFile, { highWaterMark: 64 * 1024 })) {
      if (++chunks % 80 === 0) loadLive = Math.max(loadLive, liveHeapBytes() - liveBaseline);
      yield chunk as Buffer;
    }
  }
  const loaded = await loadPoolCatalog(restored, sampledFile(), { source: dumpFile, lockWaitMs: 1000 });
  const loadGrowth = loadPeak.stop() - baseline;
  const loadMs = Date.now() - loadStarted;
  assert.equal(loaded.rowCounts['objects'], OBJECTS);
  assert.equal(loaded.rowCounts['fragments'], OBJECTS * 2 * 3);

  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  t.diagnostic(
    `dump ${mib(dumpedBytes)}: ${dumpMs} ms dumping (live heap +${mib(dumpLive)}, resident +${mib(dumpGrowth)}), ` +
      `${loadMs} ms loading (live heap +${mib(loadLive)}, resident +${mib(loadGrowth)})`,
  );
  // Rows are JavaScript objects only a page at a time: what stays alive (measured after a full collection) is far
  // below the dump, where reading it whole would hold every row, several times its bytes. Resident memory adds
  // SQLite's page cache and V8's young generation, which do not grow with the dump (60,000 objects, 93 MiB: the same
  // growth), so its bound is only a coarse guard.
  assert.ok(dumpedBytes > 24 * 1024 * 1024, `the dump is large (${mib(dumpedBytes)})`);
  assert.ok(dumpLive < 8 * 1024 * 1024, `dumping kept ${mib(dumpLive)} alive`);
  assert.ok(loadLive < 8 * 1024 * 1024, `loading kept ${mib(loadLive)} alive`);
  assert.ok(dumpGrowth < 128 * 1024 * 1024, `dumping grew resident memory by ${mib(dumpGrowth)}`);
  assert.ok(loadGrowth < 128 * 1024 * 1024, `loading grew resident memory by ${mib(loadGrowth)}`);

  const catalog = await openCatalog(restored, { engine: 'sqlite' }, { create: false });
  try {
    assert.equal((await catalog.objectTotals()).objectCount, OBJECTS);
  } finally {
    await catalog.close();
  }
});

test('a dump is a snapshot: rows committed while it is read are not in it', async (t) => {
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1' });
  const pool = await testPool.open('write');
  const reader = await openCatalog(testPool.directory, { engine: 'sqlite' }, { create: false });
  try {
    for (let index = 0; index < 3; index += 1) await putBuffer(pool, `before-${index}`, seededBytes(2000, index));
    const records = reader.dumpRecords()[Symbol.asyncIterator]();
    const tables: string[] = [];
    const first = await records.next();
    assert.equal(first.done, false);
    tables.push(first.value.table);
    // The snapshot is taken; a put and a counter commit meanwhile, on another connection, without waiting for it.
    await putBuffer(pool, 'during', seededBytes(2000, 9));
    await pool.catalog.addToCounter('during', 1);
    for (let next = await records.next(); next.done !== true; next = await records.next()) tables.push(next.value.table);
    assert.equal(tables.filter((table) => table === 'objects').length, 3);
    assert.equal(tables.filter((table) => table === 'counters').length, 0);
  } finally {
    reader.close();
    await pool.close();
  }
});
