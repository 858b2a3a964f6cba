// One conformance suite for every catalog engine (as the Disk backends share one): SQLite and PostgreSQL must give
// the same answers to the same calls — disks, intents and commits with their garbage, group commit and its
// savepoints, key order (UTF-8 bytes) with non-ASCII keys, moves, fragment status, counters, settings, the S3 tables
// — and a dump of either engine loads into the other and dumps back to the same bytes.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { CATALOG_DUMP_FORMAT_VERSION, CATALOG_SCHEMA_VERSION, MANIFEST_EXTENT_INDEX } from '../../../src/constants.js';
import { isShardpoolError } from '../../../src/errors.js';
import { encodeCatalogDump, type CatalogRecord, type DumpHeader } from '../../../src/format/catalog-dump.js';
import { setCatalogBatchObserver, type Catalog, type NewObject, type ObjectMetadata } from '../../../src/pool/catalog/catalog.js';
import { openPostgresCatalog } from '../../../src/pool/catalog/postgres-catalog.js';
import { SqliteCatalog } from '../../../src/pool/catalog/sqlite-catalog.js';
import { toArray } from '../../support/async.js';
import { postgresDatabase } from '../../support/postgres.js';
import { makeTempDir } from '../../support/temp-dir.js';

interface Engine {
  readonly name: string;
  /** A new, empty catalog closed when the test ends; undefined when the engine is not available (test skipped). */
  open(t: TestContext): Promise<Catalog | undefined>;
}

const ENGINES: ReadonlyArray<Engine> = [
  {
    name: 'sqlite',
    async open(t) {
      const directory = await makeTempDir(t, 'conformance');
      const catalog = SqliteCatalog.open(path.join(directory, 'catalog.sqlite'), { create: true });
      t.after(() => catalog.close());
      return catalog;
    },
  },
  {
    name: 'postgresql',
    async open(t) {
      const url = await postgresDatabase(t);
      if (url === undefined) return undefined;
      const catalog = await openPostgresCatalog(url, { create: true });
      t.after(() => catalog.close());
      return catalog;
    },
  },
];

const CREATED_AT_MS = 1_700_000_000_000;

function newObject(key: string, versionId: string, diskIds: ReadonlyArray<number>, options: { extentCount?: number; sizeBytes?: number; metadata?: ObjectMetadata; sequence?: number } = {}): NewObject {
  const extentCount = options.extentCount ?? 2;
  return {
    object: {
      key,
      versionId,
      sizeBytes: options.sizeBytes ?? 8000,
      policy: 'ec:2+1',
      fragmentCount: diskIds.length,
      fragmentsNeeded: Math.max(1, diskIds.length - 1),
      extentSizeBytes: 4096,
      extentCount,
      createdAtMs: CREATED_AT_MS,
      sequence: options.sequence ?? 0,
    },
    extents: Array.from({ length: extentCount }, (_, extentIndex) => ({
      versionId,
      extentIndex,
      lengthBytes: 4096 - extentIndex,
      checksum: Buffer.from([extentIndex, 0, 0x7f, 0xff, versionId.length]),
      fragments: diskIds.map((diskId, fragmentIndex) => ({ versionId, extentIndex, fragmentIndex, diskId, storedBytes: 2048 + fragmentIndex, locationBytes: fragmentIndex * 1_048_576 * 4096 })),
    })),
    metadata: options.metadata,
  };
}

async function threeDisks(catalog: Catalog): Promise<number[]> {
  const ids: number[] = [];
  for (const index of [1, 2, 3]) ids.push((await catalog.addDisk({ uuid: `00000000-0000-4000-8000-00000000000${index}`, kind: 'directory', path: `/disks/${index}` })).id);
  return ids;
}

/** Commits `key` under a fresh intent, outside any batch of the test's own. */
async function put(catalog: Catalog, key: string, versionId: string, diskIds: ReadonlyArray<number>, options?: Parameters<typeof newObject>[3]) {
  const sequence = await catalog.inBatch((tx) => tx.beginIntent(versionId, key));
  return catalog.inBatch((tx) => tx.commitObject(newObject(key, versionId, diskIds, { sequence, ...options })));
}

/** Keys of every script and width, in UTF-8 byte order (the order both engines must list them in). */
const AWKWARD_KEYS = ['a', 'a/b', 'a0', 'ab', 'B', 'b', 'Z', 'é', 'e\u0301', 'ß', 'Ω', '日本/語', '日本', '\uE000', '\uFFFD', '😀', '😀/x', '𝄞', 'ﬀ'];
const UTF8_ORDER = [...AWKWARD_KEYS].sort((left, right) => Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8')));

for (const engine of ENGINES) {
  describe(`catalog engine ${engine.name}`, () => {
    test('disks are numbered from 1, listed by id, change state, report usage and are forgotten only when empty', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      const [first, second, third] = await threeDisks(catalog);
      assert.deepEqual([first, second, third], [1, 2, 3]);
      await catalog.setDiskState(2, 'draining');
      const disks = await catalog.listDisks();
      assert.deepEqual(
        disks.map((disk) => [disk.id, disk.uuid, disk.kind, disk.path, disk.state, typeof disk.addedAtMs]),
        [
          [1, '00000000-0000-4000-8000-000000000001', 'directory', '/disks/1', 'healthy', 'number'],
          [2, '00000000-0000-4000-8000-000000000002', 'directory', '/disks/2', 'draining', 'number'],
          [3, '00000000-0000-4000-8000-000000000003', 'directory', '/disks/3', 'healthy', 'number'],
        ],
      );
      await assert.rejects(catalog.setDiskState(9, 'failed'), /the disk whose state changes exists/);
      // Paths traded between disks (device names swapped) are recorded in one transaction; a path is one disk's.
      await catalog.setDiskPaths([{ diskId: 1, path: '/disks/3' }, { diskId: 3, path: '/disks/1' }]);
      assert.deepEqual((await catalog.listDisks()).map((disk) => disk.path), ['/disks/3', '/disks/2', '/disks/1']);
      await assert.rejects(catalog.setDiskPaths([{ diskId: 1, path: '/disks/2' }]));
      assert.deepEqual((await catalog.listDisks()).map((disk) => disk.path), ['/disks/3', '/disks/2', '/disks/1'], 'a refused change changes nothing');
      await catalog.setDiskPaths([{ diskId: 1, path: '/disks/1' }, { diskId: 3, path: '/disks/3' }]);
      await put(catalog, 'k', 'v1', [1, 2]);
      assert.deepEqual([...(await catalog.diskUsage())].sort(), [
        [1, { fragmentCount: 2, storedBytes: 4096 }],
        [2, { fragmentCount: 2, storedBytes: 4098 }],
      ]);
      await assert.rejects(catalog.deleteDisk(1), /no fragment lives on it/);
      await catalog.deleteDisk(3);
      assert.deepEqual((await catalog.listDisks()).map((disk) => disk.id), [1, 2]);
      // As SQLite's rowids: the largest id plus one, so the id of a forgotten last disk is given again.
      assert.equal((await catalog.addDisk({ uuid: 'u-4', kind: 'block-device', path: '/dev/loop9' })).id, 3);
    });

    test('nodes join, renew their lease, fail, join again and are forgotten only without disks; a path is unique per node', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      const joined = await catalog.joinNode({ name: 'n1', address: 'http://198.18.0.2:7480', nowMs: 1_000, leaseMs: 10_000 });
      assert.deepEqual(joined, { name: 'n1', address: 'http://198.18.0.2:7480', state: 'active', joinedAtMs: 1_000, leaseExpiresMs: 11_000, lastSeenMs: 1_000 });
      await catalog.joinNode({ name: 'n2', address: 'http://198.18.0.3:7480', nowMs: 1_500, leaseMs: 10_000 });
      const renewed = await catalog.renewNodeLease('n1', 5_000, 10_000);
      assert.equal(renewed?.leaseExpiresMs, 15_000);
      assert.equal(renewed?.lastSeenMs, 5_000);
      // A lease never moves back (a renewal that arrives late, from a clock behind).
      assert.equal((await catalog.renewNodeLease('n1', 2_000, 10_000))?.leaseExpiresMs, 15_000);
      await catalog.setNodeState('n1', 'failed');
      assert.equal((await catalog.renewNodeLease('n1', 6_000, 10_000))?.leaseExpiresMs, 15_000, 'a failed node is not renewed');
      assert.equal(await catalog.renewNodeLease('nobody', 6_000, 10_000), undefined);
      const rejoined = await catalog.joinNode({ name: 'n1', address: 'http://198.18.0.9:7480', nowMs: 7_000, leaseMs: 10_000 });
      assert.deepEqual([rejoined.state, rejoined.address, rejoined.joinedAtMs, rejoined.leaseExpiresMs], ['active', 'http://198.18.0.9:7480', 1_000, 17_000]);
      assert.deepEqual((await catalog.listNodes()).map((node) => node.name), ['n1', 'n2']);
      // Two hosts may each have a disk at the same path; one host may not have two.
      const a = await catalog.addDisk({ uuid: 'u-a', kind: 'block-device', path: '/dev/sdb', node: 'n1' });
      const b = await catalog.addDisk({ uuid: 'u-b', kind: 'block-device', path: '/dev/sdb', node: 'n2' });
      assert.deepEqual([a.node, b.node], ['n1', 'n2']);
      await assert.rejects(catalog.addDisk({ uuid: 'u-c', kind: 'block-device', path: '/dev/sdb', node: 'n2' }));
      assert.deepEqual((await catalog.listDisks()).map((disk) => [disk.path, disk.node]), [['/dev/sdb', 'n1'], ['/dev/sdb', 'n2']]);
      await catalog.inBatch((tx) => tx.beginIntent('v9', 'k', 'n2'));
      assert.deepEqual(await catalog.listIntents(), [{ versionId: 'v9', key: 'k', node: 'n2' }]);
      await assert.rejects(catalog.deleteNode('n2'), /no disk belongs to it/);
      await catalog.deleteDisk(b.id);
      await catalog.deleteNode('n2');
      assert.deepEqual((await catalog.listNodes()).map((node) => node.name), ['n1']);
    });

    test('a commit makes its version current, clears its intent and queues the version it replaces as garbage', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      await catalog.inBatch((tx) => tx.beginIntent('v1', 'photos/ü'));
      assert.deepEqual(await catalog.listIntents(), [{ versionId: 'v1', key: 'photos/ü', node: '' }]);
      assert.equal(await catalog.hasIntent('v1'), true);
      const metadata = { etag: '"abc"', contentType: 'text/plain', userMetadata: { owner: 'me', 'ünïcode': 'ja' } };
      const first = await catalog.inBatch((tx) => tx.commitObject(newObject('photos/ü', 'v1', [1, 2, 3], { metadata })));
      assert.deepEqual(first, { replacedVersionId: undefined, alsoQueued: [] });
      assert.deepEqual(await catalog.listIntents(), []);
      const expected = newObject('photos/ü', 'v1', [1, 2, 3]);
      assert.deepEqual(await catalog.getObject('photos/ü'), expected.object);
      assert.deepEqual(await catalog.extentsOf('v1'), expected.extents);
      assert.deepEqual(await catalog.extentOf('v1', 1), expected.extents[1]);
      assert.equal(await catalog.extentOf('v1', 7), undefined);
      assert.deepEqual(await catalog.objectMetadata('v1'), metadata);
      assert.deepEqual(await catalog.objectOfVersion('v1'), expected.object);
      assert.equal(await catalog.isCurrentVersion('photos/ü', 'v1'), true);
      assert.deepEqual(await catalog.objectTotals(), { objectCount: 1, logicalBytes: 8000 });

      const second = await put(catalog, 'photos/ü', 'v2', [3, 1], { sizeBytes: 5_000_000_000_000 });
      assert.deepEqual(second, { replacedVersionId: 'v1', alsoQueued: [] });
      assert.equal(await catalog.isCurrentVersion('photos/ü', 'v1'), false);
      assert.equal(await catalog.objectOfVersion('v1'), undefined);
      assert.deepEqual(await catalog.listGarbage(), ['v1']);
      assert.equal(await catalog.isGarbage('v1'), true);
      assert.deepEqual(await catalog.objectTotals(), { objectCount: 1, logicalBytes: 5_000_000_000_000 });
      assert.equal(await catalog.objectMetadata('v2'), undefined);

      // Garbage is finished once its fragments are gone, not before.
      const fragments = await catalog.fragmentsOfVersion('v1');
      assert.equal(fragments.length, 6);
      assert.equal(await catalog.finishGarbage('v1'), false);
      await catalog.deleteFragmentRows(fragments.slice(0, 5));
      assert.equal(await catalog.finishGarbage('v1'), false);
      await catalog.deleteFragmentRows(fragments.slice(5));
      assert.equal(await catalog.finishGarbage('v1'), true);
      assert.deepEqual(await catalog.listGarbage(), []);
      assert.equal(await catalog.objectMetadata('v1'), undefined);
      assert.deepEqual(await catalog.extentsOf('v1'), []);
    });

    test('a large put records its extents under its intent; the rows are dropped only while uncommitted', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      const whole = newObject('big', 'v1', [1, 2, 3], { extentCount: 3 });
      await assert.rejects(catalog.inBatch((tx) => tx.recordIntentExtents('v1', whole.extents.slice(0, 1))), /only under a live intent/);
      await catalog.inBatch((tx) => tx.beginIntent('v1', 'big'));
      await catalog.inBatch((tx) => tx.recordIntentExtents('v1', whole.extents.slice(0, 2)));
      assert.equal((await catalog.fragmentsOfVersion('v1')).length, 6);
      await catalog.dropIntentRows('v1');
      assert.deepEqual(await catalog.fragmentsOfVersion('v1'), []);
      await catalog.inBatch((tx) => tx.recordIntentExtents('v1', whole.extents.slice(0, 2)));
      // The commit brings the rest; the recorded rows count with it.
      await catalog.inBatch((tx) => tx.commitObject({ ...whole, extents: whole.extents.slice(2) }));
      assert.deepEqual(await catalog.extentsOf('v1'), whole.extents);
      await assert.rejects(catalog.dropIntentRows('v1'), /never dropped as an intent/);
      // A commit missing an extent is refused and leaves nothing.
      await catalog.inBatch((tx) => tx.beginIntent('v2', 'short'));
      await assert.rejects(catalog.inBatch((tx) => tx.commitObject({ ...newObject('short', 'v2', [1]), extents: [] })), /every extent of the object is committed/);
      assert.equal(await catalog.getObject('short'), undefined);
      assert.equal(await catalog.hasIntent('v2'), true);
      await catalog.inBatch((tx) => tx.dropIntent('v2'));
      assert.equal(await catalog.hasIntent('v2'), false);
    });

    test('pieces of work made before the event loop turns share one transaction; one that throws is undone alone', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      const batches: number[] = [];
      setCatalogBatchObserver((size) => batches.push(size));
      t.after(() => setCatalogBatchObserver(undefined));
      const refused = new Error('refused by inCommit');
      const calls = [
        catalog.inBatch((tx) => tx.beginIntent('v1', 'one')),
        catalog.inBatch((tx) => tx.beginIntent('v2', 'two')),
        catalog.inBatch(async (tx) => {
          await tx.setSetting('piece', 'three');
          await tx.addToCounter('pieces', 1);
          throw refused;
        }),
        catalog.inBatch((tx) => tx.addToCounter('pieces', 10)),
      ];
      const outcomes = await Promise.allSettled(calls);
      assert.deepEqual(batches, [4]);
      assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      assert.equal((outcomes[2] as PromiseRejectedResult).reason, refused);
      assert.equal(await catalog.getSetting('piece'), undefined);
      assert.deepEqual(await catalog.counters(), { pieces: 10 });

      // A commit whose inCommit throws: its rows, and what inCommit changed, are undone; its neighbour commits.
      batches.length = 0;
      const [bad, good] = await Promise.allSettled([
        catalog.inBatch((tx) =>
          tx.commitObject(newObject('one', 'v1', [1, 2]), async (inner) => {
            await inner.setSetting('seen-by-commit', 'yes');
            throw refused;
          }),
        ),
        catalog.inBatch((tx) =>
          tx.commitObject(newObject('two', 'v2', [2, 3]), async (inner) => {
            await inner.addToCounter('commits', 1);
            return ['extra-version'];
          }),
        ),
      ]);
      assert.deepEqual(batches, [2]);
      assert.equal(bad?.status, 'rejected');
      assert.deepEqual(good?.status === 'fulfilled' && good.value, { replacedVersionId: undefined, alsoQueued: ['extra-version'] });
      assert.equal(await catalog.getObject('one'), undefined);
      assert.deepEqual(await catalog.fragmentsOfVersion('v1'), []);
      assert.equal(await catalog.hasIntent('v1'), true, 'the refused put keeps its intent for its cleanup');
      assert.equal(await catalog.getSetting('seen-by-commit'), undefined);
      assert.equal((await catalog.getObject('two'))?.versionId, 'v2');
      assert.deepEqual(await catalog.counters(), { commits: 1, pieces: 10 });
    });

    test('a commit outside a batch runs inCommit in its own transaction; a refusal leaves nothing', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      await catalog.inBatch((tx) => tx.beginIntent('v1', 'k'));
      await assert.rejects(
        catalog.commitObject(newObject('k', 'v1', [1]), async (tx) => {
          await tx.setSetting('inside', '1');
          throw new Error('no');
        }),
        /no/,
      );
      assert.equal(await catalog.getObject('k'), undefined);
      assert.equal(await catalog.getSetting('inside'), undefined);
      const result = await catalog.commitObject(newObject('k', 'v1', [1]), async (tx) => {
        assert.equal((await tx.getObject('k'))?.versionId, 'v1', 'inCommit sees the commit it runs in');
      });
      assert.deepEqual(result, { replacedVersionId: undefined, alsoQueued: [] });
    });

    test('listings order keys by their UTF-8 bytes, page after page, with and without a prefix', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      await Promise.all(AWKWARD_KEYS.map((key, index) => put(catalog, key, `v-${index}`, [1], { extentCount: 1 })));
      assert.deepEqual((await toArray(catalog.listObjects(''))).map((object) => object.key), UTF8_ORDER);
      assert.deepEqual((await toArray(catalog.listObjects('日本'))).map((object) => object.key), ['日本', '日本/語']);
      assert.deepEqual((await toArray(catalog.listObjects('😀'))).map((object) => object.key), ['😀', '😀/x']);
      assert.deepEqual((await toArray(catalog.listObjects('a'))).map((object) => object.key), ['a', 'a/b', 'a0', 'ab']);
      assert.deepEqual((await catalog.objectsAfter(undefined, 3)).map((object) => object.key), UTF8_ORDER.slice(0, 3));
      assert.deepEqual((await catalog.objectsAfter('é', 2)).map((object) => object.key), UTF8_ORDER.slice(UTF8_ORDER.indexOf('é') + 1, UTF8_ORDER.indexOf('é') + 3));
      assert.deepEqual((await catalog.objectsFrom('\uFFFD', 10)).map((object) => object.key), UTF8_ORDER.slice(UTF8_ORDER.indexOf('\uFFFD')));
      // More than one page (1000 rows) of a prefix, committed as one group.
      const many = Array.from({ length: 1205 }, (_, index) => `many/${String(index).padStart(5, '0')}`);
      await Promise.all(many.map((key) => catalog.inBatch((tx) => tx.beginIntent(`m-${key}`, key))));
      await Promise.all(many.map((key) => catalog.inBatch((tx) => tx.commitObject(newObject(key, `m-${key}`, [2], { extentCount: 1 })))));
      assert.deepEqual((await toArray(catalog.listObjects('many/'))).map((object) => object.key), many);
      assert.equal((await toArray(catalog.listObjects(''))).length, many.length + AWKWARD_KEYS.length);
    });

    test('remove and take detach the key and queue its version; a missing key gives undefined', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      await put(catalog, 'gone', 'v1', [1]);
      await put(catalog, 'taken', 'v2', [2]);
      assert.equal(await catalog.removeObject('gone'), 'v1');
      assert.equal(await catalog.removeObject('gone'), undefined);
      assert.deepEqual(await catalog.takeObject('taken'), { ...newObject('taken', 'v2', [2]).object, sequence: 2 });
      assert.equal(await catalog.takeObject('taken'), undefined);
      assert.deepEqual((await catalog.listGarbage()).sort(), ['v1', 'v2']);
      assert.deepEqual(await catalog.objectTotals(), { objectCount: 0, logicalBytes: 0 });
      // Inside a transaction, too.
      await put(catalog, 'again', 'v3', [3]);
      assert.deepEqual(await catalog.inBatch((tx) => tx.takeObject('again')), { ...newObject('again', 'v3', [3]).object, sequence: 3 });
    });

    test('sequences order the puts and removals of a key: an older put committing later is queued at once', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      const early = await catalog.inBatch((tx) => tx.beginIntent('early', 'k'));
      const late = await catalog.inBatch((tx) => tx.beginIntent('late', 'k'));
      assert.ok(late > early, 'sequence numbers increase');
      await catalog.commitObject(newObject('k', 'late', [1], { extentCount: 1, sequence: late }));
      const told: Array<{ replacedVersionId: string | undefined; superseded: boolean }> = [];
      const result = await catalog.commitObject(newObject('k', 'early', [2], { extentCount: 1, sequence: early }), async (_tx, commit) => {
        told.push({ ...commit });
      });
      assert.deepEqual(result, { replacedVersionId: undefined, alsoQueued: ['early'] }, 'the older put is replaced at once');
      assert.deepEqual(told, [{ replacedVersionId: undefined, superseded: true }], 'its inCommit is told (a precondition then fails)');
      assert.equal((await catalog.getObject('k'))?.versionId, 'late');
      assert.deepEqual(await catalog.listIntents(), []);

      // A removal: its marker is garbage that waits for the older versions of its key, collected or being put.
      const pending = await catalog.inBatch((tx) => tx.beginIntent('pending', 'k'));
      const markerSequence = await catalog.inBatch((tx) => tx.beginIntent('marker', 'k'));
      const markerExtent = {
        versionId: 'marker',
        extentIndex: MANIFEST_EXTENT_INDEX,
        lengthBytes: 100,
        checksum: Buffer.alloc(16, 7),
        fragments: [{ versionId: 'marker', extentIndex: MANIFEST_EXTENT_INDEX, fragmentIndex: 0, diskId: 3, storedBytes: 300, locationBytes: 0 }],
      };
      const removed = await catalog.inBatch((tx) => tx.removeWithMarker('k', { versionId: 'marker', sequence: markerSequence, extent: markerExtent }));
      assert.equal(removed?.versionId, 'late');
      assert.equal(await catalog.getObject('k'), undefined);
      assert.deepEqual((await catalog.listGarbage()).slice(-1), ['marker'], 'markers are listed last');
      assert.equal(await catalog.garbageWaits('marker'), true);
      assert.equal(await catalog.garbageWaits('late'), false);
      assert.equal(await catalog.garbageKey('late'), 'k');
      assert.equal(await catalog.garbageKey('nothing'), undefined);
      assert.deepEqual(await catalog.removalMarkersOf('k'), ['marker']);
      assert.deepEqual((await catalog.extentsOf('marker')), [], 'a manifest is not a data extent');
      assert.equal((await catalog.extentOf('marker', MANIFEST_EXTENT_INDEX))?.fragments.length, 1);
      // The put that started before the removal commits after it: replaced at once.
      const afterwards = await catalog.commitObject(newObject('k', 'pending', [1], { extentCount: 1, sequence: pending }));
      assert.deepEqual(afterwards.alsoQueued, ['pending']);
      assert.equal(await catalog.getObject('k'), undefined);
      for (const versionId of ['early', 'late', 'pending']) {
        await catalog.deleteFragmentRows(await catalog.fragmentsOfVersion(versionId));
        assert.equal(await catalog.finishGarbage(versionId), true);
      }
      assert.equal(await catalog.garbageWaits('marker'), false, 'nothing older is left');
      // A removal that comes after a later put committed removes nothing.
      const removal = await catalog.inBatch((tx) => tx.beginIntent('removal-2', 'k'));
      const newer = await catalog.inBatch((tx) => tx.beginIntent('newer', 'k'));
      await catalog.commitObject(newObject('k', 'newer', [1], { extentCount: 1, sequence: newer }));
      const none = await catalog.inBatch((tx) => tx.removeWithMarker('k', { versionId: 'removal-2', sequence: removal, extent: { ...markerExtent, versionId: 'removal-2', fragments: [] } }));
      assert.equal(none, undefined);
      assert.equal((await catalog.getObject('k'))?.versionId, 'newer');
      assert.equal(await catalog.garbageWaits('removal-2'), false, 'a marker that removed nothing waits for nothing');
      await catalog.raiseSequence(1000);
      assert.ok((await catalog.inBatch((tx) => tx.beginIntent('after-import', 'z'))) > 1000);
    });

    test('concurrent commits and removes of one key leave exactly one current version and queue every other', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      const versions = Array.from({ length: 20 }, (_, index) => `hot-${index}`);
      await Promise.all(versions.map((versionId) => catalog.inBatch((tx) => tx.beginIntent(versionId, 'hot'))));
      // Outside batches: each commit its own transaction (on PostgreSQL, on connections of their own at once).
      const results = await Promise.all([
        ...versions.map((versionId) => catalog.commitObject(newObject('hot', versionId, [1], { extentCount: 1 }))),
        catalog.removeObject('hot'),
        catalog.takeObject('hot'),
      ]);
      const current = await catalog.getObject('hot');
      const garbage = new Set(await catalog.listGarbage());
      for (const versionId of versions) assert.ok(garbage.has(versionId) !== (current?.versionId === versionId), `${versionId} is current or garbage, not both`);
      const replaced = results.slice(0, versions.length).map((result) => (result as { replacedVersionId: string | undefined }).replacedVersionId).filter((id) => id !== undefined);
      assert.equal(new Set(replaced).size, replaced.length, 'no version is replaced twice');
    });

    test('moves: registered, listed, repointed from the expected disk only, dropped; what a drain must move', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      await put(catalog, 'k1', 'v1', [1, 2]);
      await put(catalog, 'k2', 'v2', [2, 3, 1]);
      assert.equal(await catalog.widestExtentOnDisk(3), 3);
      assert.equal(await catalog.widestExtentOnDisk(9), 0);
      assert.equal(await catalog.countFragmentsOnDisk(2), 4);
      const toMove = await catalog.fragmentsToMove(2, 10);
      assert.deepEqual(
        toMove.map((move) => [move.object.key, move.extent.extentIndex, move.fragment.fragmentIndex]).sort(),
        [['k1', 0, 1], ['k1', 1, 1], ['k2', 0, 0], ['k2', 1, 0]],
      );
      assert.equal((await catalog.fragmentsToMove(2, 1)).length, 1);
      const fragment = (await catalog.fragmentRow({ versionId: 'v1', extentIndex: 0, fragmentIndex: 1 }))!;
      assert.deepEqual(fragment, { versionId: 'v1', extentIndex: 0, fragmentIndex: 1, diskId: 2, storedBytes: 2049, locationBytes: 4_294_967_296 });
      const missing = { versionId: 'nope', extentIndex: 0, fragmentIndex: 0 };
      const looked = await catalog.fragmentRows([missing, { versionId: 'v1', extentIndex: 0, fragmentIndex: 1 }, missing, { versionId: 'v2', extentIndex: 1, fragmentIndex: 0 }]);
      assert.deepEqual(looked, [undefined, fragment, undefined, await catalog.fragmentRow({ versionId: 'v2', extentIndex: 1, fragmentIndex: 0 })]);
      assert.notEqual(looked[3], undefined);
      assert.deepEqual(await catalog.fragmentRows([]), []);
      await catalog.inBatch((tx) => tx.beginMove(fragment, 3));
      await catalog.inBatch((tx) => tx.beginMove(fragment, 3)); // again: replaces the row
      assert.deepEqual(await catalog.listMoves(), [{ versionId: 'v1', extentIndex: 0, fragmentIndex: 1, sourceDiskId: 2, targetDiskId: 3, sourceLocationBytes: 4_294_967_296 }]);
      assert.equal(await catalog.isMoving({ versionId: 'v1' }), true);
      assert.equal(await catalog.isMoving({ versionId: 'v1', extentIndex: 0, fragmentIndex: 1 }), true);
      assert.equal(await catalog.isMoving({ versionId: 'v1', extentIndex: 1, fragmentIndex: 1 }), false);
      assert.equal(await catalog.moveFragment(fragment, { diskId: 1 }, { diskId: 3, storedBytes: 7, locationBytes: 8 }), false);
      assert.equal(await catalog.inBatch((tx) => tx.moveFragment(fragment, { diskId: 2 }, { diskId: 3, storedBytes: 7, locationBytes: 8 })), true);
      assert.equal(await catalog.diskOfFragment(fragment), 3);
      assert.equal(await catalog.diskOfFragment({ versionId: 'nope', extentIndex: 0, fragmentIndex: 0 }), undefined);
      assert.deepEqual((await catalog.fragmentsOnDisk(3)).map((row) => [row.versionId, row.extentIndex, row.fragmentIndex]).sort(), [
        ['v1', 0, 1],
        ['v2', 0, 1],
        ['v2', 1, 1],
      ]);
      await catalog.inBatch((tx) => tx.dropMove(fragment));
      assert.deepEqual(await catalog.listMoves(), []);
      assert.deepEqual(await catalog.redundancyReport([]), { degradedExtents: 0, unreadableExtents: 0 });
      // v1: fragments on 1 and (now) 3 per extent 0, on 1 and 2 for extent 1; needs 1 of 2. v2: 3 fragments, needs 2.
      assert.deepEqual(await catalog.redundancyReport([3]), { degradedExtents: 3, unreadableExtents: 0 });
      assert.deepEqual(await catalog.redundancyReport([1, 3]), { degradedExtents: 4, unreadableExtents: 3 });
    });

    test('fragment status: in flight under an intent or a move, referenced only at its recorded place', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      await catalog.inBatch((tx) => tx.beginIntent('v0', 'pending'));
      const address = { versionId: 'v1', extentIndex: 1, fragmentIndex: 1 };
      assert.equal(await catalog.fragmentStatus({ ...address, versionId: 'v0' }, { diskId: 2, locationBytes: undefined }), 'in-flight');
      assert.equal(await catalog.fragmentStatus(address, { diskId: 2, locationBytes: undefined }), 'unreferenced');
      await put(catalog, 'k', 'v1', [1, 2]);
      assert.equal(await catalog.fragmentStatus(address, { diskId: 2, locationBytes: undefined }), 'referenced');
      assert.equal(await catalog.fragmentStatus(address, { diskId: 2, locationBytes: 4_294_967_296 }), 'referenced');
      assert.equal(await catalog.fragmentStatus(address, { diskId: 2, locationBytes: 0 }), 'unreferenced');
      assert.equal(await catalog.fragmentStatus(address, { diskId: 1, locationBytes: undefined }), 'unreferenced');
      await catalog.inBatch(async (tx) => tx.beginMove((await tx.fragmentRow(address))!, 3));
      assert.equal(await catalog.fragmentStatus(address, { diskId: 3, locationBytes: undefined }), 'in-flight');
    });

    test('settings are replaced, counters add up (beyond 32 bits)', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      assert.equal(await catalog.getSetting('discard'), undefined);
      await catalog.setSetting('discard', 'on');
      await catalog.setSetting('discard', 'off');
      assert.equal(await catalog.getSetting('discard'), 'off');
      await catalog.addToCounter('reads.degraded', 3_000_000_000);
      await catalog.inBatch((tx) => tx.addToCounter('reads.degraded', 3_000_000_000));
      await catalog.addToCounter('a', -1);
      assert.deepEqual(await catalog.counters(), { a: -1, 'reads.degraded': 6_000_000_000 });
    });

    test('S3 buckets and users: created once, listed by name, found by access key, removed', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      assert.equal(await catalog.s3.createBucket('b', { owner: undefined, acl: 'private' }), true);
      assert.equal(await catalog.s3.createBucket('b', { owner: undefined, acl: 'private' }), false);
      assert.equal(await catalog.s3.createBucket('a-ü', { owner: undefined, acl: 'private' }), true);
      assert.deepEqual((await catalog.s3.listBuckets()).map((bucket) => bucket.name), ['a-ü', 'b']);
      assert.equal((await catalog.s3.getBucket('b'))?.name, 'b');
      assert.equal(await catalog.s3.getBucket('c'), undefined);
      await put(catalog, 'b/object', 'v1', [1]);
      await put(catalog, 'b0', 'v2', [1]); // not in bucket b
      assert.equal(await catalog.s3.deleteBucket('b', 'parts/'), undefined);
      await catalog.removeObject('b/object');
      assert.deepEqual(await catalog.s3.deleteBucket('b', 'parts/'), []);
      assert.equal(await catalog.s3.getBucket('b'), undefined);
      // A bucket holding only unfinished uploads goes with them, and their part objects are queued as garbage.
      await catalog.s3.insertUpload({ uploadId: 'u1', bucket: 'a-ü', key: 'k', contentType: undefined, userMetadata: {}, createdAtMs: 1 });
      await put(catalog, 'parts/u1/00001-x', 'v-part', [1]);
      await catalog.s3.replacePart({ uploadId: 'u1', partNumber: 1, partKey: 'parts/u1/00001-x', etag: '"e"', sizeBytes: 1 });
      assert.deepEqual(await catalog.s3.deleteBucket('a-ü', 'parts/'), ['v-part']);
      assert.equal(await catalog.s3.getUpload('u1'), undefined);
      assert.equal(await catalog.getObject('parts/u1/00001-x'), undefined);
      assert.ok((await catalog.listGarbage()).includes('v-part'));
      assert.equal(await catalog.s3.createBucket('a-ü', { owner: undefined, acl: 'private' }), true);
      const alice = { name: 'alice', accessKeyId: 'AKIA1', secretAccessKey: 'secret-1', createdAtMs: 5, admin: false };
      assert.equal(await catalog.s3.insertUser(alice), true);
      assert.equal(await catalog.s3.insertUser({ ...alice, accessKeyId: 'AKIA2' }), false);
      assert.equal(await catalog.s3.insertUser({ name: 'Bob', accessKeyId: 'AKIA3', secretAccessKey: 's3', createdAtMs: 6, admin: true }), true);
      assert.deepEqual((await catalog.s3.listUsers()).map((user) => user.name), ['Bob', 'alice']);
      assert.equal(await catalog.s3.secretOf('AKIA1'), 'secret-1');
      assert.deepEqual(await catalog.s3.userOf('AKIA1'), alice);
      assert.equal(await catalog.s3.secretOf('AKIA2'), undefined);
      assert.equal(await catalog.s3.removeUser('alice'), true);
      assert.equal(await catalog.s3.removeUser('alice'), false);
    });

    test('tenants: bucket owners and ACLs, grants changed and removed with their user or bucket, admins, object ACLs per version', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      assert.equal(await catalog.s3.insertUser({ name: 'alice', accessKeyId: 'AK1', secretAccessKey: 's1', createdAtMs: 1, admin: false }), true);
      assert.equal(await catalog.s3.insertUser({ name: 'bob', accessKeyId: 'AK2', secretAccessKey: 's2', createdAtMs: 2, admin: false }), true);
      assert.equal(await catalog.s3.createBucket('photos', { owner: 'alice', acl: 'private' }), true);
      assert.equal(await catalog.s3.createBucket('photos', { owner: 'bob', acl: 'public-read' }), false);
      assert.deepEqual(await catalog.s3.getBucket('photos'), { name: 'photos', createdAtMs: (await catalog.s3.getBucket('photos'))!.createdAtMs, owner: 'alice', acl: 'private' });
      assert.equal(await catalog.s3.setBucketAcl('photos', 'public-read'), true);
      assert.equal((await catalog.s3.listBuckets())[0]?.acl, 'public-read');
      assert.equal(await catalog.s3.setBucketAcl('nope', 'private'), false);
      // Grants: stored as given, one row per bucket and user, all-false removes the row.
      assert.equal(await catalog.s3.putGrant({ bucket: 'photos', user: 'bob', read: true, write: false, owner: false }), true);
      assert.equal(await catalog.s3.putGrant({ bucket: 'nope', user: 'bob', read: true, write: false, owner: false }), false);
      assert.deepEqual(await catalog.s3.listGrants({ user: 'bob' }), [{ bucket: 'photos', user: 'bob', read: true, write: false, owner: false }]);
      assert.equal(await catalog.s3.putGrant({ bucket: 'photos', user: 'bob', read: true, write: true, owner: true }), true);
      assert.deepEqual(await catalog.s3.listGrants({ bucket: 'photos', user: 'bob' }), [{ bucket: 'photos', user: 'bob', read: true, write: true, owner: true }]);
      await catalog.s3.putGrant({ bucket: 'photos', user: 'bob', read: false, write: false, owner: false });
      assert.deepEqual(await catalog.s3.listGrants({}), []);
      // A removed user's grants go; the bucket it owns keeps its name.
      await catalog.s3.putGrant({ bucket: 'photos', user: 'bob', read: true, write: false, owner: false });
      assert.equal(await catalog.s3.removeUser('bob'), true);
      assert.deepEqual(await catalog.s3.listGrants({}), []);
      assert.equal(await catalog.s3.removeUser('alice'), true);
      assert.equal((await catalog.s3.getBucket('photos'))?.owner, 'alice');
      // A deleted bucket's grants go with it: a bucket made anew under the name starts with none.
      await catalog.s3.putGrant({ bucket: 'photos', user: 'carol', read: true, write: false, owner: false });
      assert.deepEqual(await catalog.s3.deleteBucket('photos', 'parts/'), []);
      assert.equal(await catalog.s3.createBucket('photos', { owner: 'carol', acl: 'private' }), true);
      assert.deepEqual(await catalog.s3.listGrants({}), []);
      // Admins.
      await catalog.s3.insertUser({ name: 'root', accessKeyId: 'AK3', secretAccessKey: 's3', createdAtMs: 3, admin: true });
      assert.equal((await catalog.s3.userOf('AK3'))?.admin, true);
      assert.equal(await catalog.s3.setAdmin('root', false), true);
      assert.equal((await catalog.s3.userOf('AK3'))?.admin, false);
      assert.equal(await catalog.s3.setAdmin('nobody', true), false);
      // Object ACLs belong to the version: set on the current one, given with metadata, refused for a replaced one.
      await put(catalog, 'photos/a', 'v-a1', [1], { metadata: { etag: '"1"', contentType: undefined, userMetadata: {}, acl: 'public-read' } });
      assert.equal((await catalog.objectMetadata('v-a1'))?.acl, 'public-read');
      assert.equal(await catalog.s3.setObjectAcl('photos/a', 'v-a1', 'private', { etag: '"x"', contentType: undefined, userMetadata: {} }), true);
      assert.deepEqual(await catalog.objectMetadata('v-a1'), { etag: '"1"', contentType: undefined, userMetadata: {} });
      await put(catalog, 'photos/b', 'v-b1', [1]);
      assert.equal(await catalog.s3.setObjectAcl('photos/b', 'v-b1', 'public-read', { etag: '"cli"', contentType: undefined, userMetadata: {} }), true);
      assert.deepEqual(await catalog.objectMetadata('v-b1'), { etag: '"cli"', contentType: undefined, userMetadata: {}, acl: 'public-read' });
      assert.equal(await catalog.s3.setObjectAcl('photos/b', 'v-gone', 'public-read', { etag: '"cli"', contentType: undefined, userMetadata: {} }), false);
    });

    test('multipart uploads: parts replaced in their commit, finished atomically, abandoned ones removed', async (t) => {
      const catalog = await engine.open(t);
      if (!catalog) return;
      await threeDisks(catalog);
      const upload = { uploadId: 'u1', bucket: 'b', key: 'dir/ä', contentType: 'a/b', userMetadata: { x: 'y' }, createdAtMs: 10 };
      await catalog.s3.insertUpload(upload);
      await catalog.s3.insertUpload({ ...upload, uploadId: 'u2', key: 'dir/b', contentType: undefined, createdAtMs: 11 });
      await catalog.s3.insertUpload({ ...upload, uploadId: 'u3', key: 'other', createdAtMs: 12 });
      assert.deepEqual(await catalog.s3.getUpload('u1'), upload);
      assert.equal(await catalog.s3.getUpload('nope'), undefined);
      const withHeaders = { ...upload, uploadId: 'u0', key: 'z', contentHeaders: { 'content-language': 'de' } };
      await catalog.s3.insertUpload(withHeaders);
      assert.deepEqual(await catalog.s3.getUpload('u0'), withHeaders);
      // An encrypted upload remembers its encryption, and an encrypted object its record (JSON, kept as given).
      const encryptedUpload = { ...upload, uploadId: 'u00', key: 'enc', encryption: { kind: 'SSE-C', customerKeyMd5: 'ow4jVwzDupHzHI4MquSMuQ==' } };
      await catalog.s3.insertUpload(encryptedUpload);
      assert.deepEqual(await catalog.s3.getUpload('u00'), encryptedUpload);
      const encrypted = { etag: '"e"', contentType: undefined, userMetadata: {}, encryption: { formatVersion: 1, kind: 'SSE-S3', segments: [{ plaintextBytes: 7, keyId: '0123456789abcdef' }] } };
      await catalog.inBatch((tx) => tx.commitObject(newObject('b/encrypted', 'enc1', [1], { metadata: encrypted })));
      assert.deepEqual(await catalog.objectMetadata('enc1'), encrypted);
      // S3's stored headers and a multipart object's part sizes, and what a commit's inCommit is told.
      const multipart = { etag: '"e-2"', contentType: undefined, userMetadata: {}, contentHeaders: { 'cache-control': 'no-cache', expires: 'Thu, 01 Jan 2037 00:00:00 GMT' }, partSizesBytes: [5242880, 7] };
      const told: unknown[] = [];
      for (const versionId of ['m1', 'm2']) {
        await catalog.inBatch((tx) =>
          tx.commitObject(newObject('b/multipart', versionId, [1], { metadata: multipart }), async (_tx, commit) => {
            told.push(commit);
          }),
        );
      }
      assert.deepEqual(told, [{ replacedVersionId: undefined, superseded: false }, { replacedVersionId: 'm1', superseded: false }]);
      assert.deepEqual(await catalog.objectMetadata('m2'), multipart);
      assert.deepEqual((await catalog.s3.listUploads('b', 'dir/', 10)).map((row) => row.uploadId), ['u2', 'u1']);
      assert.deepEqual((await catalog.s3.listUploads('b', 'dir/ä', 10)).map((row) => row.uploadId), ['u1']);
      assert.deepEqual((await catalog.s3.listUploads('b', '', 2)).map((row) => row.uploadId), ['u2', 'u1']);
      // A prefix beyond the Basic Multilingual Plane counts in characters, not UTF-16 units, on both engines.
      await catalog.s3.insertUpload({ ...upload, uploadId: 'u4', key: 'dir/😀x', createdAtMs: 13 });
      assert.deepEqual((await catalog.s3.listUploads('b', 'dir/😀', 10)).map((row) => row.uploadId), ['u4']);

      const commitPart = (versionId: string, partKey: string, partNumber: number, uploadId = 'u1') =>
        catalog.inBatch(async (tx) => {
          await tx.beginIntent(versionId, partKey);
          return tx.commitObject(newObject(partKey, versionId, [1], { extentCount: 1 }), async (inner) => {
            const queued = await inner.s3.replacePart({ uploadId, partNumber, partKey, etag: `"${versionId}"`, sizeBytes: 100 });
            if (queued === undefined) throw new Error('upload gone');
            return queued;
          });
        });
      assert.deepEqual((await commitPart('p1', '.parts/u1/1-a', 1)).alsoQueued, []);
      assert.deepEqual((await commitPart('p2', '.parts/u1/2-a', 2)).alsoQueued, []);
      assert.deepEqual((await commitPart('p3', '.parts/u1/1-b', 1)).alsoQueued, ['p1'], 'the replaced part object is queued');
      await assert.rejects(commitPart('p4', '.parts/gone/1', 1, 'gone'), /upload gone/);
      assert.equal(await catalog.getObject('.parts/gone/1'), undefined);
      const parts = await catalog.s3.listParts('u1');
      assert.deepEqual(parts.map((part) => [part.partNumber, part.partKey, part.etag, part.sizeBytes]), [
        [1, '.parts/u1/1-b', '"p3"', 100],
        [2, '.parts/u1/2-a', '"p2"', 100],
      ]);
      assert.deepEqual((await catalog.s3.listParts('u1', 1, 5)).map((part) => part.partNumber), [2]);

      // A stray object under the upload's prefix goes with it.
      await put(catalog, '.parts/u1/stray', 'p5', [1]);
      const finished = await catalog.s3.finishUpload('u1', '.parts/u1/');
      assert.deepEqual(finished?.sort(), ['p2', 'p3', 'p5']);
      assert.equal(await catalog.s3.getUpload('u1'), undefined);
      assert.deepEqual(await catalog.s3.listParts('u1'), []);
      assert.equal(await catalog.s3.finishUpload('u1', '.parts/u1/'), undefined);

      // u2 has a part whose object is missing; an orphan object no part row names.
      await commitPart('p6', '.parts/u2/1', 1, 'u2');
      await catalog.removeObject('.parts/u2/1');
      await put(catalog, '.parts/orphan/1', 'p7', [1]);
      await commitPart('p8', '.parts/u3/1', 1, 'u3');
      const abandoned = await catalog.s3.removeAbandonedParts('.parts/');
      assert.deepEqual({ ...abandoned, versionIds: abandoned.versionIds.sort() }, { versionIds: ['p7'], uploadsRemoved: 1, objectsRemoved: 1 });
      assert.equal(await catalog.s3.getUpload('u2'), undefined);
      assert.deepEqual((await catalog.s3.getUpload('u3'))?.uploadId, 'u3');
      assert.equal((await catalog.getObject('.parts/u3/1'))?.versionId, 'p8');
    });
  });
}

/** Every table gets rows, through the interface (the same calls on any engine). */
async function fillEveryTable(catalog: Catalog): Promise<void> {
  await threeDisks(catalog);
  await catalog.setSetting('discard', 'on');
  await Promise.all(AWKWARD_KEYS.map((key, index) => put(catalog, key, `v-${index}`, [1, 2, 3], { metadata: index % 2 ? { etag: `"${index}"`, contentType: index % 4 === 1 ? undefined : 'x/y', userMetadata: { n: String(index) } } : undefined })));
  await put(catalog, 'a', 'v-over', [2, 3]);
  await catalog.inBatch((tx) => tx.beginIntent('v-pending', 'pending'));
  await catalog.inBatch(async (tx) => tx.beginMove((await tx.fragmentRow({ versionId: 'v-over', extentIndex: 0, fragmentIndex: 0 }))!, 1));
  await catalog.addToCounter('reads', 5_000_000_000);
  await catalog.s3.createBucket('bucket-ü', { owner: undefined, acl: 'private' });
  await catalog.s3.insertUser({ name: 'alice', accessKeyId: 'AKIA1', secretAccessKey: 'secret', createdAtMs: 3, admin: false });
  await catalog.s3.createBucket('owned', { owner: 'alice', acl: 'public-read' });
  await catalog.s3.putGrant({ bucket: 'bucket-ü', user: 'alice', read: true, write: false, owner: true });
  await catalog.s3.insertUpload({ uploadId: 'u1', bucket: 'bucket-ü', key: 'k', contentType: undefined, userMetadata: {}, createdAtMs: 4 });
  await catalog.s3.insertUpload({ uploadId: 'u2', bucket: 'bucket-ü', key: 'enc', contentType: undefined, userMetadata: {}, createdAtMs: 5, encryption: { kind: 'SSE-S3' } });
  await put(catalog, 'encrypted', 'v-encrypted', [1, 2], { metadata: { etag: '"c"', contentType: undefined, userMetadata: {}, encryption: { kind: 'SSE-C', segments: [] } } });
  await catalog.inBatch(async (tx) => {
    await tx.beginIntent('v-part', '.parts/u1/1');
    await tx.commitObject(newObject('.parts/u1/1', 'v-part', [1]), async (inner) => (await inner.s3.replacePart({ uploadId: 'u1', partNumber: 1, partKey: '.parts/u1/1', etag: '"e"', sizeBytes: 9 })) ?? []);
  });
}

const HEADER: DumpHeader = {
  formatVersion: CATALOG_DUMP_FORMAT_VERSION,
  poolUuid: '11111111-2222-4333-8444-555555555555',
  catalogSchemaVersion: CATALOG_SCHEMA_VERSION,
  engine: 'any',
  createdAt: '2025-01-31T02:00:00.000Z',
};

async function dumpText(records: AsyncIterable<CatalogRecord>): Promise<string> {
  return (await toArray(encodeCatalogDump(HEADER, records))).join('');
}

/** Byte for byte; on a difference, names the first line that differs rather than printing both dumps. */
function assertSameDump(actual: string, expected: string, message: string): void {
  if (actual === expected) return;
  const left = actual.split('\n');
  const right = expected.split('\n');
  const index = left.findIndex((line, at) => line !== right[at]);
  assert.fail(`${message}: line ${index + 1} differs\n  actual:   ${left[index] ?? '(none)'}\n  expected: ${right[index] ?? '(none)'}`);
}

/** Rows with the queue times of garbage and intents (Date.now()) set to a fixed value: equal across separate fills. */
async function* withFixedTimes(records: AsyncIterable<CatalogRecord>): AsyncGenerator<CatalogRecord> {
  for await (const record of records) {
    const row = { ...record.row };
    for (const column of ['queued_at_ms', 'started_at_ms', 'added_at_ms', 'uploaded_at_ms', 'created_at_ms']) if (column in row) row[column] = 1;
    yield { table: record.table, row };
  }
}

test('a dump of SQLite loads into PostgreSQL and back, byte for byte; both engines fill the same rows alike', async (t) => {
  const [sqliteEngine, postgresEngine] = ENGINES as [Engine, Engine];
  const sqlite = await sqliteEngine.open(t);
  const postgres = await postgresEngine.open(t);
  if (!sqlite || !postgres) return;
  await fillEveryTable(sqlite);
  const fromSqlite = await dumpText(sqlite.dumpRecords());
  assert.ok(fromSqlite.split('\n').length > 30);
  const counts = await postgres.loadRecords(sqlite.dumpRecords());
  assert.equal(counts.objects, AWKWARD_KEYS.length + 2);
  assertSameDump(await dumpText(postgres.dumpRecords()), fromSqlite, 'PostgreSQL dumps what SQLite dumped');
  // And back into a new SQLite catalog.
  const again = (await sqliteEngine.open(t))!;
  await again.loadRecords(postgres.dumpRecords());
  assertSameDump(await dumpText(again.dumpRecords()), fromSqlite, 'SQLite dumps what PostgreSQL dumped');
  // A loaded PostgreSQL catalog goes on numbering disks after the loaded ones.
  assert.equal((await postgres.addDisk({ uuid: 'u-new', kind: 'directory', path: '/disks/new' })).id, 4);
  await assert.rejects(postgres.loadRecords(sqlite.dumpRecords()), (error: unknown) => isShardpoolError(error, 'CATALOG_NOT_EMPTY'));

  // The same calls on a fresh PostgreSQL catalog make the same rows (times aside).
  const fresh = (await postgresEngine.open(t))!;
  await fillEveryTable(fresh);
  assertSameDump(await dumpText(withFixedTimes(fresh.dumpRecords())), await dumpText(withFixedTimes(sqlite.dumpRecords())), 'the same calls make the same rows');
});

test('a load into PostgreSQL that meets a bad row names its line and leaves the catalog empty', async (t) => {
  const postgres = await (ENGINES[1] as Engine).open(t);
  if (!postgres) return;
  async function* records(): AsyncGenerator<CatalogRecord> {
    yield { table: 'meta', row: { name: 'discard', value: 'on' } };
    yield { table: 'fragments', row: { version_id: 'v', extent_index: 0, fragment_index: 0, disk_id: 42, stored_bytes: 1, location_bytes: 0 }, lineNumber: 3 };
  }
  await assert.rejects(postgres.loadRecords(records()), (error: unknown) => isShardpoolError(error, 'CATALOG_DUMP_INVALID') && /line 3/.test((error as Error).message));
  assert.equal(await dumpText(postgres.dumpRecords()), await dumpText((async function* () {})()));
});
