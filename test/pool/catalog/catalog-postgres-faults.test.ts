// PostgreSQL faults: a server that is down at open, or stops and restarts while the catalog is in use, is a typed
// CATALOG_UNREACHABLE naming the address (never a password) — an operating error, exit 2 — and once the server is
// back the next calls work on new connections, without reopening the catalog.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { isShardpoolError } from '../../../src/errors.js';
import { describeAddress, openPostgresCatalog } from '../../../src/pool/catalog/postgres-catalog.js';
import { PostgresCluster, postgresCluster } from '../../support/postgres.js';
import { makeTempDir } from '../../support/temp-dir.js';

const unreachable = (address: string) => (error: unknown) =>
  isShardpoolError(error, 'CATALOG_UNREACHABLE') && error.message.includes(address) && error.details.address === address;

/** A cluster of this test's own (it is stopped and started), or undefined when PostgreSQL is unavailable here. */
async function ownCluster(t: TestContext): Promise<PostgresCluster | undefined> {
  // The shared cluster tells whether PostgreSQL can run here (and skips the test when it cannot).
  if ((await postgresCluster(t)) === undefined) return undefined;
  const cluster = await PostgresCluster.start();
  t.after(() => cluster.stop());
  return cluster;
}

test('opening a catalog where no server listens is CATALOG_UNREACHABLE naming the address', async (t) => {
  const empty = await makeTempDir(t, 'no-postgres');
  const url = `postgresql://shardpool@/catalog?host=${encodeURIComponent(empty)}`;
  await assert.rejects(openPostgresCatalog(url, { create: true }), unreachable(url));
  const cluster = await ownCluster(t);
  if (!cluster) return;
  const stopped = await cluster.createDatabase();
  await cluster.stopServer();
  await assert.rejects(openPostgresCatalog(stopped, { create: false }), unreachable(stopped));
});

test('a password in the address is refused and never printed; messages show the address without it', async () => {
  await assert.rejects(openPostgresCatalog('postgresql://user:hunter2@db.example:5432/pool', { create: true }), (error: unknown) => {
    return isShardpoolError(error, 'USAGE_INVALID') && !error.message.includes('hunter2') && /PGPASSWORD/.test(error.message);
  });
  assert.equal(describeAddress('postgresql://user:hunter2@db.example:5432/pool'), 'postgresql://user:***@db.example:5432/pool');
  assert.equal(describeAddress('postgresql://db.example/pool?password=hunter2&sslmode=require'), 'postgresql://db.example/pool?password=***&sslmode=require');
  assert.equal(describeAddress('postgresql://user@db.example/pool'), 'postgresql://user@db.example/pool');
});

test('a catalog that does not exist is not made unless asked; a second opener finds the schema made', async (t) => {
  const cluster = await ownCluster(t);
  if (!cluster) return;
  const url = await cluster.createDatabase();
  await assert.rejects(openPostgresCatalog(url, { create: false }), (error: unknown) => isShardpoolError(error, 'CATALOG_FAILED') && /shardpool init/.test((error as Error).message));
  // Concurrent openers: one migrates, the others wait for it and find the schema current.
  const catalogs = await Promise.all([1, 2, 3].map(() => openPostgresCatalog(url, { create: true })));
  for (const catalog of catalogs) assert.deepEqual(await catalog.listDisks(), []);
  await Promise.all(catalogs.map((catalog) => catalog.close()));
  const reopened = await openPostgresCatalog(url, { create: false });
  await reopened.close();
});

test('a server restart fails the calls in flight with CATALOG_UNREACHABLE; the next calls work without reopening', async (t) => {
  const cluster = await ownCluster(t);
  if (!cluster) return;
  const url = await cluster.createDatabase();
  const catalog = await openPostgresCatalog(url, { create: true });
  t.after(() => catalog.close());
  await catalog.setSetting('before', '1');

  // A batch whose transaction is open when the server stops: it fails, typed, and nothing of it is committed.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const cut = catalog.inBatch(async (tx) => {
    await tx.setSetting('during', '1');
    entered();
    await held;
    await tx.setSetting('during', '2');
  });
  const cutOutcome = cut.then(
    () => undefined,
    (error: unknown) => error,
  );
  await inside;
  await cluster.stopServer();
  release();
  assert.ok(unreachable(url)(await cutOutcome), String(await cutOutcome));

  // While it is down: every call fails the same way.
  await assert.rejects(catalog.getSetting('before'), unreachable(url));
  await assert.rejects(catalog.inBatch((tx) => tx.setSetting('down', '1')), unreachable(url));

  await cluster.startServer();
  assert.equal(await catalog.getSetting('before'), '1');
  assert.equal(await catalog.getSetting('during'), undefined, 'the cut transaction left nothing');
  await catalog.inBatch((tx) => tx.setSetting('after', '1'));
  assert.equal(await catalog.getSetting('after'), '1');
  assert.equal((await catalog.addDisk({ uuid: 'u', kind: 'directory', path: path.join('/disks', 'a') })).id, 1);
});
