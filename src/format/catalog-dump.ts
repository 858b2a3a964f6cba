// A catalog dump (`shardpool catalog dump`): every row of the catalog as portable, versioned JSON lines, the same
// whatever engine keeps the catalog, so a pool's metadata can be kept beside a backup, inspected with ordinary tools
// and loaded into a fresh catalog of any engine.
// Layout (docs/format.md § Catalog dump), one JSON object per line, every line ending in "\n":
//   line 1        header   {"format":"shardpool-catalog-dump","formatVersion":1,"poolUuid":UUID,
//                           "catalogSchemaVersion":4,"engine":"sqlite","createdAt":ISO-8601}
//   lines 2..n-1  rows     {"table":"disks","row":{"id":1,"uuid":…}}   tables in CATALOG_DUMP_TABLES order, rows in
//                          primary-key order (text compared as UTF-8 bytes), columns in schema order, BLOBs as hex
//   line n        trailer  {"end":"shardpool-catalog-dump","rowCounts":{"meta":1,…},"rowsSha256":HEX}
// Every line after the header is a function of the catalog's rows alone: two dumps of the same catalog, from any
// engine, are byte for byte the same from line 2 on, and rowsSha256 (of lines 2..n-1, "\n" included) is equal.
// A dump cut short lacks its trailer (CATALOG_DUMP_TRUNCATED); a line lost, added or altered in the middle breaks
// the trailer's counts or digest (CATALOG_DUMP_INVALID).
import { createHash } from 'node:crypto';
import { assert } from '../assert.js';
import { CATALOG_DUMP_FORMAT_VERSION, CATALOG_DUMP_LINE_MAX_BYTES, CATALOG_SCHEMA_VERSION } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { isUuid } from './uuid.js';

export const CATALOG_DUMP_FORMAT_TAG = 'shardpool-catalog-dump';

export type DumpColumnType = 'integer' | 'text' | 'blob';

export interface DumpColumn {
  readonly name: string;
  readonly type: DumpColumnType;
  readonly nullable: boolean;
  /** The catalog schema version that added the column (1 when absent); a dump of an older schema lacks it. */
  readonly since?: number;
  /** What a dump of an older schema, which lacks the column, loads as (the migration's default). */
  readonly fallback?: DumpValue;
}

export interface DumpTable {
  /** The catalog schema version that added the table (1 when absent); a dump of an older schema has no rows of it. */
  readonly since?: number;
  readonly name: string;
  /** In schema order (the order of CREATE TABLE, then of ALTER TABLE … ADD COLUMN). */
  readonly columns: ReadonlyArray<DumpColumn>;
  readonly primaryKey: ReadonlyArray<string>;
}

/** A value as the engines hand it over: INTEGER → number, TEXT → string, BLOB → Buffer, NULL → null. */
export type DumpValue = number | string | Buffer | null;
export type DumpRow = Readonly<Record<string, DumpValue>>;

/** One row of one table, engine-neutral: what Catalog.dumpRecords yields and Catalog.loadRecords takes. */
export interface CatalogRecord {
  readonly table: string;
  /** Keyed by column name (the schema's SQL names). */
  readonly row: DumpRow;
  /** The dump line it was read from, for errors about it (absent for records read from a catalog). */
  readonly lineNumber?: number;
}

export interface DumpHeader {
  readonly formatVersion: number;
  /** The pool the catalog belongs to (pool.json's poolUuid). */
  readonly poolUuid: string;
  readonly catalogSchemaVersion: number;
  /** The engine the dump was read from ('sqlite'). */
  readonly engine: string;
  /** ISO 8601 time the dump's snapshot was taken. */
  readonly createdAt: string;
}

export interface DumpTrailer {
  readonly rowCounts: Readonly<Record<string, number>>;
  readonly rowsSha256: string;
}

const integer = (name: string): DumpColumn => ({ name, type: 'integer', nullable: false });
const text = (name: string): DumpColumn => ({ name, type: 'text', nullable: false });
const optionalText = (name: string): DumpColumn => ({ name, type: 'text', nullable: true });
const blob = (name: string): DumpColumn => ({ name, type: 'blob', nullable: false });
const addedInteger = (name: string, since: number, fallback: number): DumpColumn => ({ ...integer(name), since, fallback });
const addedText = (name: string, since: number, fallback: string): DumpColumn => ({ ...text(name), since, fallback });
const addedOptionalText = (name: string, since: number): DumpColumn => ({ ...optionalText(name), since, fallback: null });

/**
 * Every table of the catalog schema (pool/catalog/schema.ts), in dump order: a table comes after the tables
 * its rows refer to (fragments after disks), so a load inserts in this order. A schema change without a change here
 * fails the engine's check before any dump or load (and test/format/catalog-dump.test.ts).
 */
export const CATALOG_DUMP_TABLES: ReadonlyArray<DumpTable> = [
  { name: 'meta', primaryKey: ['name'], columns: [text('name'), text('value')] },
  {
    name: 'disks',
    primaryKey: ['id'],
    columns: [integer('id'), text('uuid'), text('kind'), text('path'), text('state'), integer('added_at_ms'), addedText('node', 8, '')],
  },
  {
    name: 'objects',
    primaryKey: ['key'],
    columns: [
      text('key'),
      text('version_id'),
      integer('size_bytes'),
      text('policy'),
      integer('fragment_count'),
      integer('fragments_needed'),
      integer('extent_size_bytes'),
      integer('extent_count'),
      integer('created_at_ms'),
      addedInteger('sequence', 5, 0),
    ],
  },
  {
    name: 'object_metadata',
    primaryKey: ['version_id'],
    columns: [
      text('version_id'),
      text('etag'),
      optionalText('content_type'),
      text('user_metadata'),
      addedText('content_headers', 4, '{}'),
      addedOptionalText('part_sizes', 4),
      addedOptionalText('encryption', 6),
      addedText('acl', 7, 'private'),
    ],
  },
  {
    name: 'extents',
    primaryKey: ['version_id', 'extent_index'],
    columns: [text('version_id'), integer('extent_index'), integer('length_bytes'), blob('checksum')],
  },
  {
    name: 'fragments',
    primaryKey: ['version_id', 'extent_index', 'fragment_index'],
    columns: [
      text('version_id'),
      integer('extent_index'),
      integer('fragment_index'),
      integer('disk_id'),
      integer('stored_bytes'),
      integer('location_bytes'),
    ],
  },
  {
    name: 'intents',
    primaryKey: ['version_id'],
    columns: [text('version_id'), text('key'), integer('started_at_ms'), addedInteger('sequence', 5, 0), addedText('node', 8, '')],
  },
  {
    name: 'moves',
    primaryKey: ['version_id', 'extent_index', 'fragment_index'],
    columns: [
      text('version_id'),
      integer('extent_index'),
      integer('fragment_index'),
      integer('source_disk_id'),
      integer('target_disk_id'),
      integer('started_at_ms'),
      integer('source_location_bytes'),
    ],
  },
  {
    name: 'garbage',
    primaryKey: ['version_id'],
    columns: [text('version_id'), text('key'), integer('queued_at_ms'), addedInteger('sequence', 5, 0), addedInteger('removal', 5, 0)],
  },
  { name: 'counters', primaryKey: ['name'], columns: [text('name'), integer('value')] },
  { name: 'sequences', primaryKey: ['name'], columns: [text('name'), integer('value')], since: 5 },
  {
    name: 'buckets',
    primaryKey: ['name'],
    columns: [text('name'), integer('created_at_ms'), addedOptionalText('owner', 7), addedText('acl', 7, 'private')],
  },
  {
    name: 'users',
    primaryKey: ['name'],
    // A dump from before schema 6 loads its users as admins, as the migration makes them (schema.ts, 5 → 6).
    columns: [text('name'), text('access_key_id'), text('secret_access_key'), integer('created_at_ms'), addedInteger('admin', 7, 1)],
  },
  {
    name: 'multipart_uploads',
    primaryKey: ['upload_id'],
    columns: [
      text('upload_id'),
      text('bucket'),
      text('key'),
      optionalText('content_type'),
      text('user_metadata'),
      integer('created_at_ms'),
      addedText('content_headers', 4, '{}'),
      addedOptionalText('encryption', 6),
    ],
  },
  {
    name: 'multipart_parts',
    primaryKey: ['upload_id', 'part_number'],
    columns: [
      text('upload_id'),
      integer('part_number'),
      text('part_key'),
      text('etag'),
      integer('size_bytes'),
      integer('uploaded_at_ms'),
    ],
  },
  {
    name: 'bucket_grants',
    primaryKey: ['bucket', 'user_name'],
    columns: [text('bucket'), text('user_name'), integer('may_read'), integer('may_write'), integer('may_own')],
    since: 7,
  },
  {
    name: 'nodes',
    primaryKey: ['name'],
    columns: [text('name'), text('address'), text('state'), integer('joined_at_ms'), integer('lease_expires_ms'), integer('last_seen_ms')],
    since: 8,
  },
];

const TABLE_INDEX = new Map(CATALOG_DUMP_TABLES.map((table, index) => [table.name, index]));

export function dumpTable(name: string): DumpTable | undefined {
  const index = TABLE_INDEX.get(name);
  return index === undefined ? undefined : CATALOG_DUMP_TABLES[index];
}

// ── writing ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The lines of a dump ("\n" included): the header, one line per record, the trailer. The records must come as an
 * engine's dumpRecords hands them over (tables in order, rows in primary-key order); that is asserted, since a dump
 * out of order could not be loaded.
 */
export async function* encodeCatalogDump(header: DumpHeader, records: AsyncIterable<CatalogRecord>): AsyncGenerator<string> {
  yield encodeDumpHeader(header);
  const rowCounts = emptyRowCounts();
  const digest = createHash('sha256');
  const order = new RowOrder();
  for await (const record of records) {
    const table = dumpTable(record.table);
    assert(table !== undefined, 'an engine dumps only the tables of the dump format');
    assert(order.accept(table, record.row) === undefined, 'an engine dumps tables in order and rows in primary-key order');
    const line = `${encodeDumpRecord(table, record.row)}\n`;
    digest.update(line, 'utf8');
    rowCounts[table.name] = (rowCounts[table.name] ?? 0) + 1;
    yield line;
  }
  yield encodeDumpTrailer({ rowCounts, rowsSha256: digest.digest('hex') });
}

export function encodeDumpHeader(header: DumpHeader): string {
  const document = {
    format: CATALOG_DUMP_FORMAT_TAG,
    formatVersion: header.formatVersion,
    poolUuid: header.poolUuid,
    catalogSchemaVersion: header.catalogSchemaVersion,
    engine: header.engine,
    createdAt: header.createdAt,
  };
  return `${JSON.stringify(document)}\n`;
}

/** One row line, without its "\n". Columns are written in schema order so that the same row is the same bytes. */
export function encodeDumpRecord(table: DumpTable, row: DumpRow): string {
  const fields: Record<string, number | string | null> = {};
  for (const column of table.columns) {
    const value = row[column.name];
    assert(value !== undefined && valueMismatch(column, value) === undefined, `${table.name}.${column.name} holds a value of its column's type`);
    fields[column.name] = Buffer.isBuffer(value) ? value.toString('hex') : value;
  }
  return JSON.stringify({ table: table.name, row: fields });
}

export function encodeDumpTrailer(trailer: DumpTrailer): string {
  const rowCounts: Record<string, number> = {};
  for (const table of CATALOG_DUMP_TABLES) rowCounts[table.name] = trailer.rowCounts[table.name] ?? 0;
  return `${JSON.stringify({ end: CATALOG_DUMP_FORMAT_TAG, rowCounts, rowsSha256: trailer.rowsSha256 })}\n`;
}

// ── reading ───────────────────────────────────────────────────────────────────────────────────────────────────

export interface OpenedDump {
  readonly header: DumpHeader;
  /**
   * The rows, each validated (types, columns, order) as it is read. The iteration ends normally only after the
   * trailer was read and agrees with every row before it: a consumer commits what it loaded only then.
   */
  readonly records: AsyncIterable<CatalogRecord>;
  /** Stops reading the source (also when the records were never iterated). */
  close(): Promise<void>;
}

/** Reads and validates the header of a dump from `chunks` (a file or a pipe), leaving the rows to be streamed. */
export async function openCatalogDump(chunks: AsyncIterable<Uint8Array>, source: string): Promise<OpenedDump> {
  const lines = splitDumpLines(chunks, source);
  let first: IteratorResult<DumpLine>;
  try {
    first = await lines.next();
  } catch (error) {
    await lines.return(undefined);
    throw error;
  }
  if (first.done === true) throw truncated(source, `${source} is empty: a catalog dump starts with its header line`, 0);
  let header: DumpHeader;
  try {
    if (!first.value.terminated) throw truncated(source, `${source} ends in the middle of its header line`, 1);
    header = decodeDumpHeader(first.value.text, source);
  } catch (error) {
    await lines.return(undefined);
    throw error;
  }
  return {
    header,
    records: decodeRows(lines, source, header.catalogSchemaVersion),
    close: async () => {
      await lines.return(undefined);
    },
  };
}

/** Parses and validates the header line; a newer format or another schema version is CATALOG_DUMP_UNSUPPORTED. */
export function decodeDumpHeader(lineText: string, source: string): DumpHeader {
  const invalid = (why: string) => invalidLine(source, 1, why);
  const fields = parseObject(lineText, invalid);
  if (fields.format !== CATALOG_DUMP_FORMAT_TAG) throw invalid(`not a shardpool catalog dump ("format" must be "${CATALOG_DUMP_FORMAT_TAG}")`);
  expectKeys(fields, ['format', 'formatVersion', 'poolUuid', 'catalogSchemaVersion', 'engine', 'createdAt'], invalid, 'the header');
  if (!isPositiveInteger(fields.formatVersion)) throw invalid('"formatVersion" must be a positive integer');
  if (fields.formatVersion > CATALOG_DUMP_FORMAT_VERSION) {
    throw new ShardpoolError(
      'CATALOG_DUMP_UNSUPPORTED',
      `${source} is a catalog dump of format version ${fields.formatVersion}; this shardpool reads up to ${CATALOG_DUMP_FORMAT_VERSION}: upgrade shardpool`,
      { source, formatVersion: fields.formatVersion },
    );
  }
  if (!isPositiveInteger(fields.catalogSchemaVersion)) throw invalid('"catalogSchemaVersion" must be a positive integer');
  if (fields.catalogSchemaVersion < CATALOG_DUMP_OLDEST_SCHEMA_VERSION || fields.catalogSchemaVersion > CATALOG_SCHEMA_VERSION) {
    const newer = fields.catalogSchemaVersion > CATALOG_SCHEMA_VERSION;
    throw new ShardpoolError(
      'CATALOG_DUMP_UNSUPPORTED',
      `${source} holds a catalog of schema version ${fields.catalogSchemaVersion}; this shardpool loads schema version ` +
        `${CATALOG_DUMP_OLDEST_SCHEMA_VERSION} to ${CATALOG_SCHEMA_VERSION}${newer ? ': upgrade shardpool' : ''}`,
      { source, catalogSchemaVersion: fields.catalogSchemaVersion },
    );
  }
  if (!isUuid(fields.poolUuid)) throw invalid('"poolUuid" must be a UUID');
  if (typeof fields.engine !== 'string' || fields.engine.length === 0) throw invalid('"engine" must be a name');
  if (typeof fields.createdAt !== 'string' || Number.isNaN(Date.parse(fields.createdAt))) throw invalid('"createdAt" must be an ISO 8601 time');
  return {
    formatVersion: fields.formatVersion,
    poolUuid: fields.poolUuid,
    catalogSchemaVersion: fields.catalogSchemaVersion,
    engine: fields.engine,
    createdAt: fields.createdAt,
  };
}

/** The oldest catalog schema a dump may hold and still load (the first dumps were made of schema 3; columns added since load as their fallback). */
export const CATALOG_DUMP_OLDEST_SCHEMA_VERSION = 3;

const existsAt = (schemaVersion: number) => (item: { readonly since?: number }): boolean => (item.since ?? 1) <= schemaVersion;

/**
 * Validates one row line: a known table, exactly its columns (as of the dump's schema version), each of its type.
 * Columns added after that version are filled with their fallback, so the record has every column of today's.
 */
export function decodeDumpRecord(
  fields: Record<string, unknown>,
  lineNumber: number,
  source: string,
  schemaVersion: number = CATALOG_SCHEMA_VERSION,
): CatalogRecord {
  const invalid = (why: string) => invalidLine(source, lineNumber, why);
  expectKeys(fields, ['table', 'row'], invalid, 'a row line');
  const table = typeof fields.table === 'string' ? dumpTable(fields.table) : undefined;
  if (table === undefined || !existsAt(schemaVersion)(table)) throw invalid(`unknown table ${JSON.stringify(fields.table)}`);
  const raw = fields.row;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('"row" must be an object');
  const given = raw as Record<string, unknown>;
  expectKeys(given, table.columns.filter(existsAt(schemaVersion)).map((column) => column.name), invalid, `a row of ${table.name}`);
  const row: Record<string, DumpValue> = {};
  for (const column of table.columns) {
    if (!existsAt(schemaVersion)(column)) {
      assert(column.fallback !== undefined, 'a column added to the schema has a fallback for older dumps');
      row[column.name] = column.fallback;
      continue;
    }
    let value = given[column.name];
    if (column.type === 'blob' && typeof value === 'string') {
      if (!HEX_PATTERN.test(value)) throw invalid(`${table.name}.${column.name} must be lower-case hex`);
      value = Buffer.from(value, 'hex');
    }
    const mismatch = valueMismatch(column, value);
    if (mismatch !== undefined) throw invalid(`${table.name}.${column.name} ${mismatch}`);
    row[column.name] = value as DumpValue;
  }
  return { table: table.name, row, lineNumber };
}

// ── internals ─────────────────────────────────────────────────────────────────────────────────────────────────

interface DumpLine {
  readonly text: string;
  readonly lineNumber: number;
  /** False for bytes after the last "\n": the file was cut in the middle of a line. */
  readonly terminated: boolean;
}

const HEX_PATTERN = /^(?:[0-9a-f]{2})*$/;
const NEWLINE = 0x0a;

async function* decodeRows(lines: AsyncGenerator<DumpLine>, source: string, schemaVersion: number): AsyncGenerator<CatalogRecord> {
  const rowCounts = emptyRowCounts();
  const digest = createHash('sha256');
  const order = new RowOrder();
  let lastLineNumber = 1;
  try {
    for (;;) {
      const next = await lines.next();
      if (next.done === true) {
        throw truncated(source, `${source} ends after line ${lastLineNumber} without its trailer line: the dump was cut short`, lastLineNumber);
      }
      const line = next.value;
      lastLineNumber = line.lineNumber;
      if (!line.terminated) {
        throw truncated(source, `${source} ends in the middle of line ${line.lineNumber}: the dump was cut short`, line.lineNumber);
      }
      const invalid = (why: string) => invalidLine(source, line.lineNumber, why);
      const fields = parseObject(line.text, invalid);
      if ('end' in fields) {
        checkTrailer(fields, { rowCounts, rowsSha256: digest.digest('hex') }, invalid, schemaVersion);
        const after = await lines.next();
        if (after.done !== true) throw invalidLine(source, after.value.lineNumber, 'a line follows the trailer (the last line of a dump)');
        return;
      }
      const record = decodeDumpRecord(fields, line.lineNumber, source, schemaVersion);
      const table = dumpTable(record.table) as DumpTable;
      const misordered = order.accept(table, record.row);
      if (misordered !== undefined) throw invalid(misordered);
      digest.update(line.text, 'utf8');
      digest.update('\n', 'utf8');
      rowCounts[table.name] = (rowCounts[table.name] ?? 0) + 1;
      yield record;
    }
  } finally {
    await lines.return(undefined);
  }
}

function checkTrailer(fields: Record<string, unknown>, seen: DumpTrailer, invalid: (why: string) => ShardpoolError, schemaVersion: number): void {
  if (fields.end !== CATALOG_DUMP_FORMAT_TAG) throw invalid(`"end" must be "${CATALOG_DUMP_FORMAT_TAG}"`);
  expectKeys(fields, ['end', 'rowCounts', 'rowsSha256'], invalid, 'the trailer');
  const counts = fields.rowCounts;
  if (typeof counts !== 'object' || counts === null || Array.isArray(counts)) throw invalid('"rowCounts" must be an object');
  const given = counts as Record<string, unknown>;
  const tables = CATALOG_DUMP_TABLES.filter(existsAt(schemaVersion));
  expectKeys(given, tables.map((table) => table.name), invalid, '"rowCounts"');
  for (const table of tables) {
    const expected = given[table.name];
    const found = seen.rowCounts[table.name] ?? 0;
    if (expected !== found) {
      throw invalid(`the trailer counts ${String(expected)} rows of ${table.name} but the dump holds ${found}: lines were lost or added`);
    }
  }
  if (fields.rowsSha256 !== seen.rowsSha256) throw invalid('the rows do not match the trailer\'s "rowsSha256": the dump was altered');
}

/** Splits a byte stream into lines, each at most CATALOG_DUMP_LINE_MAX_BYTES, decoded as strict UTF-8. */
async function* splitDumpLines(chunks: AsyncIterable<Uint8Array>, source: string): AsyncGenerator<DumpLine> {
  // ignoreBOM: a byte-order mark is kept (and refused as not JSON), so the bytes digested are the bytes read.
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const decode = (bytes: Uint8Array, lineNumber: number): string => {
    try {
      return decoder.decode(bytes);
    } catch {
      throw invalidLine(source, lineNumber, 'not UTF-8');
    }
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNumber = 1;
  for await (const chunk of chunks) {
    const buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const end = buffer.indexOf(NEWLINE, start);
      if (end === -1) break;
      const piece = buffer.subarray(start, end);
      if (pendingBytes + piece.length > CATALOG_DUMP_LINE_MAX_BYTES) throw lineTooLong(source, lineNumber);
      const bytes = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      yield { text: decode(bytes, lineNumber), lineNumber, terminated: true };
      lineNumber += 1;
      start = end + 1;
    }
    if (start < buffer.length) {
      const rest = buffer.subarray(start);
      pendingBytes += rest.length;
      if (pendingBytes > CATALOG_DUMP_LINE_MAX_BYTES) throw lineTooLong(source, lineNumber);
      // A copy: the source may reuse its chunk once we return to it.
      pending.push(Buffer.from(rest));
    }
  }
  // Bytes after the last newline: a line cut in two. Its text is not decoded (it may end inside a character).
  if (pendingBytes > 0) yield { text: '', lineNumber, terminated: false };
}

/** Checks that rows come table by table in dump order and by strictly increasing primary key within a table. */
class RowOrder {
  private tableIndex = -1;
  private lastKey: DumpValue[] | undefined;

  /** Records the row; returns why it is out of order, or undefined. */
  accept(table: DumpTable, row: DumpRow): string | undefined {
    const index = TABLE_INDEX.get(table.name) as number;
    const key = table.primaryKey.map((name) => row[name] as DumpValue);
    if (index < this.tableIndex) {
      return `a row of ${table.name} after rows of ${(CATALOG_DUMP_TABLES[this.tableIndex] as DumpTable).name}: tables come in a fixed order`;
    }
    if (index === this.tableIndex && this.lastKey !== undefined && compareKeys(key, this.lastKey) <= 0) {
      return `a row of ${table.name} whose primary key (${table.primaryKey.join(', ')}) is not greater than the row before it: rows come in primary-key order, each once`;
    }
    this.tableIndex = index;
    this.lastKey = key;
    return undefined;
  }
}

function compareKeys(left: ReadonlyArray<DumpValue>, right: ReadonlyArray<DumpValue>): number {
  for (let index = 0; index < left.length; index += 1) {
    const order = compareValues(left[index] as DumpValue, right[index] as DumpValue);
    if (order !== 0) return order;
  }
  return 0;
}

/** Integers by value, text by its UTF-8 bytes (SQLite's BINARY collation; PostgreSQL's COLLATE "C"). */
function compareValues(left: DumpValue, right: DumpValue): number {
  if (typeof left === 'number' && typeof right === 'number') return left - right;
  if (typeof left === 'string' && typeof right === 'string') return compareUtf8(left, right);
  assert(Buffer.isBuffer(left) && Buffer.isBuffer(right), 'primary keys compare values of one type');
  return Buffer.compare(left, right);
}

/**
 * Orders strings as their UTF-8 bytes would be, without encoding them: UTF-8 byte order is code point order, which is
 * UTF-16 code unit order except that surrogates (U+D800–DFFF, pairs for code points from U+10000) sort above the
 * units U+E000–FFFF. Shifting the one range above the other at the first difference gives code point order.
 */
function compareUtf8(left: string, right: string): number {
  const length = Math.min(left.length, right.length);
  for (let index = 0; index < length; index += 1) {
    const a = left.charCodeAt(index);
    const b = right.charCodeAt(index);
    if (a !== b) return codePointRank(a) - codePointRank(b);
  }
  return left.length - right.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

/** Why `value` cannot be stored in `column`, or undefined when it can. */
function valueMismatch(column: DumpColumn, value: unknown): string | undefined {
  if (value === null) return column.nullable ? undefined : 'must not be null';
  switch (column.type) {
    case 'integer':
      return Number.isSafeInteger(value) ? undefined : 'must be an integer';
    case 'text':
      return typeof value === 'string' ? undefined : 'must be a string';
    case 'blob':
      return Buffer.isBuffer(value) ? undefined : 'must be hex';
  }
}

function emptyRowCounts(): Record<string, number> {
  return Object.fromEntries(CATALOG_DUMP_TABLES.map((table) => [table.name, 0]));
}

function parseObject(lineText: string, invalid: (why: string) => ShardpoolError): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(lineText);
  } catch {
    throw invalid('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not a JSON object');
  return value as Record<string, unknown>;
}

function expectKeys(fields: Record<string, unknown>, keys: ReadonlyArray<string>, invalid: (why: string) => ShardpoolError, what: string): void {
  const given = Object.keys(fields);
  if (given.length !== keys.length || !keys.every((key) => Object.hasOwn(fields, key))) {
    throw invalid(`${what} must have exactly the fields ${keys.join(', ')} (it has ${given.join(', ') || 'none'})`);
  }
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1;
}

function invalidLine(source: string, lineNumber: number, why: string): ShardpoolError {
  return new ShardpoolError('CATALOG_DUMP_INVALID', `${source} line ${lineNumber}: ${why}`, { source, line: lineNumber });
}

function lineTooLong(source: string, lineNumber: number): ShardpoolError {
  return invalidLine(source, lineNumber, `longer than ${CATALOG_DUMP_LINE_MAX_BYTES} bytes (no catalog row is)`);
}

function truncated(source: string, message: string, lineNumber: number): ShardpoolError {
  return new ShardpoolError('CATALOG_DUMP_TRUNCATED', message, { source, line: lineNumber });
}
