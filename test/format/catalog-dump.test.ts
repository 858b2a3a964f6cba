// The catalog dump format on its own: it covers every table and column of the schema, and every way a dump can be
// short, altered or of another version is refused with its code and the line it concerns.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { CATALOG_DUMP_LINE_MAX_BYTES, CATALOG_SCHEMA_VERSION } from '../../src/constants.js';
import { isShardpoolError, type ErrorCode } from '../../src/errors.js';
import {
  CATALOG_DUMP_OLDEST_SCHEMA_VERSION,
  CATALOG_DUMP_TABLES,
  encodeCatalogDump,
  openCatalogDump,
  type CatalogRecord,
  type DumpHeader,
} from '../../src/format/catalog-dump.js';
import { openCatalog } from '../../src/pool/catalog/open-catalog.js';
import { catalogMigrations, SQLITE_DIALECT } from '../../src/pool/catalog/schema.js';
import { makeTempDir } from '../support/temp-dir.js';

const FIXTURE = new URL('../../../test/fixtures/format/v1/catalog-dump.jsonl', import.meta.url);
/** The same pool's catalog at schema 4 (S3 content headers and part sizes), with values in the new columns. */
const FIXTURE_SCHEMA_4 = new URL('../../../test/fixtures/format/v1/catalog-dump-schema-4.jsonl', import.meta.url);

const HEADER: DumpHeader = {
  formatVersion: 1,
  poolUuid: '6f1c1a55-3d8e-4d8a-9b0e-2f1d3c4b5a69',
  catalogSchemaVersion: CATALOG_SCHEMA_VERSION,
  engine: 'sqlite',
  createdAt: '2025-01-31T02:00:00.000Z',
};

const RECORDS: CatalogRecord[] = [
  { table: 'meta', row: { name: 'discard', value: 'batch' } },
  { table: 'disks', row: { id: 1, uuid: 'a13badc8-b579-4925-b6f2-1dd965c2896a', kind: 'directory', path: '/mnt/d1', state: 'healthy', added_at_ms: 5, node: '' } },
  { table: 'disks', row: { id: 2, uuid: 'bbf2b13f-244b-4e05-827d-acd747ab89f2', kind: 'directory', path: '/mnt/d2', state: 'healthy', added_at_ms: 6, node: '' } },
  {
    table: 'object_metadata',
    row: {
      version_id: '24762d89-26e2-4766-86d3-a2009740bcd9',
      etag: '"e"',
      content_type: null,
      user_metadata: '{}',
      content_headers: '{"cache-control":"no-cache"}',
      part_sizes: '[5242880,3]',
      encryption: null,
      acl: 'public-read',
    },
  },
  { table: 'extents', row: { version_id: 'v1', extent_index: 0, length_bytes: 10, checksum: Buffer.from('00ff10', 'hex') } },
  { table: 'extents', row: { version_id: 'v1', extent_index: 1, length_bytes: 10, checksum: Buffer.from('ab', 'hex') } },
  { table: 'counters', row: { name: 'a', value: 1 } },
  // Keys in UTF-8 byte order, which is not UTF-16 order: U+FF5E sorts before the surrogate pair of U+1F600.
  { table: 'buckets', row: { name: 'b\uff5e', created_at_ms: 1, owner: 'alice', acl: 'private' } },
  { table: 'buckets', row: { name: 'b\u{1f600}', created_at_ms: 2, owner: null, acl: 'public-read' } },
  { table: 'nodes', row: { name: 'n1', address: 'http://198.18.0.2:7480', state: 'active', joined_at_ms: 3, lease_expires_ms: 4, last_seen_ms: 3 } },
];

async function collect(lines: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const line of lines) text += line;
  return text;
}

async function* fromArray<T>(items: ReadonlyArray<T>): AsyncGenerator<T> {
  yield* items;
}

async function dumpText(records: ReadonlyArray<CatalogRecord> = RECORDS): Promise<string> {
  return collect(encodeCatalogDump(HEADER, fromArray(records)));
}

/** Reads a whole dump as a load does; resolves with the records. */
async function readDump(text: string | Buffer, pieceBytes = 5): Promise<CatalogRecord[]> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) pieces.push(bytes.subarray(offset, offset + pieceBytes));
  const dump = await openCatalogDump(fromArray(pieces), 'dump.jsonl');
  const records: CatalogRecord[] = [];
  try {
    for await (const record of dump.records) records.push(record);
  } finally {
    await dump.close();
  }
  return records;
}

async function assertRefused(text: string | Buffer, code: ErrorCode, line?: number): Promise<void> {
  await assert.rejects(readDump(text), (error: unknown) => {
    assert.ok(isShardpoolError(error, code), `expected ${code}, got ${String(error)}`);
    if (line !== undefined) assert.equal(error.details.line, line, error.message);
    return true;
  });
}

function replaceLine(text: string, lineNumber: number, change: (line: string) => string): string {
  const lines = text.split('\n');
  lines[lineNumber - 1] = change(lines[lineNumber - 1] as string);
  return lines.join('\n');
}

test('the dump format lists every table and every column of the catalog schema, in schema order', () => {
  // Read from the migrations themselves, so a table or column added to the schema and not to the dump fails here.
  const schema = new Map<string, string[]>();
  for (const migration of catalogMigrations(SQLITE_DIALECT)) {
    for (const match of migration.matchAll(/CREATE TABLE (\w+) \(([\s\S]*?)\n\s*\)( WITHOUT ROWID)?;/g)) {
      const columns = (match[2] as string)
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('--') && !line.startsWith('PRIMARY KEY') && !line.startsWith('UNIQUE'))
        .map((line) => line.split(/\s+/)[0] as string);
      schema.set(match[1] as string, columns);
    }
    for (const match of migration.matchAll(/ALTER TABLE (\w+) ADD COLUMN (\w+)/g)) schema.get(match[1] as string)?.push(match[2] as string);
    // A table made anew (SQLite cannot change constraints): the old one dropped, the new one renamed to its name.
    for (const match of migration.matchAll(/DROP TABLE (\w+);/g)) schema.delete(match[1] as string);
    for (const match of migration.matchAll(/ALTER TABLE (\w+) RENAME TO (\w+);/g)) {
      schema.set(match[2] as string, schema.get(match[1] as string) ?? []);
      schema.delete(match[1] as string);
    }
  }
  assert.deepEqual([...schema.keys()].sort(), CATALOG_DUMP_TABLES.map((table) => table.name).sort(), 'tables');
  for (const table of CATALOG_DUMP_TABLES) {
    assert.deepEqual(table.columns.map((column) => column.name), schema.get(table.name), `columns of ${table.name}`);
  }
});

test('a dump reads back as the records it was written from, in pieces of any size', async () => {
  const text = await dumpText();
  for (const pieceBytes of [1, 7, 4096]) {
    const records = await readDump(text, pieceBytes);
    assert.deepEqual(
      records.map((record) => ({ table: record.table, row: record.row })),
      RECORDS,
    );
  }
  assert.equal(text.split('\n').length, RECORDS.length + 3, 'header, rows, trailer, and the final newline');
});

test('the version 1 fixture reads forever, writes back to the same bytes and loads into a new catalog', async (t) => {
  for (const fixture of [FIXTURE, FIXTURE_SCHEMA_4]) {
    const bytes = await fs.readFile(fixture);
    const dump = await openCatalogDump(fromArray([bytes]), 'fixture');
    const records: CatalogRecord[] = [];
    for await (const record of dump.records) records.push(record);
    assert.equal(dump.header.formatVersion, 1);
    const schemaVersion = dump.header.catalogSchemaVersion;
    const tablesThen = CATALOG_DUMP_TABLES.filter((table) => (table.since ?? 1) <= schemaVersion);
    assert.ok(new Set(records.map((record) => record.table)).size === tablesThen.length, 'the fixture has rows in every table of its schema');
    const withoutLines = (list: ReadonlyArray<CatalogRecord>) => list.map((record) => ({ table: record.table, row: record.row }));
    if (dump.header.catalogSchemaVersion === CATALOG_SCHEMA_VERSION) {
      const rewritten = await collect(encodeCatalogDump(dump.header, fromArray(records)));
      assert.equal(rewritten, bytes.toString('utf8'));
    } else {
      // A dump of an older schema: the columns added since hold what their migration gave existing rows.
      if (schemaVersion < 4) {
        for (const record of records.filter((candidate) => candidate.table === 'object_metadata')) {
          assert.equal(record.row['content_headers'], '{}');
          assert.equal(record.row['part_sizes'], null);
        }
        for (const record of records.filter((candidate) => candidate.table === 'multipart_uploads')) assert.equal(record.row['content_headers'], '{}');
      }
      // Objects and uploads from before encryption at rest are plaintext.
      for (const record of records.filter((candidate) => candidate.table === 'object_metadata' || candidate.table === 'multipart_uploads')) {
        assert.equal(record.row['encryption'], null);
      }
      // Versions from before version manifests have sequence 0.
      for (const record of records.filter((candidate) => candidate.table === 'objects')) assert.equal(record.row['sequence'], 0);
    }
    // And today's engine loads it, and dumps it back to the same rows.
    const directory = await makeTempDir(t, 'catalog-dump-fixture');
    const catalog = await openCatalog(directory, { engine: 'sqlite' }, { create: true });
    try {
      await catalog.loadRecords(fromArray(records));
      const dumped: CatalogRecord[] = [];
      for await (const record of catalog.dumpRecords()) dumped.push(record);
      assert.deepEqual(withoutLines(dumped), withoutLines(records));
    } finally {
      await catalog.close();
    }
  }
});

test('a dump cut short is CATALOG_DUMP_TRUNCATED: empty, without its trailer, or inside a line', async () => {
  const text = await dumpText();
  const lines = text.split('\n');
  await assertRefused('', 'CATALOG_DUMP_TRUNCATED');
  await assertRefused(lines.slice(0, 1).join('\n') + '\n', 'CATALOG_DUMP_TRUNCATED', 1);
  await assertRefused(lines.slice(0, 5).join('\n') + '\n', 'CATALOG_DUMP_TRUNCATED', 5);
  await assertRefused(text.slice(0, text.length - 20), 'CATALOG_DUMP_TRUNCATED', RECORDS.length + 2);
  await assertRefused(text.slice(0, text.length - 1), 'CATALOG_DUMP_TRUNCATED', RECORDS.length + 2);
  await assertRefused(text.slice(0, 30), 'CATALOG_DUMP_TRUNCATED', 1);
});

test('a bad line is CATALOG_DUMP_INVALID naming its line', async () => {
  const text = await dumpText();
  const cases: Array<[string, number]> = [
    [replaceLine(text, 3, (line) => line.replace('"id":1', '"id":"1"')), 3],
    [replaceLine(text, 3, (line) => line.replace('"id":1', '"id":1.5')), 3],
    [replaceLine(text, 3, (line) => line.replace('"path":"/mnt/d1",', '')), 3],
    [replaceLine(text, 3, (line) => line.replace('"state"', '"colour":"red","state"')), 3],
    [replaceLine(text, 3, (line) => line.replace('"disks"', '"diskz"')), 3],
    [replaceLine(text, 3, () => 'not json'), 3],
    [replaceLine(text, 3, () => '[1,2]'), 3],
    [replaceLine(text, 6, (line) => line.replace('"00ff10"', '"00FF10"')), 6],
    [replaceLine(text, 6, (line) => line.replace('"00ff10"', '"0ff"')), 6],
    [replaceLine(text, 5, (line) => line.replace('"content_type":null', '"content_type":7')), 5],
    [replaceLine(text, 2, (line) => line.replace('"value":"batch"', '"value":null')), 2],
    // Out of order: a row repeated, a table before one it follows.
    [replaceLine(text, 4, (line) => line.replace('"id":2', '"id":1')), 4],
    [replaceLine(text, 8, (line) => line.replace('"counters"', '"meta"').replace('"value":1', '"value":"1"')), 8],
    // The trailer disagrees: a line lost, a value altered.
    [text.split('\n').filter((_, index) => index !== 7).join('\n'), RECORDS.length + 1],
    [replaceLine(text, 6, (line) => line.replace('"length_bytes":10', '"length_bytes":11')), RECORDS.length + 2],
    [`${text}{"table":"meta","row":{"name":"x","value":"y"}}\n`, RECORDS.length + 3],
    [replaceLine(text, 1, (line) => line.replace('"format":"shardpool-catalog-dump"', '"format":"something-else"')), 1],
    [replaceLine(text, 1, (line) => line.replace(/"poolUuid":"[^"]+"/, '"poolUuid":"nope"')), 1],
  ];
  for (const [bad, line] of cases) await assertRefused(bad, 'CATALOG_DUMP_INVALID', line);
  // Not UTF-8, and a line too long to be a row.
  const bytes = Buffer.from(text, 'utf8');
  const broken = Buffer.concat([bytes.subarray(0, bytes.indexOf('/mnt/d1')), Buffer.from([0xff]), bytes.subarray(bytes.indexOf('/mnt/d1'))]);
  await assertRefused(broken, 'CATALOG_DUMP_INVALID', 3);
  const long = replaceLine(text, 2, (line) => line.replace('"batch"', JSON.stringify('x'.repeat(CATALOG_DUMP_LINE_MAX_BYTES))));
  await assertRefused(long, 'CATALOG_DUMP_INVALID', 2);
});

test('a dump of a newer format or of another schema version is CATALOG_DUMP_UNSUPPORTED', async () => {
  const text = await dumpText();
  await assertRefused(replaceLine(text, 1, (line) => line.replace('"formatVersion":1', '"formatVersion":2')), 'CATALOG_DUMP_UNSUPPORTED');
  const schema = (version: number) =>
    replaceLine(text, 1, (line) => line.replace(`"catalogSchemaVersion":${CATALOG_SCHEMA_VERSION}`, `"catalogSchemaVersion":${version}`));
  await assertRefused(schema(CATALOG_SCHEMA_VERSION + 1), 'CATALOG_DUMP_UNSUPPORTED');
  await assertRefused(schema(CATALOG_DUMP_OLDEST_SCHEMA_VERSION - 1), 'CATALOG_DUMP_UNSUPPORTED');
});
