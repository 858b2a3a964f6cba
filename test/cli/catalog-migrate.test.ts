// shardpool catalog migrate: a pool's catalog from SQLite to PostgreSQL and back, through the real command line.
// Nothing is lost: the dumps before and after each move are the same rows, byte for byte.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { CATALOG_FILE_NAME } from '../../src/pool/catalog/catalog.js';
import { POOL_CONFIG_FILE_NAME } from '../../src/format/pool-config.js';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { postgresDatabase } from '../support/postgres.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

/** Everything after the header line (which names the engine and when the dump was taken). */
function rowsOf(dump: Buffer): Buffer {
  return dump.subarray(dump.indexOf(0x0a) + 1);
}

test('catalog migrate moves a pool to PostgreSQL and back: the same rows, every object readable, the old catalog kept', async (t) => {
  const database = await postgresDatabase(t);
  if (database === undefined) return;
  const root = await makeTempDir(t, 'catalog-migrate');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const data = seededBytes(300_000, 5);
  const input = path.join(root, 'input');
  await fs.writeFile(input, data);
  await runCliOk(['put', '--pool', pool, 'docs/ä', input]);
  await runCliOk(['put', '--pool', pool, 'docs/b', '-'], { input: 'hello' });
  await runCliOk(['user', 'add', '--pool', pool, 'backup']);
  const onSqlite = (await runCliOk(['catalog', 'dump', '--pool', pool])).stdout;

  const there = JSON.parse((await runCliOk(['catalog', 'migrate', '--pool', pool, '--to', database, '--json'])).stdout.toString()) as { rows: number; keptAs: string };
  assert.ok(there.rows > 10);
  const config = JSON.parse(await fs.readFile(path.join(pool, POOL_CONFIG_FILE_NAME), 'utf8')) as { formatVersion: number; catalog?: { url: string } };
  assert.equal(config.formatVersion, 2);
  assert.equal(config.catalog?.url, database);
  await fs.access(path.join(pool, there.keptAs)); // the old catalog, renamed aside
  await assert.rejects(fs.access(path.join(pool, CATALOG_FILE_NAME)));
  const onPostgres = (await runCliOk(['catalog', 'dump', '--pool', pool])).stdout;
  assert.ok(rowsOf(onPostgres).equals(rowsOf(onSqlite)), 'the rows on PostgreSQL are the rows that were on SQLite');
  assert.ok((await runCliOk(['get', '--pool', pool, 'docs/ä'])).stdout.equals(data));
  await runCliOk(['put', '--pool', pool, 'docs/c', '-'], { input: 'written on PostgreSQL' });

  const again = await runCli(['catalog', 'migrate', '--pool', pool, '--to', database]);
  assert.equal(again.code, 2);
  assert.match(again.stderr.toString(), /^shardpool: error USAGE_INVALID: the catalog of .* is already/);

  await runCliOk(['catalog', 'migrate', '--pool', pool, '--to', 'sqlite']);
  const back = JSON.parse(await fs.readFile(path.join(pool, POOL_CONFIG_FILE_NAME), 'utf8')) as { formatVersion: number; catalog?: unknown };
  assert.equal(back.formatVersion, 1);
  assert.equal(back.catalog, undefined);
  const before = (await runCliOk(['catalog', 'dump', '--pool', pool])).stdout;
  assert.ok((await runCliOk(['get', '--pool', pool, 'docs/c'])).stdout.equals(Buffer.from('written on PostgreSQL')));
  assert.ok((await runCliOk(['get', '--pool', pool, 'docs/ä'])).stdout.equals(data));
  assert.match((await runCliOk(['ls', '--pool', pool])).stdout.toString(), /docs\/b/);
  assert.ok(rowsOf(before).length > rowsOf(onSqlite).length, 'the object put on PostgreSQL came back too');
});

test('init --catalog postgresql makes a pool whose catalog is in PostgreSQL; a second pool cannot take the same database', async (t) => {
  const database = await postgresDatabase(t);
  if (database === undefined) return;
  const root = await makeTempDir(t, 'catalog-init');
  const first = path.join(root, 'first');
  await runCliOk(['init', '--pool', first, '--policy', 'replica:1', '--catalog', database]);
  await fs.mkdir(path.join(root, 'disk'));
  await runCliOk(['add-disk', '--pool', first, '--disk', path.join(root, 'disk')]);
  await runCliOk(['put', '--pool', first, 'k', '-'], { input: 'v' });
  assert.equal((await runCliOk(['get', '--pool', first, 'k'])).stdout.toString(), 'v');
  await assert.rejects(fs.access(path.join(first, CATALOG_FILE_NAME)), 'no SQLite file beside a PostgreSQL catalog');
  const second = await runCli(['init', '--pool', path.join(root, 'second'), '--catalog', database], { env: { SHARDPOOL_CATALOG: 'sqlite' } });
  assert.equal(second.code, 2, second.stderr.toString());
  assert.match(second.stderr.toString(), /^shardpool: error CATALOG_NOT_EMPTY: /);
  // SHARDPOOL_CATALOG stands in for --catalog.
  const third = await runCli(['init', '--pool', path.join(root, 'third')], { env: { SHARDPOOL_CATALOG: database } });
  assert.match(third.stderr.toString(), /CATALOG_NOT_EMPTY/);
});
