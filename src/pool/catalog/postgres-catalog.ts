// The PostgreSQL engine of the catalog: the npm `pg` client over a connection pool (pg.Pool), for pools whose
// metadata must outlive one machine. It implements the Catalog interface with the SQLite engine's semantics
// (sqlite-catalog.ts), checked by one conformance suite (test/pool/catalog/catalog-conformance.test.ts).
//
// Transactions. A call that is one statement runs on any pooled connection in autocommit. A call of several
// statements takes one connection for BEGIN … COMMIT (ROLLBACK on any error; the connection is always released,
// and destroyed when it broke). Inside a transaction (inBatch, a commit's inCommit) every call joins it; one of
// several statements runs in a savepoint of its own, as better-sqlite3's nested transactions do. inBatch is group
// commit: the calls made before the event loop turns share one transaction, each piece in a SAVEPOINT of its own
// (a piece that throws is undone alone); one batch runs at a time per catalog, the next gathers meanwhile.
// Isolation is READ COMMITTED throughout; where two writers (two calls of this process, or two processes sharing
// the database) could race, the statement that decides takes a row lock first:
//
//   race                                          lock
//   two commits / a commit and a remove of a key  SELECT … FOR UPDATE on the objects row; a key with no row yet is
//     (commitObject, removeObject, takeObject)     inserted with ON CONFLICT DO NOTHING and, when another inserter
//                                                  won, locked and replaced (UPDATE in place, so a waiter follows
//                                                  the row to the version that won). Remove and take are a single
//                                                  DELETE … RETURNING feeding the garbage INSERT (one statement).
//   replacePart / finishUpload of one upload      SELECT … FOR UPDATE on the multipart_uploads row, before reading
//     (and removeAbandonedParts)                   the part it replaces or the parts it forgets: part commits of
//                                                  one upload, Abort and Complete run one after another.
//   deleteBucket vs a put's bucket check          deleteBucket locks the buckets row FOR UPDATE and then looks for
//     (getBucket inside a transaction)             objects (and forgets uploads); getBucket inside a transaction (a put's
//                                                  inCommit) reads the row FOR SHARE, so a put in flight commits
//                                                  before the delete looks (and is seen) or finds the bucket gone.
//   two addDisk choosing an id                    LOCK TABLE disks IN EXCLUSIVE MODE (ids are the largest + 1)
//   recordIntentExtents vs dropping the intent    the intents row FOR KEY SHARE
//   finishGarbage vs another finishGarbage        the garbage row FOR UPDATE
//   fragmentStatus (intent, move, row)            one statement: one snapshot
//   dumpRecords                                   one REPEATABLE READ READ ONLY transaction on its own connection
//   migrations of two openers                     pg_advisory_xact_lock, the version read again under it
//
// A deadlock or serialization failure (40P01, 40001) between two such transactions is retried: a call of its own
// whole, a batch piece from its savepoint (pieces do nothing but catalog work). Errors: a server that cannot be
// reached, at open or later, is CATALOG_UNREACHABLE naming the address (never its password); the pool makes new
// connections by itself, so the call after a restart works. Other SQL errors but constraint violations (a bug, as
// on SQLite) are CATALOG_IO_FAILED with the SQLSTATE.
import { AsyncLocalStorage } from 'node:async_hooks';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { assert } from '../../assert.js';
import { readPrivateFile } from '../../io/durable-files.js';
import { CATALOG_DUMP_PAGE_ROWS, CATALOG_SCHEMA_VERSION, MANIFEST_EXTENT_INDEX } from '../../constants.js';
import { ShardpoolError, isShardpoolError } from '../../errors.js';
import type { DiskKind, FragmentAddress } from '../../disk/disk.js';
import { CATALOG_DUMP_TABLES, dumpTable, type CatalogRecord, type DumpRow, type DumpTable } from '../../format/catalog-dump.js';
import type {
  BucketGrant,
  BucketRow,
  CannedAcl,
  Catalog,
  CatalogOperations,
  CatalogTransaction,
  DiskRow,
  DiskState,
  NodeRow,
  NodeState,
  DiskUsage,
  ExtentRow,
  FragmentRow,
  FragmentToMove,
  NewObject,
  ObjectMetadata,
  ObjectRow,
  PartRow,
  S3Tables,
  UploadRow,
  UserRow,
} from './catalog.js';
import {
  bucketOfStored,
  grantOfStored,
  metadataOfStored,
  pagedObjects,
  settleBatch,
  storedMetadata,
  storedUploadValues,
  uploadOfStored,
  userOfStored,
  type BatchPiece,
  type PieceOutcome,
  type StoredBucket,
  type StoredGrant,
  type StoredMetadata,
  type StoredUpload,
  type StoredUser,
} from './engine-common.js';
import { catalogMigration, POSTGRES_DIALECT } from './schema.js';

/** The table holding the schema version; not part of the catalog's rows (the dump skips it). */
const NODE_COLUMNS = `name, address, state, joined_at_ms AS "joinedAtMs", lease_expires_ms AS "leaseExpiresMs", last_seen_ms AS "lastSeenMs"`;

const POSTGRES_SCHEMA_TABLE = 'catalog_schema';

/** Connections the pool keeps open at most (one catalog of one process). */
const POOL_CONNECTIONS_MAX = 8;
/** How long opening a connection may take before the server counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;
/** How often a transaction that lost a deadlock or a serialization check is run again. */
const CONFLICT_RETRIES_MAX = 5;
/** How many rows a listing reads at a time. */
/** The key of the advisory lock migrations hold (any constant: advisory locks are per database). */
const MIGRATION_LOCK_KEY = 0x5348_4450; // "SHDP"
/** The first of the two keys of the per-key commit lock (lockKey); the second is the key's hash. */
const KEY_LOCK_CLASS = 0x4b45_5953; // "KEYS"

/**
 * Opens (with `create`, makes) the catalog in the PostgreSQL database at `url` (postgresql://USER@HOST:PORT/DB,
 * `?host=/socket/dir` for a unix socket, `?sslmode=…`). The password comes from PGPASSWORD or PGPASSFILE
 * (~/.pgpass), as libpq takes it; a URL holding one is refused, since pool.json records the URL.
 */
export async function openPostgresCatalog(url: string, options: { create: boolean }): Promise<Catalog> {
  if (/^[a-z]+:\/\/[^@/?#]*:[^@/?#]*@/i.test(url) || /[?&]password=/i.test(url)) {
    throw new ShardpoolError(
      'USAGE_INVALID',
      `the catalog address ${describeAddress(url)} holds a password; give it in PGPASSWORD or PGPASSFILE instead (pool.json records the address)`,
      { address: describeAddress(url) },
    );
  }
  const address = describeAddress(url);
  // Parsed here rather than given as connectionString, which pg lets override the password function (its empty
  // password field wins), so that PGPASSFILE is read by libpq's rules below.
  const pool = new pg.Pool({
    ...parseIntoClientConfig(url),
    max: POOL_CONNECTIONS_MAX,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'shardpool',
    password: libpqPassword,
    types: TYPES,
  } as pg.PoolConfig);
  // An idle connection the server closed (a restart) is dropped by the pool; the next call opens a new one.
  pool.on('error', () => undefined);
  try {
    await prepareDatabase(pool, address, options);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  return new PostgresCatalog(pool, address).catalog;
}

/** The address without its password, for messages and error details. */
export function describeAddress(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/?#]*):[^@/?#]*@/i, '$1:***@').replace(/([?&]password=)[^&#]*/i, '$1***');
}

// ── sessions: where a statement runs ──────────────────────────────────────────────────────────────────────────

interface Session {
  readonly inTransaction: boolean;
  rows<R>(text: string, values?: ReadonlyArray<unknown>): Promise<R[]>;
  /** The number of rows the statement changed. */
  run(text: string, values?: ReadonlyArray<unknown>): Promise<number>;
  /** `work` in one transaction (`begin` … COMMIT outside one; a savepoint inside one). */
  transaction<T>(work: (session: Session) => Promise<T>, begin?: string): Promise<T>;
}

/** Set while a transaction's work runs: the catalog itself may not be called from there (as on SQLite). */
const insideTransaction = new AsyncLocalStorage<true>();

/** Every parameterized statement is prepared once per connection, under a name of its own. */
const statementNames = new Map<string, string>();

function statement(text: string, values: ReadonlyArray<unknown> | undefined): pg.QueryConfig {
  if (values === undefined) return { text };
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `shardpool_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return { name, text, values: values as unknown[] };
}

/** Autocommit on any pooled connection; transactions each on a connection of their own. */
class PoolSession implements Session {
  readonly inTransaction = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly address: string,
  ) {}

  async rows<R>(text: string, values?: ReadonlyArray<unknown>): Promise<R[]> {
    assertOutsideTransaction();
    try {
      return (await this.pool.query(statement(text, values))).rows as R[];
    } catch (error) {
      throw postgresError(error, this.address);
    }
  }

  async run(text: string, values?: ReadonlyArray<unknown>): Promise<number> {
    assertOutsideTransaction();
    try {
      return (await this.pool.query(statement(text, values))).rowCount ?? 0;
    } catch (error) {
      throw postgresError(error, this.address);
    }
  }

  async transaction<T>(work: (session: Session) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    assertOutsideTransaction();
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await withClient(this.pool, this.address, (client) => inTransaction(client, this.address, begin, work));
      } catch (error) {
        if (attempt >= CONFLICT_RETRIES_MAX || !isConflict(error)) throw error;
      }
    }
  }

  /** A connection of its own for `work` (dump, load), released (destroyed when it broke) whatever happens. */
  withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    assertOutsideTransaction();
    return withClient(this.pool, this.address, work);
  }
}

/** The connection of an open transaction: every statement joins it. */
class ClientSession implements Session {
  readonly inTransaction = true;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly address: string,
  ) {}

  async rows<R>(text: string, values?: ReadonlyArray<unknown>): Promise<R[]> {
    try {
      return (await this.client.query(statement(text, values))).rows as R[];
    } catch (error) {
      throw postgresError(error, this.address);
    }
  }

  async run(text: string, values?: ReadonlyArray<unknown>): Promise<number> {
    try {
      return (await this.client.query(statement(text, values))).rowCount ?? 0;
    } catch (error) {
      throw postgresError(error, this.address);
    }
  }

  /** In a savepoint: undone alone if it throws (a failed statement would otherwise abort the whole transaction). */
  transaction<T>(work: (session: Session) => Promise<T>): Promise<T> {
    return inSavepoint(this, 'catalog_call', () => work(this));
  }
}

async function inSavepoint<T>(session: Session, name: string, work: () => Promise<T>): Promise<T> {
  await session.run(`SAVEPOINT ${name}`);
  try {
    const result = await work();
    await session.run(`RELEASE SAVEPOINT ${name}`);
    return result;
  } catch (error) {
    // A broken connection has no transaction left to roll back to; the error that broke it is the one to tell.
    if (!isUnreachable(error)) await session.run(`ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`);
    throw error;
  }
}

async function withClient<T>(pool: pg.Pool, address: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw postgresError(error, address);
  }
  // A checked-out connection the server drops between two statements emits 'error'; the next statement fails.
  const ignore = () => undefined;
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (error) {
    if (isUnreachable(error) || !(error instanceof Error)) broken = error instanceof Error ? error : new Error(String(error));
    throw error;
  } finally {
    client.removeListener('error', ignore);
    client.release(broken);
  }
}

/** BEGIN (`begin`: with its isolation) … COMMIT around `work`, ROLLBACK when it throws. */
async function inTransaction<T>(client: pg.PoolClient, address: string, begin: string, work: (session: Session) => Promise<T>): Promise<T> {
  const session = new ClientSession(client, address);
  await session.run(begin);
  try {
    const result = await insideTransaction.run(true, () => work(session));
    await session.run('COMMIT');
    return result;
  } catch (error) {
    if (!isUnreachable(error)) {
      try {
        await session.run('ROLLBACK');
      } catch (rollbackError) {
        // The connection cannot be trusted any longer: withClient destroys it.
        throw isUnreachable(rollbackError) ? rollbackError : postgresError(new Error(`ROLLBACK failed: ${String(rollbackError)}`), address);
      }
    }
    throw error;
  }
}

function assertOutsideTransaction(): void {
  assert(insideTransaction.getStore() === undefined, "inside a transaction only its handle is used, never the catalog's");
}

// ── the catalog ───────────────────────────────────────────────────────────────────────────────────────────────

type BatchItem = BatchPiece;

class PostgresCatalog {
  readonly catalog: Catalog;
  private readonly session: PoolSession;
  private batch: BatchItem[] = [];
  private batchScheduled = false;
  /** The batch being committed: the next one starts after it (one batch at a time). */
  private batchRunning: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly address: string,
  ) {
    this.session = new PoolSession(pool, address);
    const rows = new PostgresRows(this.session);
    this.catalog = Object.assign(operationsOf(rows), {
      engine: 'postgresql',
      inBatch: <T>(work: (tx: CatalogTransaction) => Promise<T>) => this.inBatch(work),
      dumpRecords: () => this.dumpRecords(),
      loadRecords: (records: AsyncIterable<CatalogRecord>) => this.loadRecords(records),
      close: () => this.close(),
    });
  }

  inBatch<T>(work: (tx: CatalogTransaction) => Promise<T>): Promise<T> {
    assert(!this.closed, 'a closed catalog is not used');
    return new Promise<T>((resolve, reject) => {
      this.batch.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        setImmediate(() => {
          this.batchRunning = this.batchRunning.then(() => this.runBatch());
        });
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.batchScheduled || this.batch.length > 0) await new Promise((resolve) => setImmediate(resolve));
    await this.batchRunning;
    await this.pool.end();
  }

  private async runBatch(): Promise<void> {
    this.batchScheduled = false;
    const items = this.batch.splice(0);
    if (items.length === 0) return;
    const outcomes: PieceOutcome[] = [];
    try {
      await this.session.withClient((client) =>
        inTransaction(client, this.address, 'BEGIN', async (session) => {
          const tx = operationsOf(new PostgresRows(session));
          for (const item of items) {
            try {
              outcomes.push({ ok: true, value: await this.piece(session, tx, item) });
            } catch (error) {
              // The transaction is gone with its connection: the commit below fails, and every piece with it.
              if (isUnreachable(error)) throw error;
              outcomes.push({ ok: false, error });
            }
          }
        }),
      );
    } catch (error) {
      settleBatch(items, { failure: error });
      return;
    }
    settleBatch(items, { outcomes });
  }

  /** One piece of a batch in a savepoint of its own; run again from there when it lost a deadlock. */
  private async piece(session: Session, tx: CatalogTransaction, item: BatchItem): Promise<unknown> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await inSavepoint(session, 'batch_item', () => item.work(tx));
      } catch (error) {
        if (attempt >= CONFLICT_RETRIES_MAX || !isConflict(error)) throw error;
      }
    }
  }

  /**
   * One REPEATABLE READ READ ONLY transaction on a connection of its own (a snapshot writers do not disturb),
   * tables in dump order, a page of rows per statement by keyset pagination on the primary key.
   */
  async *dumpRecords(): AsyncGenerator<CatalogRecord> {
    const client = await this.connect();
    const ignore = () => undefined;
    client.on('error', ignore);
    let broken: Error | undefined;
    try {
      const session = new ClientSession(client, this.address);
      await session.run('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await assertDumpCoversSchema(session);
      for (const table of CATALOG_DUMP_TABLES) {
        const columns = table.columns.map((column) => quote(column.name)).join(', ');
        const key = table.primaryKey.map(quote);
        const order = `ORDER BY ${key.join(', ')} LIMIT ${CATALOG_DUMP_PAGE_ROWS}`;
        const first = `SELECT ${columns} FROM ${quote(table.name)} ${order}`;
        const after = `(${key.join(', ')}) > (${key.map((_, index) => `$${index + 1}`).join(', ')})`;
        const next = `SELECT ${columns} FROM ${quote(table.name)} WHERE ${after} ${order}`;
        let lastKey: unknown[] | undefined;
        for (;;) {
          const rows = lastKey === undefined ? await session.rows<DumpRow>(first, []) : await session.rows<DumpRow>(next, lastKey);
          for (const row of rows) yield { table: table.name, row };
          if (rows.length < CATALOG_DUMP_PAGE_ROWS) break;
          const last = rows[rows.length - 1] as DumpRow;
          lastKey = table.primaryKey.map((name) => last[name]);
        }
      }
      await session.run('COMMIT');
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      // Stopped early (return) or failed: the read transaction is dropped with the connection, never reused open.
      client.removeListener('error', ignore);
      client.release(broken ?? (await endedCleanly(client)));
    }
  }

  /** One transaction on a connection of its own, committed after the last record. */
  loadRecords(records: AsyncIterable<CatalogRecord>): Promise<Record<string, number>> {
    return this.session.withClient((client) =>
      inTransaction(client, this.address, 'BEGIN', async (session) => {
        await assertDumpCoversSchema(session);
        await refuseUnlessEmpty(session, this.address);
        const rowCounts: Record<string, number> = Object.fromEntries(CATALOG_DUMP_TABLES.map((table) => [table.name, 0]));
        // A new pool's catalog holds its settings (init's discard mode); the dump's settings replace them.
        await session.run('DELETE FROM meta', []);
        for await (const record of records) {
          const table = dumpTable(record.table);
          assert(table !== undefined, 'records name tables of the dump format');
          const insert = `INSERT INTO ${quote(table.name)} (${table.columns.map((column) => quote(column.name)).join(', ')})
            VALUES (${table.columns.map((_, index) => `$${index + 1}`).join(', ')})`;
          try {
            await inSavepoint(session, 'load_row', () => session.run(insert, table.columns.map((column) => record.row[column.name])));
          } catch (error) {
            throw brokenRule(error, table, record);
          }
          rowCounts[table.name] = (rowCounts[table.name] ?? 0) + 1;
        }
        return rowCounts;
      }),
    );
  }

  private async connect(): Promise<pg.PoolClient> {
    assertOutsideTransaction();
    try {
      return await this.pool.connect();
    } catch (error) {
      throw postgresError(error, this.address);
    }
  }
}

/** After a dump's generator stopped: an Error to destroy a connection whose transaction is still open. */
async function endedCleanly(client: pg.PoolClient): Promise<Error | undefined> {
  try {
    await client.query('ROLLBACK');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The operations of the rows, as a plain object of bound functions (the Catalog's and a transaction's handle). */
function operationsOf(rows: PostgresRows): CatalogOperations {
  const operations: CatalogOperations = {
    s3: rows.s3,
    addDisk: (disk) => rows.addDisk(disk),
    listDisks: () => rows.listDisks(),
    setDiskState: (diskId, state) => rows.setDiskState(diskId, state),
    setDiskPaths: (changes) => rows.setDiskPaths(changes),
    deleteDisk: (diskId) => rows.deleteDisk(diskId),
    diskUsage: () => rows.diskUsage(),
    joinNode: (node) => rows.joinNode(node),
    renewNodeLease: (name, nowMs, leaseMs) => rows.renewNodeLease(name, nowMs, leaseMs),
    listNodes: () => rows.listNodes(),
    setNodeState: (name, state) => rows.setNodeState(name, state),
    deleteNode: (name) => rows.deleteNode(name),
    beginIntent: (versionId, key, node) => rows.beginIntent(versionId, key, node),
    listIntents: () => rows.listIntents(),
    dropIntent: (versionId) => rows.dropIntent(versionId),
    commitObject: (newObject, inCommit) =>
      rows.session.transaction(async (session) => {
        const inside = new PostgresRows(session);
        const { replaced, superseded } = await inside.commitObjectRows(newObject);
        const alsoQueued = (await inCommit?.(operationsOf(inside), { replacedVersionId: replaced, superseded })) ?? [];
        // A version replaced at once by a later put is collected by its own put, like one it replaced.
        return { replacedVersionId: replaced, alsoQueued: superseded ? [...alsoQueued, newObject.object.versionId] : alsoQueued };
      }),
    recordIntentExtents: (versionId, extents) => rows.recordIntentExtents(versionId, extents),
    dropIntentRows: (versionId) => rows.dropIntentRows(versionId),
    getObject: (key) => rows.getObject(key),
    objectMetadata: (versionId) => rows.objectMetadata(versionId),
    isCurrentVersion: (key, versionId) => rows.isCurrentVersion(key, versionId),
    listObjects: (prefix) => rows.listObjects(prefix),
    objectsAfter: (afterKey, limit) => rows.objectsAfter(afterKey, limit),
    objectsFrom: (firstKey, limit) => rows.objectsFrom(firstKey, limit),
    objectOfVersion: (versionId) => rows.objectOfVersion(versionId),
    getSetting: (name) => rows.getSetting(name),
    setSetting: (name, value) => rows.setSetting(name, value),
    objectTotals: () => rows.objectTotals(),
    extentsOf: (versionId) => rows.extentsOf(versionId),
    removeObject: (key) => rows.removeObject(key),
    removeWithMarker: (key, marker) => rows.removeWithMarker(key, marker),
    garbageWaits: (versionId) => rows.garbageWaits(versionId),
    garbageKey: (versionId) => rows.garbageKey(versionId),
    removalMarkersOf: (key) => rows.removalMarkersOf(key),
    raiseSequence: (sequence) => rows.raiseSequence(sequence),
    lastSequence: () => rows.lastSequence(),
    takeObject: (key) => rows.takeObject(key),
    listGarbage: () => rows.listGarbage(),
    isGarbage: (versionId) => rows.isGarbage(versionId),
    fragmentsOfVersion: (versionId) => rows.fragmentsOfVersion(versionId),
    deleteFragmentRows: (addresses) => rows.deleteFragmentRows(addresses),
    finishGarbage: (versionId) => rows.finishGarbage(versionId),
    fragmentsToMove: (diskId, limit) => rows.fragmentsToMove(diskId, limit),
    beginMove: (fragment, targetDiskId) => rows.beginMove(fragment, targetDiskId),
    listMoves: () => rows.listMoves(),
    diskOfFragment: (address) => rows.diskOfFragment(address),
    fragmentRow: (address) => rows.fragmentRow(address),
    fragmentRows: (addresses) => rows.fragmentRows(addresses),
    fragmentsOnDisk: (diskId) => rows.fragmentsOnDisk(diskId),
    isMoving: (address) => rows.isMoving(address),
    hasIntent: (versionId) => rows.hasIntent(versionId),
    fragmentStatus: (fragment, place) => rows.fragmentStatus(fragment, place),
    dropMove: (address) => rows.dropMove(address),
    moveFragment: (address, from, to) => rows.moveFragment(address, from, to),
    widestExtentOnDisk: (diskId) => rows.widestExtentOnDisk(diskId),
    countFragmentsOnDisk: (diskId) => rows.countFragmentsOnDisk(diskId),
    redundancyReport: (unavailableDiskIds) => rows.redundancyReport(unavailableDiskIds),
    addToCounter: (name, delta) => rows.addToCounter(name, delta),
    counters: () => rows.counters(),
    extentOf: (versionId, extentIndex) => rows.extentOf(versionId, extentIndex),
  };
  return operations;
}

// ── the rows ──────────────────────────────────────────────────────────────────────────────────────────────────

const OBJECT_SELECT = `SELECT key, version_id AS "versionId", size_bytes AS "sizeBytes", policy,
  fragment_count AS "fragmentCount", fragments_needed AS "fragmentsNeeded", extent_size_bytes AS "extentSizeBytes",
  extent_count AS "extentCount", created_at_ms AS "createdAtMs", sequence FROM objects`;

/** Hands out the next commit sequence number (inside a transaction; the row stays locked until it ends). */
const NEXT_SEQUENCE = `INSERT INTO sequences (name, value) VALUES ('commit', 1)
  ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value`;

/** Serialises the commits and removals of one key until the transaction ends (keys whose hashes collide wait too). */
async function lockKey(session: Session, key: string): Promise<void> {
  await session.rows(`SELECT pg_advisory_xact_lock($1, hashtext($2))`, [KEY_LOCK_CLASS, key]);
}

const FRAGMENT_SELECT = `SELECT version_id AS "versionId", extent_index AS "extentIndex", fragment_index AS "fragmentIndex",
  disk_id AS "diskId", stored_bytes AS "storedBytes", location_bytes AS "locationBytes" FROM fragments`;

const FRAGMENT_KEY = `version_id = $1 AND extent_index = $2 AND fragment_index = $3`;

/** Every operation over one session: the pool (each call its own transaction) or an open transaction. */
class PostgresRows {
  readonly s3: PostgresS3Tables;

  constructor(readonly session: Session) {
    this.s3 = new PostgresS3Tables(session);
  }

  // ── disks ──────────────────────────────────────────────────────────────────────────────────────────────────────

  addDisk(disk: { uuid: string; kind: DiskKind; path: string; node?: string }): Promise<DiskRow> {
    return this.session.transaction(async (session) => {
      const addedAtMs = Date.now();
      const node = disk.node ?? '';
      // Numbered as SQLite numbers rowids; the lock keeps two adders from choosing the same number.
      await session.run('LOCK TABLE disks IN EXCLUSIVE MODE');
      const [row] = await session.rows<{ id: number }>(
        `INSERT INTO disks (id, uuid, kind, path, state, added_at_ms, node)
         VALUES ((SELECT coalesce(max(id), 0) + 1 FROM disks), $1, $2, $3, 'healthy', $4, $5) RETURNING id`,
        [disk.uuid, disk.kind, disk.path, addedAtMs, node],
      );
      assert(row !== undefined, 'an inserted disk has an id');
      return { id: row.id, uuid: disk.uuid, kind: disk.kind, path: disk.path, state: 'healthy' as const, addedAtMs, node };
    });
  }

  listDisks(): Promise<DiskRow[]> {
    return this.session.rows<DiskRow>(`SELECT id, uuid, kind, path, state, added_at_ms AS "addedAtMs", node FROM disks ORDER BY id`, []);
  }

  // ── nodes ──────────────────────────────────────────────────────────────────────────────────────────────────────

  async joinNode(node: { name: string; address: string; nowMs: number; leaseMs: number }): Promise<NodeRow> {
    const [row] = await this.session.rows<NodeRow>(
      `INSERT INTO nodes (name, address, state, joined_at_ms, lease_expires_ms, last_seen_ms) VALUES ($1, $2, 'active', $3, $4, $3)
       ON CONFLICT (name) DO UPDATE SET address = excluded.address,
         state = CASE WHEN nodes.state = 'failed' THEN 'active' ELSE nodes.state END,
         lease_expires_ms = excluded.lease_expires_ms, last_seen_ms = excluded.last_seen_ms
       RETURNING ${NODE_COLUMNS}`,
      [node.name, node.address, node.nowMs, node.nowMs + node.leaseMs],
    );
    assert(row !== undefined, 'an upsert returns its row');
    return row;
  }

  async renewNodeLease(name: string, nowMs: number, leaseMs: number): Promise<NodeRow | undefined> {
    await this.session.run(
      `UPDATE nodes SET lease_expires_ms = greatest(lease_expires_ms, $1), last_seen_ms = $2 WHERE name = $3 AND state <> 'failed'`,
      [nowMs + leaseMs, nowMs, name],
    );
    return (await this.session.rows<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes WHERE name = $1`, [name]))[0];
  }

  listNodes(): Promise<NodeRow[]> {
    return this.session.rows<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes ORDER BY name`, []);
  }

  async setNodeState(name: string, state: NodeState): Promise<void> {
    const changes = await this.session.run(`UPDATE nodes SET state = $1 WHERE name = $2`, [state, name]);
    assert(changes === 1, 'the node whose state changes exists');
  }

  deleteNode(name: string): Promise<void> {
    return this.session.transaction(async (session) => {
      await session.rows(`SELECT 1 FROM nodes WHERE name = $1 FOR UPDATE`, [name]);
      const [remaining] = await session.rows<{ n: number }>(`SELECT count(*) AS n FROM disks WHERE node = $1`, [name]);
      assert(remaining?.n === 0, 'a node is forgotten only when no disk belongs to it');
      await session.run(`DELETE FROM nodes WHERE name = $1`, [name]);
    });
  }

  async setDiskState(diskId: number, state: DiskState): Promise<void> {
    const changes = await this.session.run(`UPDATE disks SET state = $1 WHERE id = $2`, [state, diskId]);
    assert(changes === 1, 'the disk whose state changes exists');
  }

  setDiskPaths(changes: ReadonlyArray<{ diskId: number; path: string }>): Promise<void> {
    // Each moving disk first gets a placeholder path of its own, so paths traded between disks never collide midway.
    return this.session.transaction(async (session) => {
      for (const change of changes) {
        const moved = await session.run(`UPDATE disks SET path = 'moving:' || uuid WHERE id = $1`, [change.diskId]);
        assert(moved === 1, 'the disk whose path changes exists');
      }
      for (const change of changes) await session.run(`UPDATE disks SET path = $1 WHERE id = $2`, [change.path, change.diskId]);
    });
  }

  deleteDisk(diskId: number): Promise<void> {
    return this.session.transaction(async (session) => {
      await session.rows(`SELECT 1 FROM disks WHERE id = $1 FOR UPDATE`, [diskId]);
      const [remaining] = await session.rows<{ n: number }>(`SELECT count(*) AS n FROM fragments WHERE disk_id = $1`, [diskId]);
      assert(remaining?.n === 0, 'a disk is forgotten only when no fragment lives on it');
      await session.run(`DELETE FROM disks WHERE id = $1`, [diskId]);
    });
  }

  async diskUsage(): Promise<Map<number, DiskUsage>> {
    const rows = await this.session.rows<{ diskId: number } & DiskUsage>(
      `SELECT disk_id AS "diskId", count(*) AS "fragmentCount", coalesce(sum(stored_bytes), 0)::bigint AS "storedBytes"
       FROM fragments GROUP BY disk_id`,
      [],
    );
    return new Map(rows.map((row) => [row.diskId, { fragmentCount: row.fragmentCount, storedBytes: row.storedBytes }]));
  }

  // ── puts: intent, then commit ─────────────────────────────────────────────────────────────────────────────────

  beginIntent(versionId: string, key: string, node = ''): Promise<number> {
    // The sequence row is locked until this transaction ends: intents are numbered in the order they commit.
    return this.session.transaction(async (session) => {
      const [next] = await session.rows<{ value: number }>(NEXT_SEQUENCE, []);
      assert(next !== undefined, 'the upsert returns the new value');
      await session.run(`INSERT INTO intents (version_id, key, started_at_ms, sequence, node) VALUES ($1, $2, $3, $4, $5)`, [versionId, key, Date.now(), next.value, node]);
      return next.value;
    });
  }

  async lastSequence(): Promise<number> {
    return (await this.session.rows<{ value: number }>(`SELECT value FROM sequences WHERE name = 'commit'`, []))[0]?.value ?? 0;
  }

  async raiseSequence(sequence: number): Promise<void> {
    await this.session.run(
      `INSERT INTO sequences (name, value) VALUES ('commit', $1) ON CONFLICT (name) DO UPDATE SET value = greatest(sequences.value, excluded.value)`,
      [sequence],
    );
  }

  listIntents(): Promise<Array<{ versionId: string; key: string; node: string }>> {
    return this.session.rows(`SELECT version_id AS "versionId", key, node FROM intents ORDER BY version_id`, []);
  }

  async dropIntent(versionId: string): Promise<void> {
    await this.session.run(`DELETE FROM intents WHERE version_id = $1`, [versionId]);
  }

  /** Inside commitObject's transaction: the rows of the new version, the key pointed at it; the replaced version. */
  async commitObjectRows(newObject: NewObject): Promise<{ replaced: string | undefined; superseded: boolean }> {
    const { object, extents } = newObject;
    const session = this.session;
    assert(session.inTransaction, 'a commit runs in a transaction');
    await this.insertExtents(object.versionId, extents);
    const [stored] = await session.rows<{ extents: number; fragments: number }>(
      `SELECT (SELECT count(*) FROM extents WHERE version_id = $1 AND extent_index < $2) AS extents,
              (SELECT count(*) FROM fragments WHERE version_id = $1 AND extent_index < $2) AS fragments`,
      [object.versionId, MANIFEST_EXTENT_INDEX],
    );
    assert(stored?.extents === object.extentCount, 'every extent of the object is committed (recorded progress included)');
    assert(stored.fragments === object.extentCount * object.fragmentCount, 'every fragment of every extent is committed');
    if (newObject.metadata) {
      const metadata = storedMetadata(newObject.metadata);
      await session.run(
        `INSERT INTO object_metadata (version_id, etag, content_type, user_metadata, content_headers, part_sizes, encryption, acl) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [object.versionId, metadata.etag, metadata.contentType, metadata.userMetadata, metadata.contentHeaders, metadata.partSizes, metadata.encryption, metadata.acl],
      );
    }
    const values = [
      object.key,
      object.versionId,
      object.sizeBytes,
      object.policy,
      object.fragmentCount,
      object.fragmentsNeeded,
      object.extentSizeBytes,
      object.extentCount,
      object.createdAtMs,
      object.sequence,
    ];
    await session.run(`DELETE FROM intents WHERE version_id = $1`, [object.versionId]);
    // Commits and removals of one key, one at a time: what each reads of the key below is what it then changes.
    await lockKey(session, object.key);
    const [latest] = await session.rows<{ sequence: number }>(
      `SELECT greatest(coalesce((SELECT sequence FROM objects WHERE key = $1), 0),
                       coalesce((SELECT max(sequence) FROM garbage WHERE key = $1 AND removal = 1), 0)) AS sequence`,
      [object.key],
    );
    if ((latest?.sequence ?? 0) > object.sequence) {
      // A put or removal that started later committed first: it stays, and this version is replaced at once.
      await session.run(`INSERT INTO garbage (version_id, key, queued_at_ms, sequence) VALUES ($1, $2, $3, $4)`, [
        object.versionId,
        object.key,
        Date.now(),
        object.sequence,
      ]);
      return { replaced: undefined, superseded: true };
    }
    let replaced: string | undefined;
    for (;;) {
      // The key's row, locked: a concurrent commit or remove of the key waits for this one, and follows the row.
      const [current] = await session.rows<{ versionId: string; sequence: number }>(
        `SELECT version_id AS "versionId", sequence FROM objects WHERE key = $1 FOR UPDATE`,
        [object.key],
      );
      if (current !== undefined) {
        await session.run(
          `UPDATE objects SET version_id = $2, size_bytes = $3, policy = $4, fragment_count = $5, fragments_needed = $6,
             extent_size_bytes = $7, extent_count = $8, created_at_ms = $9, sequence = $10 WHERE key = $1`,
          values,
        );
        await session.run(`INSERT INTO garbage (version_id, key, queued_at_ms, sequence) VALUES ($1, $2, $3, $4)`, [
          current.versionId,
          object.key,
          Date.now(),
          current.sequence,
        ]);
        replaced = current.versionId;
        break;
      }
      const inserted = await session.run(
        `INSERT INTO objects (key, version_id, size_bytes, policy, fragment_count, fragments_needed, extent_size_bytes,
           extent_count, created_at_ms, sequence) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (key) DO NOTHING`,
        values,
      );
      if (inserted === 1) break;
      // Another transaction inserted the key meanwhile (and committed): lock its row and replace it.
    }
    return { replaced, superseded: false };
  }

  recordIntentExtents(versionId: string, extents: ReadonlyArray<ExtentRow>): Promise<void> {
    return this.session.transaction(async (session) => {
      const intent = await session.rows(`SELECT 1 FROM intents WHERE version_id = $1 FOR KEY SHARE`, [versionId]);
      assert(intent.length === 1, 'progress is recorded only under a live intent');
      await new PostgresRows(session).insertExtents(versionId, extents);
    });
  }

  dropIntentRows(versionId: string): Promise<void> {
    return this.session.transaction(async (session) => {
      const committed = await session.rows(`SELECT 1 FROM objects WHERE version_id = $1`, [versionId]);
      assert(committed.length === 0, 'rows of a committed version are never dropped as an intent');
      await session.run(`DELETE FROM fragments WHERE version_id = $1`, [versionId]);
      await session.run(`DELETE FROM extents WHERE version_id = $1`, [versionId]);
    });
  }

  /** Two statements whatever the number of extents: the rows go as arrays. */
  private async insertExtents(versionId: string, extents: ReadonlyArray<ExtentRow>): Promise<void> {
    if (extents.length === 0) return;
    await this.session.run(
      `INSERT INTO extents (version_id, extent_index, length_bytes, checksum)
       SELECT $1::text, * FROM unnest($2::integer[], $3::bigint[], $4::bytea[])`,
      [versionId, extents.map((extent) => extent.extentIndex), extents.map((extent) => extent.lengthBytes), extents.map((extent) => extent.checksum)],
    );
    const fragments = extents.flatMap((extent) => extent.fragments.map((fragment) => ({ extentIndex: extent.extentIndex, fragment })));
    if (fragments.length === 0) return;
    await this.session.run(
      `INSERT INTO fragments (version_id, extent_index, fragment_index, disk_id, stored_bytes, location_bytes)
       SELECT $1::text, * FROM unnest($2::integer[], $3::integer[], $4::integer[], $5::bigint[], $6::bigint[])`,
      [
        versionId,
        fragments.map((row) => row.extentIndex),
        fragments.map((row) => row.fragment.fragmentIndex),
        fragments.map((row) => row.fragment.diskId),
        fragments.map((row) => row.fragment.storedBytes),
        fragments.map((row) => row.fragment.locationBytes),
      ],
    );
  }

  // ── objects ───────────────────────────────────────────────────────────────────────────────────────────────────

  async getObject(key: string): Promise<ObjectRow | undefined> {
    return (await this.session.rows<ObjectRow>(`${OBJECT_SELECT} WHERE key = $1`, [key]))[0];
  }

  async objectMetadata(versionId: string): Promise<ObjectMetadata | undefined> {
    const [row] = await this.session.rows<StoredMetadata>(
      `SELECT etag, content_type AS "contentType", user_metadata AS "userMetadata", content_headers AS "contentHeaders", part_sizes AS "partSizes",
              encryption, acl
       FROM object_metadata WHERE version_id = $1`,
      [versionId],
    );
    return row && metadataOfStored(row);
  }

  async isCurrentVersion(key: string, versionId: string): Promise<boolean> {
    return (await this.session.rows(`SELECT 1 FROM objects WHERE key = $1 AND version_id = $2`, [key, versionId])).length === 1;
  }

  /** Keyset pages of LISTING_PAGE_ROWS: no cursor (nor connection) is held between two pages. */
  listObjects(prefix: string): AsyncGenerator<ObjectRow> {
    return pagedObjects((pagePrefix, afterKey, limit) => this.objectsWithPrefix(pagePrefix, afterKey, limit), prefix);
  }

  /** Up to `limit` objects whose key starts with `prefix`, after `afterKey` (from the first when undefined). */
  async objectsWithPrefix(prefix: string, afterKey: string | undefined, limit: number): Promise<ObjectRow[]> {
    const rows =
      afterKey === undefined
        ? await this.session.rows<ObjectRow>(`${OBJECT_SELECT} WHERE key >= $1 ORDER BY key LIMIT $2`, [prefix, limit])
        : await this.session.rows<ObjectRow>(`${OBJECT_SELECT} WHERE key > $1 ORDER BY key LIMIT $2`, [afterKey, limit]);
    const end = rows.findIndex((row) => !row.key.startsWith(prefix));
    return end < 0 ? rows : rows.slice(0, end);
  }

  objectsAfter(afterKey: string | undefined, limit: number): Promise<ObjectRow[]> {
    return afterKey === undefined
      ? this.session.rows<ObjectRow>(`${OBJECT_SELECT} ORDER BY key LIMIT $1`, [limit])
      : this.session.rows<ObjectRow>(`${OBJECT_SELECT} WHERE key > $1 ORDER BY key LIMIT $2`, [afterKey, limit]);
  }

  objectsFrom(firstKey: string, limit: number): Promise<ObjectRow[]> {
    return this.session.rows<ObjectRow>(`${OBJECT_SELECT} WHERE key >= $1 ORDER BY key LIMIT $2`, [firstKey, limit]);
  }

  async objectOfVersion(versionId: string): Promise<ObjectRow | undefined> {
    return (await this.session.rows<ObjectRow>(`${OBJECT_SELECT} WHERE version_id = $1`, [versionId]))[0];
  }

  async getSetting(name: string): Promise<string | undefined> {
    return (await this.session.rows<{ value: string }>(`SELECT value FROM meta WHERE name = $1`, [name]))[0]?.value;
  }

  async setSetting(name: string, value: string): Promise<void> {
    await this.session.run(`INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [name, value]);
  }

  async objectTotals(): Promise<{ objectCount: number; logicalBytes: number }> {
    const [row] = await this.session.rows<{ objectCount: number; logicalBytes: number }>(
      `SELECT count(*) AS "objectCount", coalesce(sum(size_bytes), 0)::bigint AS "logicalBytes" FROM objects`,
      [],
    );
    assert(row !== undefined, 'an aggregate returns one row');
    return row;
  }

  async extentsOf(versionId: string): Promise<ExtentRow[]> {
    const extents = await this.session.rows<Omit<ExtentRow, 'fragments'>>(
      `SELECT version_id AS "versionId", extent_index AS "extentIndex", length_bytes AS "lengthBytes", checksum
       FROM extents WHERE version_id = $1 AND extent_index < $2 ORDER BY extent_index`,
      [versionId, MANIFEST_EXTENT_INDEX],
    );
    const fragments = await this.session.rows<FragmentRow>(
      `${FRAGMENT_SELECT} WHERE version_id = $1 AND extent_index < $2 ORDER BY extent_index, fragment_index`,
      [versionId, MANIFEST_EXTENT_INDEX],
    );
    const byExtent = new Map<number, FragmentRow[]>();
    for (const fragment of fragments) {
      const list = byExtent.get(fragment.extentIndex) ?? [];
      list.push(fragment);
      byExtent.set(fragment.extentIndex, list);
    }
    return extents.map((extent) => ({ ...extent, fragments: byExtent.get(extent.extentIndex) ?? [] }));
  }

  /** One statement: the row deleted (a concurrent commit's UPDATE waited for, then its version taken) and queued. */
  async takeObject(key: string): Promise<ObjectRow | undefined> {
    const [row] = await this.session.rows<ObjectRow>(
      `WITH taken AS (DELETE FROM objects WHERE key = $1 RETURNING *),
            queued AS (INSERT INTO garbage (version_id, key, queued_at_ms, sequence) SELECT version_id, key, $2, sequence FROM taken)
       SELECT key, version_id AS "versionId", size_bytes AS "sizeBytes", policy, fragment_count AS "fragmentCount",
              fragments_needed AS "fragmentsNeeded", extent_size_bytes AS "extentSizeBytes", extent_count AS "extentCount",
              created_at_ms AS "createdAtMs", sequence FROM taken`,
      [key, Date.now()],
    );
    return row;
  }

  async removeObject(key: string): Promise<string | undefined> {
    return (await this.takeObject(key))?.versionId;
  }

  removeWithMarker(key: string, marker: { versionId: string; sequence: number; extent: ExtentRow }): Promise<ObjectRow | undefined> {
    return this.session.transaction(async (session) => {
      const inside = new PostgresRows(session);
      await inside.insertExtents(marker.versionId, [marker.extent]);
      await session.run(`DELETE FROM intents WHERE version_id = $1`, [marker.versionId]);
      await lockKey(session, key);
      const [taken] = await session.rows<ObjectRow>(
        `WITH taken AS (DELETE FROM objects WHERE key = $1 AND sequence < $3 RETURNING *),
              queued AS (INSERT INTO garbage (version_id, key, queued_at_ms, sequence) SELECT version_id, key, $2, sequence FROM taken)
         SELECT key, version_id AS "versionId", size_bytes AS "sizeBytes", policy, fragment_count AS "fragmentCount",
                fragments_needed AS "fragmentsNeeded", extent_size_bytes AS "extentSizeBytes", extent_count AS "extentCount",
                created_at_ms AS "createdAtMs", sequence FROM taken`,
        [key, Date.now(), marker.sequence],
      );
      await session.run(`INSERT INTO garbage (version_id, key, queued_at_ms, sequence, removal) VALUES ($1, $2, $3, $4, $5)`, [
        marker.versionId,
        key,
        Date.now(),
        marker.sequence,
        taken === undefined ? 0 : 1,
      ]);
      return taken;
    });
  }

  async garbageKey(versionId: string): Promise<string | undefined> {
    return (await this.session.rows<{ key: string }>(`SELECT key FROM garbage WHERE version_id = $1`, [versionId]))[0]?.key;
  }

  async removalMarkersOf(key: string): Promise<string[]> {
    const rows = await this.session.rows<{ versionId: string }>(
      `SELECT version_id AS "versionId" FROM garbage WHERE key = $1 AND removal = 1 ORDER BY sequence, version_id`,
      [key],
    );
    return rows.map((row) => row.versionId);
  }

  async garbageWaits(versionId: string): Promise<boolean> {
    const rows = await this.session.rows(
      `SELECT 1 FROM garbage m
       WHERE m.version_id = $1 AND m.removal = 1 AND (
         EXISTS (SELECT 1 FROM garbage g WHERE g.key = m.key AND g.removal = 0 AND g.sequence > 0 AND g.sequence < m.sequence))`,
      [versionId],
    );
    return rows.length > 0;
  }

  // ── garbage ───────────────────────────────────────────────────────────────────────────────────────────────────

  async listGarbage(): Promise<string[]> {
    // Removal markers last: the versions they wait for are collected first in the same pass.
    const rows = await this.session.rows<{ versionId: string }>(`SELECT version_id AS "versionId" FROM garbage ORDER BY removal, queued_at_ms, version_id`, []);
    return rows.map((row) => row.versionId);
  }

  async isGarbage(versionId: string): Promise<boolean> {
    return (await this.session.rows(`SELECT 1 FROM garbage WHERE version_id = $1`, [versionId])).length === 1;
  }

  fragmentsOfVersion(versionId: string): Promise<FragmentRow[]> {
    return this.session.rows<FragmentRow>(`${FRAGMENT_SELECT} WHERE version_id = $1 ORDER BY extent_index, fragment_index`, [versionId]);
  }

  async deleteFragmentRows(rows: ReadonlyArray<FragmentAddress>): Promise<void> {
    if (rows.length === 0) return;
    // One statement: atomic as SQLite's transaction of deletes.
    await this.session.run(
      `DELETE FROM fragments f USING unnest($1::text[], $2::integer[], $3::integer[]) AS gone (version_id, extent_index, fragment_index)
       WHERE f.version_id = gone.version_id AND f.extent_index = gone.extent_index AND f.fragment_index = gone.fragment_index`,
      [rows.map((row) => row.versionId), rows.map((row) => row.extentIndex), rows.map((row) => row.fragmentIndex)],
    );
  }

  finishGarbage(versionId: string): Promise<boolean> {
    return this.session.transaction(async (session) => {
      await session.rows(`SELECT 1 FROM garbage WHERE version_id = $1 FOR UPDATE`, [versionId]);
      const [left] = await session.rows<{ n: number }>(`SELECT count(*) AS n FROM fragments WHERE version_id = $1`, [versionId]);
      if ((left?.n ?? 0) > 0) return false;
      await session.run(`DELETE FROM extents WHERE version_id = $1`, [versionId]);
      await session.run(`DELETE FROM object_metadata WHERE version_id = $1`, [versionId]);
      await session.run(`DELETE FROM garbage WHERE version_id = $1`, [versionId]);
      return true;
    });
  }

  // ── drain ─────────────────────────────────────────────────────────────────────────────────────────────────────

  fragmentsToMove(diskId: number, limit: number): Promise<FragmentToMove[]> {
    return this.readTogether(async (rows) => {
      const extents = await rows.session.rows<{ key: string; versionId: string; extentIndex: number }>(
        `SELECT o.key AS key, f.version_id AS "versionId", f.extent_index AS "extentIndex"
         FROM fragments f JOIN objects o ON o.version_id = f.version_id
         WHERE f.disk_id = $1 GROUP BY o.key, f.version_id, f.extent_index ORDER BY f.version_id, f.extent_index LIMIT $2`,
        [diskId, limit],
      );
      const moves: FragmentToMove[] = [];
      for (const row of extents) {
        const object = await rows.getObject(row.key);
        if (!object) continue;
        const extent = await rows.extentOf(row.versionId, row.extentIndex);
        if (!extent) continue;
        for (const fragment of extent.fragments) {
          if (fragment.diskId === diskId) moves.push({ object, extent, fragment });
        }
      }
      return moves;
    });
  }

  async beginMove(fragment: FragmentRow, targetDiskId: number): Promise<void> {
    await this.session.run(
      `INSERT INTO moves (version_id, extent_index, fragment_index, source_disk_id, target_disk_id, started_at_ms, source_location_bytes)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (version_id, extent_index, fragment_index) DO UPDATE SET source_disk_id = excluded.source_disk_id,
         target_disk_id = excluded.target_disk_id, started_at_ms = excluded.started_at_ms,
         source_location_bytes = excluded.source_location_bytes`,
      [fragment.versionId, fragment.extentIndex, fragment.fragmentIndex, fragment.diskId, targetDiskId, Date.now(), fragment.locationBytes],
    );
  }

  listMoves(): Promise<Array<FragmentAddress & { sourceDiskId: number; targetDiskId: number; sourceLocationBytes: number }>> {
    return this.session.rows(
      `SELECT version_id AS "versionId", extent_index AS "extentIndex", fragment_index AS "fragmentIndex",
              source_disk_id AS "sourceDiskId", target_disk_id AS "targetDiskId", source_location_bytes AS "sourceLocationBytes"
       FROM moves ORDER BY version_id, extent_index, fragment_index`,
      [],
    );
  }

  async diskOfFragment(address: FragmentAddress): Promise<number | undefined> {
    return (await this.fragmentRow(address))?.diskId;
  }

  async fragmentRow(address: FragmentAddress): Promise<FragmentRow | undefined> {
    return (await this.session.rows<FragmentRow>(`${FRAGMENT_SELECT} WHERE ${FRAGMENT_KEY}`, [address.versionId, address.extentIndex, address.fragmentIndex]))[0];
  }

  async fragmentRows(addresses: ReadonlyArray<FragmentAddress>): Promise<Array<FragmentRow | undefined>> {
    if (addresses.length === 0) return [];
    const found = await this.session.rows<FragmentRow & { position: string }>(
      `SELECT wanted.position, f.version_id AS "versionId", f.extent_index AS "extentIndex", f.fragment_index AS "fragmentIndex",
         f.disk_id AS "diskId", f.stored_bytes AS "storedBytes", f.location_bytes AS "locationBytes"
       FROM unnest($1::text[], $2::integer[], $3::integer[]) WITH ORDINALITY AS wanted (version_id, extent_index, fragment_index, position)
       JOIN fragments f ON f.version_id = wanted.version_id AND f.extent_index = wanted.extent_index AND f.fragment_index = wanted.fragment_index`,
      [addresses.map((address) => address.versionId), addresses.map((address) => address.extentIndex), addresses.map((address) => address.fragmentIndex)],
    );
    const rows: Array<FragmentRow | undefined> = addresses.map(() => undefined);
    for (const { position, ...row } of found) rows[Number(position) - 1] = row;
    return rows;
  }

  fragmentsOnDisk(diskId: number): Promise<FragmentRow[]> {
    return this.session.rows<FragmentRow>(`${FRAGMENT_SELECT} WHERE disk_id = $1 ORDER BY version_id, extent_index, fragment_index`, [diskId]);
  }

  async isMoving(address: { versionId: string; extentIndex?: number; fragmentIndex?: number }): Promise<boolean> {
    if (address.extentIndex === undefined || address.fragmentIndex === undefined) {
      return (await this.session.rows(`SELECT 1 FROM moves WHERE version_id = $1 LIMIT 1`, [address.versionId])).length === 1;
    }
    return (await this.session.rows(`SELECT 1 FROM moves WHERE ${FRAGMENT_KEY}`, [address.versionId, address.extentIndex, address.fragmentIndex])).length === 1;
  }

  async hasIntent(versionId: string): Promise<boolean> {
    return (await this.session.rows(`SELECT 1 FROM intents WHERE version_id = $1`, [versionId])).length === 1;
  }

  /** One statement, so the intent, the move and the row are read from one snapshot. */
  async fragmentStatus(fragment: FragmentAddress, place: { diskId: number; locationBytes: number | undefined }): Promise<'in-flight' | 'referenced' | 'unreferenced'> {
    const [row] = await this.session.rows<{ inFlight: boolean; diskId: number | null; locationBytes: number | null }>(
      `SELECT EXISTS (SELECT 1 FROM intents WHERE version_id = $1) OR EXISTS (SELECT 1 FROM moves WHERE ${FRAGMENT_KEY}) AS "inFlight",
              (SELECT disk_id FROM fragments WHERE ${FRAGMENT_KEY}) AS "diskId",
              (SELECT location_bytes FROM fragments WHERE ${FRAGMENT_KEY}) AS "locationBytes"`,
      [fragment.versionId, fragment.extentIndex, fragment.fragmentIndex],
    );
    assert(row !== undefined, 'a select without FROM returns one row');
    if (row.inFlight) return 'in-flight';
    const here = row.diskId === place.diskId && (place.locationBytes === undefined || row.locationBytes === place.locationBytes);
    return here ? 'referenced' : 'unreferenced';
  }

  async dropMove(address: FragmentAddress): Promise<void> {
    await this.session.run(`DELETE FROM moves WHERE ${FRAGMENT_KEY}`, [address.versionId, address.extentIndex, address.fragmentIndex]);
  }

  async moveFragment(address: FragmentAddress, from: { diskId: number }, to: { diskId: number; storedBytes: number; locationBytes: number }): Promise<boolean> {
    const changes = await this.session.run(
      `UPDATE fragments SET disk_id = $5, stored_bytes = $6, location_bytes = $7 WHERE ${FRAGMENT_KEY} AND disk_id = $4`,
      [address.versionId, address.extentIndex, address.fragmentIndex, from.diskId, to.diskId, to.storedBytes, to.locationBytes],
    );
    return changes === 1;
  }

  async widestExtentOnDisk(diskId: number): Promise<number> {
    const [row] = await this.session.rows<{ n: number }>(
      `SELECT coalesce(max(o.fragment_count), 0) AS n FROM fragments f JOIN objects o ON o.version_id = f.version_id WHERE f.disk_id = $1`,
      [diskId],
    );
    return row?.n ?? 0;
  }

  async countFragmentsOnDisk(diskId: number): Promise<number> {
    const [row] = await this.session.rows<{ n: number }>(`SELECT count(*) AS n FROM fragments WHERE disk_id = $1`, [diskId]);
    return row?.n ?? 0;
  }

  // ── health ────────────────────────────────────────────────────────────────────────────────────────────────────

  async redundancyReport(unavailableDiskIds: ReadonlyArray<number>): Promise<{ degradedExtents: number; unreadableExtents: number }> {
    const [row] = await this.session.rows<{ degradedExtents: number; unreadableExtents: number }>(
      `SELECT count(*) FILTER (WHERE missing > 0) AS "degradedExtents",
              count(*) FILTER (WHERE fragment_count - missing < fragments_needed) AS "unreadableExtents"
       FROM (
         SELECT o.fragment_count, o.fragments_needed, count(*) FILTER (WHERE f.disk_id = ANY ($1::integer[])) AS missing
         FROM fragments f JOIN objects o ON o.version_id = f.version_id
         WHERE f.extent_index < $2
         GROUP BY f.version_id, f.extent_index, o.fragment_count, o.fragments_needed
       ) AS extents`,
      [[...unavailableDiskIds], MANIFEST_EXTENT_INDEX],
    );
    assert(row !== undefined, 'an aggregate returns one row');
    return row;
  }

  // ── counters ──────────────────────────────────────────────────────────────────────────────────────────────────

  async addToCounter(name: string, delta: number): Promise<void> {
    await this.session.run(`INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`, [
      name,
      delta,
    ]);
  }

  async counters(): Promise<Record<string, number>> {
    const rows = await this.session.rows<{ name: string; value: number }>(`SELECT name, value FROM counters ORDER BY name`, []);
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  }

  async extentOf(versionId: string, extentIndex: number): Promise<ExtentRow | undefined> {
    const [extent] = await this.session.rows<Omit<ExtentRow, 'fragments'>>(
      `SELECT version_id AS "versionId", extent_index AS "extentIndex", length_bytes AS "lengthBytes", checksum
       FROM extents WHERE version_id = $1 AND extent_index = $2`,
      [versionId, extentIndex],
    );
    if (!extent) return undefined;
    const fragments = await this.session.rows<FragmentRow>(
      `${FRAGMENT_SELECT} WHERE version_id = $1 AND extent_index = $2 ORDER BY fragment_index`,
      [versionId, extentIndex],
    );
    return { ...extent, fragments };
  }

  /** Several reads that must agree: one REPEATABLE READ snapshot outside a transaction, the open one inside. */
  private readTogether<T>(work: (rows: PostgresRows) => Promise<T>): Promise<T> {
    if (this.session.inTransaction) return work(this);
    return this.session.transaction((session) => work(new PostgresRows(session)), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }
}

// ── S3 tables ─────────────────────────────────────────────────────────────────────────────────────────────────

const USER_SELECT = `SELECT name, access_key_id AS "accessKeyId", secret_access_key AS "secretAccessKey",
  created_at_ms AS "createdAtMs", admin FROM users`;
const BUCKET_SELECT = `SELECT name, created_at_ms AS "createdAtMs", owner, acl FROM buckets`;
const GRANT_SELECT = `SELECT bucket, user_name AS "user", may_read AS "read", may_write AS "write", may_own AS "owner" FROM bucket_grants`;
const UPLOAD_SELECT = `SELECT upload_id AS "uploadId", bucket, key, content_type AS "contentType",
  user_metadata AS "userMetadata", created_at_ms AS "createdAtMs", content_headers AS "contentHeaders", encryption FROM multipart_uploads`;

type RawUpload = StoredUpload;
const decodeUpload = uploadOfStored;

class PostgresS3Tables implements S3Tables {
  constructor(private readonly session: Session) {}

  async createBucket(name: string, access: { owner: string | undefined; acl: CannedAcl }): Promise<boolean> {
    return (
      (await this.session.run(`INSERT INTO buckets (name, created_at_ms, owner, acl) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`, [
        name,
        Date.now(),
        access.owner ?? null,
        access.acl,
      ])) === 1
    );
  }

  /** Inside a transaction (a put's inCommit) the row is read FOR SHARE: deleteBucket waits for the commit. */
  async getBucket(name: string): Promise<BucketRow | undefined> {
    const lock = this.session.inTransaction ? ' FOR SHARE' : '';
    const [row] = await this.session.rows<StoredBucket>(`${BUCKET_SELECT} WHERE name = $1${lock}`, [name]);
    return row && bucketOfStored(row);
  }

  async listBuckets(): Promise<BucketRow[]> {
    return (await this.session.rows<StoredBucket>(`${BUCKET_SELECT} ORDER BY name`, [])).map(bucketOfStored);
  }

  async setBucketAcl(name: string, acl: CannedAcl): Promise<boolean> {
    return (await this.session.run(`UPDATE buckets SET acl = $1 WHERE name = $2`, [acl, name])) === 1;
  }

  /** See S3Tables.setObjectAcl: the object's row is locked, so the version cannot be replaced meanwhile. */
  setObjectAcl(key: string, versionId: string, acl: CannedAcl, metadata: ObjectMetadata): Promise<boolean> {
    return this.session.transaction(async (session) => {
      if ((await session.rows(`SELECT 1 FROM objects WHERE key = $1 AND version_id = $2 FOR UPDATE`, [key, versionId])).length === 0) return false;
      if ((await session.run(`UPDATE object_metadata SET acl = $1 WHERE version_id = $2`, [acl, versionId])) === 1) return true;
      const stored = storedMetadata({ ...metadata, acl });
      await session.run(
        `INSERT INTO object_metadata (version_id, etag, content_type, user_metadata, content_headers, part_sizes, acl) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [versionId, stored.etag, stored.contentType, stored.userMetadata, stored.contentHeaders, stored.partSizes, stored.acl],
      );
      return true;
    });
  }

  async listGrants(filter: { bucket?: string; user?: string }): Promise<BucketGrant[]> {
    const rows = await this.session.rows<StoredGrant>(
      `${GRANT_SELECT} WHERE ($1::text IS NULL OR bucket = $1::text) AND ($2::text IS NULL OR user_name = $2::text) ORDER BY bucket, user_name`,
      [filter.bucket ?? null, filter.user ?? null],
    );
    return rows.map(grantOfStored);
  }

  putGrant(grant: BucketGrant): Promise<boolean> {
    return this.session.transaction(async (session) => {
      // The bucket row is held: a DeleteBucket meanwhile (which removes its grants) cannot leave this one behind.
      if ((await session.rows(`SELECT 1 FROM buckets WHERE name = $1 FOR SHARE`, [grant.bucket])).length === 0) return false;
      if (!grant.read && !grant.write && !grant.owner) {
        await session.run(`DELETE FROM bucket_grants WHERE bucket = $1 AND user_name = $2`, [grant.bucket, grant.user]);
        return true;
      }
      await session.run(
        `INSERT INTO bucket_grants (bucket, user_name, may_read, may_write, may_own) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (bucket, user_name) DO UPDATE SET may_read = excluded.may_read, may_write = excluded.may_write, may_own = excluded.may_own`,
        [grant.bucket, grant.user, Number(grant.read), Number(grant.write), Number(grant.owner)],
      );
      return true;
    });
  }

  async setAdmin(name: string, admin: boolean): Promise<boolean> {
    return (await this.session.run(`UPDATE users SET admin = $1 WHERE name = $2`, [Number(admin), name])) === 1;
  }

  deleteBucket(name: string, partsPrefix: string): Promise<string[] | undefined> {
    return this.session.transaction(async (session) => {
      // Locked first: puts that hold the row (their commit checked the bucket) have committed before the checks.
      await session.rows(`SELECT 1 FROM buckets WHERE name = $1 FOR UPDATE`, [name]);
      const [found] = await session.rows<{ object: boolean }>(`SELECT EXISTS (SELECT 1 FROM objects WHERE key >= $1 AND key < $2) AS object`, [
        `${name}/`,
        `${name}0`,
      ]);
      if (found?.object) return undefined;
      // Each upload as finishUpload forgets it (its row locked first: a part committing meanwhile is removed or refused).
      const rows = new PostgresRows(session);
      const uploads = await session.rows<{ uploadId: string }>(`SELECT upload_id AS "uploadId" FROM multipart_uploads WHERE bucket = $1 ORDER BY upload_id`, [name]);
      const versionIds: string[] = [];
      for (const { uploadId } of uploads) versionIds.push(...((await finishUploadIn(rows, uploadId, `${partsPrefix}${uploadId}/`)) ?? []));
      await session.run(`DELETE FROM bucket_grants WHERE bucket = $1`, [name]);
      await session.run(`DELETE FROM buckets WHERE name = $1`, [name]);
      return versionIds;
    });
  }

  async insertUser(row: UserRow): Promise<boolean> {
    const changes = await this.session.run(
      `INSERT INTO users (name, access_key_id, secret_access_key, created_at_ms, admin) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING`,
      [row.name, row.accessKeyId, row.secretAccessKey, row.createdAtMs, Number(row.admin)],
    );
    return changes === 1;
  }

  async listUsers(): Promise<UserRow[]> {
    return (await this.session.rows<StoredUser>(`${USER_SELECT} ORDER BY name`, [])).map(userOfStored);
  }

  /** See S3Tables.removeUser. */
  removeUser(name: string): Promise<boolean> {
    return this.session.transaction(async (session) => {
      await session.run(`DELETE FROM bucket_grants WHERE user_name = $1`, [name]);
      return (await session.run(`DELETE FROM users WHERE name = $1`, [name])) === 1;
    });
  }

  async secretOf(accessKeyId: string): Promise<string | undefined> {
    return (await this.userOf(accessKeyId))?.secretAccessKey;
  }

  async userOf(accessKeyId: string): Promise<UserRow | undefined> {
    const [row] = await this.session.rows<StoredUser>(`${USER_SELECT} WHERE access_key_id = $1`, [accessKeyId]);
    return row && userOfStored(row);
  }

  async insertUpload(row: UploadRow): Promise<void> {
    await this.session.run(
      `INSERT INTO multipart_uploads (upload_id, bucket, key, content_type, user_metadata, created_at_ms, content_headers, encryption)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      storedUploadValues(row),
    );
  }

  async getUpload(uploadId: string): Promise<UploadRow | undefined> {
    const [row] = await this.session.rows<RawUpload>(`${UPLOAD_SELECT} WHERE upload_id = $1`, [uploadId]);
    return row && decodeUpload(row);
  }

  async listUploads(bucket: string, prefix: string, limit: number): Promise<UploadRow[]> {
    const rows = await this.session.rows<RawUpload>(
      `${UPLOAD_SELECT} WHERE bucket = $1 AND left(key, char_length($2::text)) = $2::text ORDER BY key, created_at_ms LIMIT $3`,
      [bucket, prefix, limit],
    );
    return rows.map(decodeUpload);
  }

  replacePart(part: Omit<PartRow, 'uploadedAtMs'>): Promise<string[] | undefined> {
    return this.session.transaction(async (session) => {
      if (!(await lockUpload(session, part.uploadId))) return undefined;
      const [previous] = await session.rows<{ partKey: string }>(
        `SELECT part_key AS "partKey" FROM multipart_parts WHERE upload_id = $1 AND part_number = $2`,
        [part.uploadId, part.partNumber],
      );
      await session.run(
        `INSERT INTO multipart_parts (upload_id, part_number, part_key, etag, size_bytes, uploaded_at_ms) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (upload_id, part_number) DO UPDATE SET part_key = excluded.part_key, etag = excluded.etag,
           size_bytes = excluded.size_bytes, uploaded_at_ms = excluded.uploaded_at_ms`,
        [part.uploadId, part.partNumber, part.partKey, part.etag, part.sizeBytes, Date.now()],
      );
      if (previous === undefined || previous.partKey === part.partKey) return [];
      return removeObjects(new PostgresRows(session), [previous.partKey]);
    });
  }

  listParts(uploadId: string, afterPartNumber = 0, limit = 10_000): Promise<PartRow[]> {
    return this.session.rows<PartRow>(
      `SELECT upload_id AS "uploadId", part_number AS "partNumber", part_key AS "partKey", etag, size_bytes AS "sizeBytes",
              uploaded_at_ms AS "uploadedAtMs"
       FROM multipart_parts WHERE upload_id = $1 AND part_number > $2 ORDER BY part_number LIMIT $3`,
      [uploadId, afterPartNumber, limit],
    );
  }

  finishUpload(uploadId: string, objectsPrefix: string): Promise<string[] | undefined> {
    return this.session.transaction((session) => finishUploadIn(new PostgresRows(session), uploadId, objectsPrefix));
  }

  removeAbandonedParts(partsPrefix: string): Promise<{ versionIds: string[]; uploadsRemoved: number; objectsRemoved: number }> {
    return this.session.transaction(async (session) => {
      const rows = new PostgresRows(session);
      const broken = (
        await session.rows<{ uploadId: string }>(
          `SELECT DISTINCT upload_id AS "uploadId" FROM multipart_parts p
           WHERE NOT EXISTS (SELECT 1 FROM objects o WHERE o.key = p.part_key)
              OR NOT EXISTS (SELECT 1 FROM multipart_uploads u WHERE u.upload_id = p.upload_id)
           ORDER BY 1`,
          [],
        )
      ).map((row) => row.uploadId);
      const versionIds: string[] = [];
      for (const uploadId of broken) {
        versionIds.push(...((await finishUploadIn(rows, uploadId, `${partsPrefix}${uploadId}/`)) ?? []));
        // A part row whose upload row is gone (finishUpload saw no upload): drop the rows themselves.
        await session.run(`DELETE FROM multipart_parts WHERE upload_id = $1`, [uploadId]);
      }
      const named = new Set((await session.rows<{ partKey: string }>(`SELECT part_key AS "partKey" FROM multipart_parts`, [])).map((row) => row.partKey));
      const orphans: string[] = [];
      for await (const object of rows.listObjects(partsPrefix)) if (!named.has(object.key)) orphans.push(object.key);
      versionIds.push(...(await removeObjects(rows, orphans)));
      return { versionIds, uploadsRemoved: broken.length, objectsRemoved: orphans.length };
    });
  }
}

/** Inside a transaction: locks the upload's row (FOR UPDATE); false when there is none. */
async function lockUpload(session: Session, uploadId: string): Promise<boolean> {
  return (await session.rows(`SELECT 1 FROM multipart_uploads WHERE upload_id = $1 FOR UPDATE`, [uploadId])).length === 1;
}

async function finishUploadIn(rows: PostgresRows, uploadId: string, objectsPrefix: string): Promise<string[] | undefined> {
  const session = rows.session;
  if (!(await lockUpload(session, uploadId))) return undefined;
  const named = (await session.rows<{ partKey: string }>(`SELECT part_key AS "partKey" FROM multipart_parts WHERE upload_id = $1 ORDER BY part_number`, [uploadId])).map(
    (row) => row.partKey,
  );
  // Also any object under the upload's prefix that no row names (left by an older shardpool).
  const stray: string[] = [];
  for await (const object of rows.listObjects(objectsPrefix)) stray.push(object.key);
  await session.run(`DELETE FROM multipart_parts WHERE upload_id = $1`, [uploadId]);
  await session.run(`DELETE FROM multipart_uploads WHERE upload_id = $1`, [uploadId]);
  return removeObjects(rows, [...new Set([...named, ...stray])]);
}

/** Inside a transaction: removes these objects (those that exist); returns the versions queued as garbage. */
async function removeObjects(rows: PostgresRows, keys: ReadonlyArray<string>): Promise<string[]> {
  const versionIds: string[] = [];
  for (const key of keys) {
    const removed = await rows.removeObject(key);
    if (removed !== undefined) versionIds.push(removed);
  }
  return versionIds;
}

// ── opening: reachability, encoding, migrations ───────────────────────────────────────────────────────────────

async function prepareDatabase(pool: pg.Pool, address: string, options: { create: boolean }): Promise<void> {
  await withClient(pool, address, async (client) => {
    const session = new ClientSession(client, address);
    const [encoding] = await session.rows<{ server_encoding: string }>('SHOW server_encoding');
    if (encoding?.server_encoding !== 'UTF8') {
      throw new ShardpoolError(
        'CATALOG_FAILED',
        `the database at ${address} has encoding ${String(encoding?.server_encoding)}; a catalog needs UTF8 (CREATE DATABASE … ENCODING 'UTF8')`,
        { address },
      );
    }
    let version = await schemaVersion(session);
    if (version === undefined && !options.create) {
      throw new ShardpoolError('CATALOG_FAILED', `the database at ${address} holds no shardpool catalog (shardpool init makes one)`, { address });
    }
    if (version !== undefined && version > CATALOG_SCHEMA_VERSION) throw newerSchema(address, version);
    while ((version ?? 0) < CATALOG_SCHEMA_VERSION) {
      // Each migration in one transaction, under a lock two openers cannot both hold; the version is read again
      // under it, so only the first opener migrates.
      version = await inTransaction(client, address, 'BEGIN', async (tx) => {
        await tx.rows('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
        await tx.run(`CREATE TABLE IF NOT EXISTS ${POSTGRES_SCHEMA_TABLE} (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row), version INTEGER NOT NULL)`);
        await tx.run(`INSERT INTO ${POSTGRES_SCHEMA_TABLE} (version) VALUES (0) ON CONFLICT DO NOTHING`);
        const current = (await schemaVersion(tx)) ?? 0;
        if (current > CATALOG_SCHEMA_VERSION) throw newerSchema(address, current);
        if (current === CATALOG_SCHEMA_VERSION) return current;
        await tx.run(catalogMigration(POSTGRES_DIALECT, current));
        await tx.run(`UPDATE ${POSTGRES_SCHEMA_TABLE} SET version = $1`, [current + 1]);
        return current + 1;
      });
    }
  });
}

async function schemaVersion(session: Session): Promise<number | undefined> {
  const [exists] = await session.rows<{ table: string | null }>(`SELECT to_regclass($1)::text AS "table"`, [POSTGRES_SCHEMA_TABLE]);
  if (exists?.table === null || exists === undefined) return undefined;
  const [row] = await session.rows<{ version: number }>(`SELECT version FROM ${POSTGRES_SCHEMA_TABLE}`, []);
  return row?.version;
}

function newerSchema(address: string, version: number): ShardpoolError {
  return new ShardpoolError(
    'POOL_FORMAT_UNSUPPORTED',
    `catalog ${address} has schema version ${version}; this shardpool reads up to ${CATALOG_SCHEMA_VERSION}`,
    { address },
  );
}

// ── dump and load ─────────────────────────────────────────────────────────────────────────────────────────────

async function refuseUnlessEmpty(session: Session, address: string): Promise<void> {
  const occupied: string[] = [];
  for (const table of CATALOG_DUMP_TABLES) {
    if (table.name === 'meta') continue;
    if ((await session.rows(`SELECT 1 FROM ${quote(table.name)} LIMIT 1`, [])).length > 0) occupied.push(table.name);
  }
  if (occupied.length === 0) return;
  throw new ShardpoolError(
    'CATALOG_NOT_EMPTY',
    `the catalog at ${address} already holds rows (in ${occupied.join(', ')}); a dump is loaded only into an empty catalog ` +
      '(a pool just made by shardpool init)',
    { address, tables: occupied.join(',') },
  );
}

/** A row the schema refuses (a duplicate, a fragment on an unknown disk, a value a CHECK forbids) is a bad line. */
function brokenRule(error: unknown, table: DumpTable, record: CatalogRecord): unknown {
  if (!(error instanceof pg.DatabaseError) || !error.code?.startsWith('23')) return error;
  const line = record.lineNumber;
  return new ShardpoolError(
    'CATALOG_DUMP_INVALID',
    `${line === undefined ? 'a record' : `line ${line}`}: the row of ${table.name} breaks a rule of the catalog (${error.message})`,
    { line, table: table.name, sqlState: error.code },
    { cause: error },
  );
}

const DUMP_TYPES: Readonly<Record<string, string>> = { integer: 'integer', bigint: 'integer', text: 'text', bytea: 'blob' };

/** As sqlite-dump.ts: the dump format must carry every table and column of the schema, with their types and keys. */
async function assertDumpCoversSchema(session: Session): Promise<void> {
  const columns = await session.rows<{ table: string; name: string; type: string; nullable: string; key: number | null }>(
    `SELECT c.table_name AS "table", c.column_name AS name, c.data_type AS type, c.is_nullable AS nullable,
            (SELECT k.ordinal_position FROM information_schema.table_constraints t
               JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name AND k.table_schema = t.table_schema
                 AND k.table_name = t.table_name
             WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema AND t.table_name = c.table_name
               AND k.column_name = c.column_name) AS key
     FROM information_schema.columns c
     WHERE c.table_schema = current_schema() AND c.table_name <> $1
     ORDER BY c.table_name, c.ordinal_position`,
    [POSTGRES_SCHEMA_TABLE],
  );
  const tables = [...new Set(columns.map((column) => column.table))].sort();
  const expected = CATALOG_DUMP_TABLES.map((table) => table.name).sort();
  assert(tables.join(',') === expected.join(','), `the catalog dump covers every table of the schema (schema: ${tables.join(', ')}; dump: ${expected.join(', ')})`);
  for (const table of CATALOG_DUMP_TABLES) {
    const own = columns.filter((column) => column.table === table.name);
    const schema = own.map((column) => `${column.name}:${DUMP_TYPES[column.type] ?? column.type}${column.nullable === 'YES' ? '?' : ''}`);
    const dumped = table.columns.map((column) => `${column.name}:${column.type}${column.nullable ? '?' : ''}`);
    assert(schema.join(',') === dumped.join(','), `the catalog dump has every column of ${table.name} (schema: ${schema.join(', ')}; dump: ${dumped.join(', ')})`);
    const key = own.filter((column) => column.key !== null).sort((a, b) => (a.key as number) - (b.key as number)).map((column) => column.name);
    assert(key.join(',') === table.primaryKey.join(','), `the catalog dump orders ${table.name} by its primary key`);
  }
}

function quote(name: string): string {
  assert(/^[a-z_]+$/.test(name), 'table and column names of the dump format are plain identifiers');
  return `"${name}"`;
}

// ── values and errors ─────────────────────────────────────────────────────────────────────────────────────────

/** BIGINT (and count(*)) as numbers: every byte count and time of the catalog is a safe integer. */
function parseBigint(text: string): number {
  const value = Number(text);
  assert(Number.isSafeInteger(value), 'catalog integers are safe integers');
  return value;
}

const INT8_OID = 20;
const TYPES = {
  getTypeParser: (oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary' ? parseBigint : (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(oid, format),
};

/**
 * The password as libpq finds it: PGPASSWORD, else the first matching line of PGPASSFILE (~/.pgpass), which is
 * ignored when group or others may read it. Called by pg (as a method of the connecting client) only when the
 * server asks for a password.
 */
async function libpqPassword(this: { host?: string; port?: number; database?: string; user?: string }): Promise<string | undefined> {
  if (process.env.PGPASSWORD !== undefined) return process.env.PGPASSWORD;
  const file = process.env.PGPASSFILE ?? path.join(os.homedir(), '.pgpass');
  const text = await readPrivateFile(file);
  if (text === undefined) return undefined;
  const host = this.host === undefined || this.host.startsWith('/') ? 'localhost' : this.host;
  const wanted = [host, String(this.port ?? 5432), this.database ?? '', this.user ?? ''];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const fields = splitPassLine(line);
    if (fields.length !== 5) continue;
    if (wanted.every((value, index) => fields[index] === '*' || fields[index] === value)) return fields[4];
  }
  return undefined;
}

/** hostname:port:database:username:password, with "\:" and "\\" escaped. */
function splitPassLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index] as string;
    if (char === '\\' && index + 1 < line.length) {
      index += 1;
      field += line[index];
    } else if (char === ':' && fields.length < 4) {
      fields.push(field);
      field = '';
    } else {
      field += char;
    }
  }
  fields.push(field.replace(/\r$/, ''));
  return fields;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED']);
/** Server going away or not accepting connections: admin/crash shutdown, starting up, too many connections. */
const UNREACHABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
const UNREACHABLE_MESSAGES = /^(Connection terminated|Client has encountered a connection error|Client was closed|timeout exceeded when trying to connect|Connection terminated due to connection timeout)/;

function isUnreachable(error: unknown): boolean {
  if (isShardpoolError(error, 'CATALOG_UNREACHABLE')) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || UNREACHABLE_STATES.has(code) || code.startsWith('08'))) return true;
  return UNREACHABLE_MESSAGES.test(error.message);
}

function isConflict(error: unknown): boolean {
  const cause = error instanceof ShardpoolError ? error.cause : error;
  return cause instanceof pg.DatabaseError && (cause.code === '40001' || cause.code === '40P01');
}

/**
 * A server that cannot be reached is CATALOG_UNREACHABLE; another SQL error is CATALOG_IO_FAILED (with its
 * SQLSTATE). Constraint violations stay what they are: a statement that breaks the schema's rules is a bug.
 */
function postgresError(error: unknown, address: string): unknown {
  if (error instanceof ShardpoolError) return error;
  if (isUnreachable(error)) {
    return new ShardpoolError('CATALOG_UNREACHABLE', `the catalog at ${address} cannot be reached: ${(error as Error).message}`, { address }, { cause: error });
  }
  if (error instanceof pg.DatabaseError) {
    if (error.code?.startsWith('23')) return error;
    return new ShardpoolError('CATALOG_IO_FAILED', `the catalog at ${address} failed: ${error.message} (SQLSTATE ${String(error.code)})`, { address, sqlState: error.code }, { cause: error });
  }
  return error;
}
