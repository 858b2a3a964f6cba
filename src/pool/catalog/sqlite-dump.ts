// Dump and load for the SQLite engine (Catalog.dumpRecords / loadRecords; the line format is format/catalog-dump.ts).
// A dump reads through a connection of its own, in one read transaction (WAL: a snapshot that writers on other
// connections do not disturb and do not wait for), a page of rows per statement by keyset pagination: no
// statement's iterator is ever open across an await (better-sqlite3 forbids other statements on a connection while
// one is), and memory stays at one page. A load runs in one write transaction on the catalog's connection, committed
// after the last record.
import Database from 'better-sqlite3';
import { assert } from '../../assert.js';
import { CATALOG_DUMP_PAGE_ROWS } from '../../constants.js';
import { ShardpoolError } from '../../errors.js';
import { CATALOG_DUMP_TABLES, dumpTable, type CatalogRecord, type DumpRow, type DumpTable } from '../../format/catalog-dump.js';

/** How long the dump's connection waits for a lock (it takes none but the WAL read lock, which is never refused long). */
const DUMP_BUSY_TIMEOUT_MS = 10_000;

/** Every row of the catalog file at `filePath`, as of one snapshot. */
export async function* dumpSqliteRecords(filePath: string): AsyncGenerator<CatalogRecord> {
  const reader = new Database(filePath, { fileMustExist: true });
  try {
    reader.pragma(`busy_timeout = ${DUMP_BUSY_TIMEOUT_MS}`);
    // Deferred: the snapshot is taken by the first read below (the schema check) and holds until COMMIT.
    reader.exec('BEGIN');
    assertDumpCoversSchema(reader);
    for (const table of CATALOG_DUMP_TABLES) {
      const columns = table.columns.map((column) => quote(column.name)).join(', ');
      const key = table.primaryKey.map(quote);
      const order = `ORDER BY ${key.join(', ')} LIMIT ?`;
      const first = reader.prepare(`SELECT ${columns} FROM ${quote(table.name)} ${order}`);
      const after =
        key.length === 1
          ? `${key[0] as string} > ?`
          : `(${key.join(', ')}) > (${key.map(() => '?').join(', ')})`;
      const next = reader.prepare(`SELECT ${columns} FROM ${quote(table.name)} WHERE ${after} ${order}`);
      let lastKey: unknown[] | undefined;
      for (;;) {
        const rows = (lastKey === undefined ? first.all(CATALOG_DUMP_PAGE_ROWS) : next.all(...lastKey, CATALOG_DUMP_PAGE_ROWS)) as DumpRow[];
        for (const row of rows) yield { table: table.name, row };
        if (rows.length < CATALOG_DUMP_PAGE_ROWS) break;
        const last = rows[rows.length - 1] as DumpRow;
        lastKey = table.primaryKey.map((name) => last[name]);
      }
    }
    reader.exec('COMMIT');
  } finally {
    reader.close();
  }
}

/** Loads `records` into the empty catalog behind `db` in one transaction; returns the rows loaded per table. */
export async function loadSqliteRecords(db: Database.Database, records: AsyncIterable<CatalogRecord>): Promise<Record<string, number>> {
  assert(!db.inTransaction, 'a load starts outside any transaction (nothing else uses the catalog meanwhile)');
  assertDumpCoversSchema(db);
  const inserts = new Map(
    CATALOG_DUMP_TABLES.map((table) => [
      table.name,
      db.prepare(
        `INSERT INTO ${quote(table.name)} (${table.columns.map((column) => quote(column.name)).join(', ')})
         VALUES (${table.columns.map(() => '?').join(', ')})`,
      ),
    ]),
  );
  const rowCounts: Record<string, number> = Object.fromEntries(CATALOG_DUMP_TABLES.map((table) => [table.name, 0]));
  db.exec('BEGIN IMMEDIATE');
  try {
    refuseUnlessEmpty(db);
    // A new pool's catalog holds its settings (init's discard mode); the dump's settings replace them.
    db.exec('DELETE FROM meta');
    for await (const record of records) {
      const table = dumpTable(record.table);
      assert(table !== undefined, 'records name tables of the dump format');
      const insert = inserts.get(table.name) as Database.Statement;
      try {
        insert.run(...table.columns.map((column) => record.row[column.name]));
      } catch (error) {
        throw brokenRule(error, table, record);
      }
      rowCounts[table.name] = (rowCounts[table.name] ?? 0) + 1;
    }
    db.exec('COMMIT');
    return rowCounts;
  } catch (error) {
    // SQLite rolls some failures back itself (SQLITE_FULL, an I/O error); roll back what is still open.
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

function refuseUnlessEmpty(db: Database.Database): void {
  const occupied = CATALOG_DUMP_TABLES.filter(
    (table) => table.name !== 'meta' && db.prepare(`SELECT 1 FROM ${quote(table.name)} LIMIT 1`).get() !== undefined,
  ).map((table) => table.name);
  if (occupied.length === 0) return;
  throw new ShardpoolError(
    'CATALOG_NOT_EMPTY',
    `the catalog ${db.name} already holds rows (in ${occupied.join(', ')}); a dump is loaded only into an empty catalog ` +
      '(a pool just made by shardpool init, or one whose catalog file was moved away)',
    { path: db.name, tables: occupied.join(',') },
  );
}

/** A row the schema refuses (a duplicate, a fragment on an unknown disk, a value a CHECK forbids) is a bad line. */
function brokenRule(error: unknown, table: DumpTable, record: CatalogRecord): unknown {
  if (!(error instanceof Database.SqliteError) || !error.code.startsWith('SQLITE_CONSTRAINT')) return error;
  const line = record.lineNumber;
  return new ShardpoolError(
    'CATALOG_DUMP_INVALID',
    `${line === undefined ? 'a record' : `line ${line}`}: the row of ${table.name} breaks a rule of the catalog (${error.message})`,
    { line, table: table.name, sqliteCode: error.code },
    { cause: error },
  );
}

/**
 * The dump format must carry every table and column of the schema, with their types, or a dump would silently lose
 * rows: a migration that adds a table or a column fails here (a programmer error) until format/catalog-dump.ts
 * lists it too.
 */
function assertDumpCoversSchema(db: Database.Database): void {
  const tables = (
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name`).all() as Array<{
      name: string;
    }>
  ).map((row) => row.name);
  const expected = CATALOG_DUMP_TABLES.map((table) => table.name).sort();
  assert(
    tables.join(',') === expected.join(','),
    `the catalog dump covers every table of the schema (schema: ${tables.join(', ')}; dump: ${expected.join(', ')})`,
  );
  for (const table of CATALOG_DUMP_TABLES) {
    const schema = (
      db.prepare(`SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid`).all(table.name) as Array<{
        name: string;
        type: string;
        notnull: number;
        pk: number;
      }>
    ).map((column) => `${column.name}:${column.type.toLowerCase()}${column.notnull === 0 && column.pk === 0 ? '?' : ''}`);
    const dumped = table.columns.map((column) => `${column.name}:${column.type}${column.nullable ? '?' : ''}`);
    assert(
      schema.join(',') === dumped.join(','),
      `the catalog dump has every column of ${table.name} (schema: ${schema.join(', ')}; dump: ${dumped.join(', ')})`,
    );
    const key = (
      db.prepare(`SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`).all(table.name) as Array<{ name: string }>
    ).map((column) => column.name);
    assert(key.join(',') === table.primaryKey.join(','), `the catalog dump orders ${table.name} by its primary key`);
  }
}

function quote(name: string): string {
  assert(/^[a-z_]+$/.test(name), 'table and column names of the dump format are plain identifiers');
  return `"${name}"`;
}
