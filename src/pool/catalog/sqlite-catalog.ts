// The SQLite engine of the catalog (the embedded default): better-sqlite3, in WAL mode with synchronous=FULL so that
// a returned commit is durable; every multi-row change is one transaction.
import { AsyncLocalStorage } from 'node:async_hooks';
import Database from 'better-sqlite3';
import { assert } from '../../assert.js';
import { CATALOG_SCHEMA_VERSION, MANIFEST_EXTENT_INDEX } from '../../constants.js';
import { ShardpoolError } from '../../errors.js';
import type { DiskKind, FragmentAddress } from '../../disk/disk.js';
import type { CatalogRecord } from '../../format/catalog-dump.js';
import type {
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
  InCommit,
  ObjectMetadata,
  ObjectRow,
  S3Tables,
} from './catalog.js';
import { pagedObjects, settleBatch, type BatchPiece, type PieceOutcome, metadataOfStored, storedMetadata, type StoredMetadata } from './engine-common.js';
import { catalogMigration, SQLITE_DIALECT } from './schema.js';
import { SqliteS3Tables } from './sqlite-s3-tables.js';

/** How long a statement waits for another process's write transaction before SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 10_000;

/**
 * The rows themselves, synchronously (better-sqlite3): each method is one transaction, or joins the one open on the
 * connection. Only SqliteCatalog (below) calls it, and never while another caller's transaction is open.
 */
class SqliteRows {
  readonly s3: SqliteS3Tables;

  private constructor(readonly db: Database.Database) {
    this.s3 = new SqliteS3Tables(db, this);
  }

  static open(filePath: string, options: { create: boolean }): SqliteRows {
    let db: Database.Database;
    try {
      db = new Database(filePath, { fileMustExist: !options.create });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      prepareOnce(db);
    } catch (error) {
      throw new ShardpoolError('CATALOG_FAILED', `cannot open catalog ${filePath}: ${String(error)}`, { path: filePath }, {
        cause: error,
      });
    }
    const rows = new SqliteRows(db);
    try {
      rows.migrate(filePath);
    } catch (error) {
      db.close();
      throw catalogError(error, filePath);
    }
    return rows;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ── disks ──────────────────────────────────────────────────────────────────────────────────────────────────────

  addDisk(disk: { uuid: string; kind: DiskKind; path: string; node?: string }): DiskRow {
    const addedAtMs = Date.now();
    const node = disk.node ?? '';
    const result = this.db
      .prepare(`INSERT INTO disks (uuid, kind, path, state, added_at_ms, node) VALUES (?, ?, ?, 'healthy', ?, ?)`)
      .run(disk.uuid, disk.kind, disk.path, addedAtMs, node);
    return { id: Number(result.lastInsertRowid), uuid: disk.uuid, kind: disk.kind, path: disk.path, state: 'healthy', addedAtMs, node };
  }

  listDisks(): DiskRow[] {
    return this.db
      .prepare(`SELECT id, uuid, kind, path, state, added_at_ms AS addedAtMs, node FROM disks ORDER BY id`)
      .all() as DiskRow[];
  }

  // ── nodes ──────────────────────────────────────────────────────────────────────────────────────────────────────

  joinNode(node: { name: string; address: string; nowMs: number; leaseMs: number }): NodeRow {
    this.db
      .prepare(
        `INSERT INTO nodes (name, address, state, joined_at_ms, lease_expires_ms, last_seen_ms) VALUES (?, ?, 'active', ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET address = excluded.address,
           state = CASE WHEN nodes.state = 'failed' THEN 'active' ELSE nodes.state END,
           lease_expires_ms = excluded.lease_expires_ms, last_seen_ms = excluded.last_seen_ms`,
      )
      .run(node.name, node.address, node.nowMs, node.nowMs + node.leaseMs, node.nowMs);
    return this.db.prepare(`${NODE_SELECT} WHERE name = ?`).get(node.name) as NodeRow;
  }

  renewNodeLease(name: string, nowMs: number, leaseMs: number): NodeRow | undefined {
    this.db
      .prepare(`UPDATE nodes SET lease_expires_ms = max(lease_expires_ms, ?), last_seen_ms = ? WHERE name = ? AND state <> 'failed'`)
      .run(nowMs + leaseMs, nowMs, name);
    return this.db.prepare(`${NODE_SELECT} WHERE name = ?`).get(name) as NodeRow | undefined;
  }

  listNodes(): NodeRow[] {
    return this.db.prepare(`${NODE_SELECT} ORDER BY name`).all() as NodeRow[];
  }

  setNodeState(name: string, state: NodeState): void {
    const result = this.db.prepare(`UPDATE nodes SET state = ? WHERE name = ?`).run(state, name);
    assert(result.changes === 1, 'the node whose state changes exists');
  }

  deleteNode(name: string): void {
    this.db.transaction(() => {
      const remaining = this.db.prepare(`SELECT count(*) AS n FROM disks WHERE node = ?`).get(name) as { n: number };
      assert(remaining.n === 0, 'a node is forgotten only when no disk belongs to it');
      this.db.prepare(`DELETE FROM nodes WHERE name = ?`).run(name);
    }).immediate();
  }

  setDiskState(diskId: number, state: DiskState): void {
    const result = this.db.prepare(`UPDATE disks SET state = ? WHERE id = ?`).run(state, diskId);
    assert(result.changes === 1, 'the disk whose state changes exists');
  }

  setDiskPaths(changes: ReadonlyArray<{ diskId: number; path: string }>): void {
    // Each moving disk first gets a placeholder path of its own, so paths traded between disks never collide midway.
    this.db.transaction(() => {
      for (const change of changes) {
        const result = this.db.prepare(`UPDATE disks SET path = 'moving:' || uuid WHERE id = ?`).run(change.diskId);
        assert(result.changes === 1, 'the disk whose path changes exists');
      }
      for (const change of changes) this.db.prepare(`UPDATE disks SET path = ? WHERE id = ?`).run(change.path, change.diskId);
    })();
  }

  /** Forgets a disk; only allowed once no fragment row names it. */
  deleteDisk(diskId: number): void {
    this.db.transaction(() => {
      const remaining = this.db.prepare(`SELECT count(*) AS n FROM fragments WHERE disk_id = ?`).get(diskId) as {
        n: number;
      };
      assert(remaining.n === 0, 'a disk is forgotten only when no fragment lives on it');
      this.db.prepare(`DELETE FROM disks WHERE id = ?`).run(diskId);
    }).immediate();
  }

  diskUsage(): Map<number, DiskUsage> {
    const rows = this.db
      .prepare(
        `SELECT disk_id AS diskId, count(*) AS fragmentCount, coalesce(sum(stored_bytes), 0) AS storedBytes
         FROM fragments GROUP BY disk_id`,
      )
      .all() as Array<{ diskId: number } & DiskUsage>;
    return new Map(rows.map((row) => [row.diskId, { fragmentCount: row.fragmentCount, storedBytes: row.storedBytes }]));
  }

  // ── puts: intent, then commit ─────────────────────────────────────────────────────────────────────────────────

  beginIntent(versionId: string, key: string, node = ''): number {
    return this.db.transaction(() => {
      const { value } = this.db.prepare(NEXT_SEQUENCE).get() as { value: number };
      this.db
        .prepare(`INSERT INTO intents (version_id, key, started_at_ms, sequence, node) VALUES (?, ?, ?, ?, ?)`)
        .run(versionId, key, Date.now(), value, node);
      return value;
    })();
  }

  lastSequence(): number {
    return (this.db.prepare(`SELECT value FROM sequences WHERE name = 'commit'`).get() as { value: number } | undefined)?.value ?? 0;
  }

  raiseSequence(sequence: number): void {
    this.db
      .prepare(`INSERT INTO sequences (name, value) VALUES ('commit', ?) ON CONFLICT (name) DO UPDATE SET value = max(sequences.value, excluded.value)`)
      .run(sequence);
  }

  listIntents(): Array<{ versionId: string; key: string; node: string }> {
    return this.db.prepare(`SELECT version_id AS versionId, key, node FROM intents`).all() as Array<{
      versionId: string;
      key: string;
      node: string;
    }>;
  }

  dropIntent(versionId: string): void {
    this.db.prepare(`DELETE FROM intents WHERE version_id = ?`).run(versionId);
  }

  /**
   * Makes a new object version visible, atomically: inserts its extents and fragments, points the key at it,
   * queues the version it replaces (if any) as garbage and clears the put's intent. Returns the replaced version.
   * `inCommit` runs last in the same transaction (it may change other rows, or throw to refuse the commit); the
   * versions it returns were queued as garbage by it.
   */
  commitObjectRows(newObject: NewObject): { replaced: string | undefined; superseded: boolean } {
    const { object, extents } = newObject;
    return this.db.transaction(() => {
      this.insertExtents(object.versionId, extents);
      const stored = this.db.prepare(`SELECT count(*) AS n FROM extents WHERE version_id = ? AND extent_index < ?`).get(object.versionId, MANIFEST_EXTENT_INDEX) as { n: number };
      assert(stored.n === object.extentCount, 'every extent of the object is committed (recorded progress included)');
      const fragmentsStored = this.db.prepare(`SELECT count(*) AS n FROM fragments WHERE version_id = ? AND extent_index < ?`).get(object.versionId, MANIFEST_EXTENT_INDEX) as { n: number };
      assert(fragmentsStored.n === object.extentCount * object.fragmentCount, 'every fragment of every extent is committed');
      if (newObject.metadata) {
        const stored = storedMetadata(newObject.metadata);
        this.db
          .prepare(
            `INSERT INTO object_metadata (version_id, etag, content_type, user_metadata, content_headers, part_sizes, encryption, acl) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(object.versionId, stored.etag, stored.contentType, stored.userMetadata, stored.contentHeaders, stored.partSizes, stored.encryption, stored.acl);
      }
      this.db.prepare(`DELETE FROM intents WHERE version_id = ?`).run(object.versionId);
      const latest = this.db
        .prepare(
          `SELECT max(coalesce((SELECT sequence FROM objects WHERE key = ?), 0),
                      coalesce((SELECT max(sequence) FROM garbage WHERE key = ? AND removal = 1), 0)) AS sequence`,
        )
        .get(object.key, object.key) as { sequence: number };
      if (latest.sequence > object.sequence) {
        // A put or removal that started later committed first: it stays, and this version is replaced at once.
        this.db
          .prepare(`INSERT INTO garbage (version_id, key, queued_at_ms, sequence) VALUES (?, ?, ?, ?)`)
          .run(object.versionId, object.key, Date.now(), object.sequence);
        return { replaced: undefined, superseded: true };
      }
      const replaced = this.queueGarbageFor(object.key);
      this.db
        .prepare(
          `INSERT INTO objects (key, version_id, size_bytes, policy, fragment_count, fragments_needed,
             extent_size_bytes, extent_count, created_at_ms, sequence)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
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
        );
      return { replaced, superseded: false };
    }).immediate();
  }

  /**
   * A large put's progress: rows of extents written and flushed so far, under the put's intent (no object row points
   * at them yet). An interrupted put's recorded rows tell its cleanup where the fragments are (abandonVersion).
   */
  recordIntentExtents(versionId: string, extents: ReadonlyArray<ExtentRow>): void {
    this.db.transaction(() => {
      assert(this.hasIntent(versionId), 'progress is recorded only under a live intent');
      this.insertExtents(versionId, extents);
    }).immediate();
  }

  /** Drops the rows a put recorded under its intent (after their fragments were deleted and the deletes flushed). */
  dropIntentRows(versionId: string): void {
    this.db.transaction(() => {
      assert(this.db.prepare(`SELECT 1 FROM objects WHERE version_id = ?`).get(versionId) === undefined, 'rows of a committed version are never dropped as an intent');
      this.db.prepare(`DELETE FROM fragments WHERE version_id = ?`).run(versionId);
      this.db.prepare(`DELETE FROM extents WHERE version_id = ?`).run(versionId);
    }).immediate();
  }

  private insertExtents(versionId: string, extents: ReadonlyArray<ExtentRow>): void {
    const insertExtent = this.db.prepare(`INSERT INTO extents (version_id, extent_index, length_bytes, checksum) VALUES (?, ?, ?, ?)`);
    const insertFragment = this.db.prepare(
      `INSERT INTO fragments (version_id, extent_index, fragment_index, disk_id, stored_bytes, location_bytes)
       VALUES (?, ?, ?, ?, ?, ?)`,
    );
    for (const extent of extents) {
      insertExtent.run(versionId, extent.extentIndex, extent.lengthBytes, extent.checksum);
      for (const fragment of extent.fragments) {
        insertFragment.run(versionId, extent.extentIndex, fragment.fragmentIndex, fragment.diskId, fragment.storedBytes, fragment.locationBytes);
      }
    }
  }

  // ── objects ───────────────────────────────────────────────────────────────────────────────────────────────────

  getObject(key: string): ObjectRow | undefined {
    return this.db.prepare(`${OBJECT_SELECT} WHERE key = ?`).get(key) as ObjectRow | undefined;
  }

  /** The version's S3 metadata, or undefined for objects put without it (CLI puts). */
  objectMetadata(versionId: string): ObjectMetadata | undefined {
    const row = this.db
      .prepare(
        `SELECT etag, content_type AS contentType, user_metadata AS userMetadata, content_headers AS contentHeaders, part_sizes AS partSizes,
                encryption, acl
         FROM object_metadata WHERE version_id = ?`,
      )
      .get(versionId) as StoredMetadata | undefined;
    return row && metadataOfStored(row);
  }

  isCurrentVersion(key: string, versionId: string): boolean {
    return this.db.prepare(`SELECT 1 FROM objects WHERE key = ? AND version_id = ?`).get(key, versionId) !== undefined;
  }

  /** Objects whose key starts with `prefix`, in byte order of their keys. */
  *listObjects(prefix: string): Generator<ObjectRow> {
    const statement = this.db.prepare(`${OBJECT_SELECT} WHERE key >= ? ORDER BY key`);
    for (const row of statement.iterate(prefix) as IterableIterator<ObjectRow>) {
      if (!row.key.startsWith(prefix)) break;
      yield row;
    }
  }

  /** Up to `limit` objects with keys after `afterKey` (all when undefined), in key order: for resumable walks. */
  objectsAfter(afterKey: string | undefined, limit: number): ObjectRow[] {
    return afterKey === undefined
      ? (this.db.prepare(`${OBJECT_SELECT} ORDER BY key LIMIT ?`).all(limit) as ObjectRow[])
      : (this.db.prepare(`${OBJECT_SELECT} WHERE key > ? ORDER BY key LIMIT ?`).all(afterKey, limit) as ObjectRow[]);
  }

  /** Up to `limit` objects with keys from `firstKey` on (inclusive), in key order. */
  objectsFrom(firstKey: string, limit: number): ObjectRow[] {
    return this.db.prepare(`${OBJECT_SELECT} WHERE key >= ? ORDER BY key LIMIT ?`).all(firstKey, limit) as ObjectRow[];
  }

  /** The current object whose version this is, or undefined for a replaced or removed version. */
  objectOfVersion(versionId: string): ObjectRow | undefined {
    return this.db.prepare(`${OBJECT_SELECT} WHERE version_id = ?`).get(versionId) as ObjectRow | undefined;
  }

  getSetting(name: string): string | undefined {
    const row = this.db.prepare(`SELECT value FROM meta WHERE name = ?`).get(name) as { value: string } | undefined;
    return row?.value;
  }

  setSetting(name: string, value: string): void {
    this.db.prepare(`INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`).run(name, value);
  }

  objectTotals(): { objectCount: number; logicalBytes: number } {
    return this.db
      .prepare(`SELECT count(*) AS objectCount, coalesce(sum(size_bytes), 0) AS logicalBytes FROM objects`)
      .get() as { objectCount: number; logicalBytes: number };
  }

  extentsOf(versionId: string): ExtentRow[] {
    const extents = this.db
      .prepare(
        `SELECT version_id AS versionId, extent_index AS extentIndex, length_bytes AS lengthBytes, checksum
         FROM extents WHERE version_id = ? AND extent_index < ? ORDER BY extent_index`,
      )
      .all(versionId, MANIFEST_EXTENT_INDEX) as Array<Omit<ExtentRow, 'fragments'>>;
    const fragments = this.db
      .prepare(`${FRAGMENT_SELECT} WHERE version_id = ? AND extent_index < ? ORDER BY extent_index, fragment_index`)
      .all(versionId, MANIFEST_EXTENT_INDEX) as FragmentRow[];
    const byExtent = new Map<number, FragmentRow[]>();
    for (const fragment of fragments) {
      const list = byExtent.get(fragment.extentIndex) ?? [];
      list.push(fragment);
      byExtent.set(fragment.extentIndex, list);
    }
    return extents.map((extent) => ({ ...extent, fragments: byExtent.get(extent.extentIndex) ?? [] }));
  }

  /** Removes the key and returns its object as it was (its version queued as garbage), or undefined if none. */
  takeObject(key: string): ObjectRow | undefined {
    return this.db.transaction(() => {
      const object = this.getObject(key);
      if (object) this.queueGarbageFor(key);
      return object;
    })();
  }

  /** Removes the key; its version is queued as garbage. Returns that version, or undefined if there was no object. */
  removeObject(key: string): string | undefined {
    return this.db.transaction(() => this.queueGarbageFor(key)).immediate();
  }

  removeWithMarker(key: string, marker: { versionId: string; sequence: number; extent: ExtentRow }): ObjectRow | undefined {
    return this.db.transaction(() => {
      this.insertExtents(marker.versionId, [marker.extent]);
      this.db.prepare(`DELETE FROM intents WHERE version_id = ?`).run(marker.versionId);
      const object = this.getObject(key);
      const removes = object !== undefined && object.sequence < marker.sequence;
      if (removes) this.queueGarbageFor(key);
      this.db
        .prepare(`INSERT INTO garbage (version_id, key, queued_at_ms, sequence, removal) VALUES (?, ?, ?, ?, ?)`)
        .run(marker.versionId, key, Date.now(), marker.sequence, removes ? 1 : 0);
      return removes ? object : undefined;
    }).immediate();
  }

  garbageKey(versionId: string): string | undefined {
    return (this.db.prepare(`SELECT key FROM garbage WHERE version_id = ?`).get(versionId) as { key: string } | undefined)?.key;
  }

  removalMarkersOf(key: string): string[] {
    return (this.db.prepare(`SELECT version_id AS versionId FROM garbage WHERE key = ? AND removal = 1 ORDER BY sequence`).all(key) as Array<{ versionId: string }>).map(
      (row) => row.versionId,
    );
  }

  garbageWaits(versionId: string): boolean {
    const row = this.db
      .prepare(
        `SELECT 1 FROM garbage m
         WHERE m.version_id = ? AND m.removal = 1 AND (
           EXISTS (SELECT 1 FROM garbage g WHERE g.key = m.key AND g.removal = 0 AND g.sequence > 0 AND g.sequence < m.sequence))`,
      )
      .get(versionId);
    return row !== undefined;
  }

  // ── garbage ───────────────────────────────────────────────────────────────────────────────────────────────────

  listGarbage(): string[] {
    // Removal markers last: the versions they wait for are collected first in the same pass.
    return (this.db.prepare(`SELECT version_id AS versionId FROM garbage ORDER BY removal, queued_at_ms`).all() as Array<{
      versionId: string;
    }>).map((row) => row.versionId);
  }

  isGarbage(versionId: string): boolean {
    return this.db.prepare(`SELECT 1 FROM garbage WHERE version_id = ?`).get(versionId) !== undefined;
  }

  fragmentsOfVersion(versionId: string): FragmentRow[] {
    return this.db.prepare(`${FRAGMENT_SELECT} WHERE version_id = ?`).all(versionId) as FragmentRow[];
  }

  deleteFragmentRows(rows: ReadonlyArray<FragmentAddress>): void {
    const statement = this.db.prepare(
      `DELETE FROM fragments WHERE version_id = ? AND extent_index = ? AND fragment_index = ?`,
    );
    this.db.transaction(() => {
      for (const row of rows) statement.run(row.versionId, row.extentIndex, row.fragmentIndex);
    }).immediate();
  }

  /** Drops a garbage version once none of its fragments remain. */
  finishGarbage(versionId: string): boolean {
    return this.db.transaction(() => {
      const left = this.db.prepare(`SELECT count(*) AS n FROM fragments WHERE version_id = ?`).get(versionId) as {
        n: number;
      };
      if (left.n > 0) return false;
      this.db.prepare(`DELETE FROM extents WHERE version_id = ?`).run(versionId);
      this.db.prepare(`DELETE FROM object_metadata WHERE version_id = ?`).run(versionId);
      this.db.prepare(`DELETE FROM garbage WHERE version_id = ?`).run(versionId);
      return true;
    }).immediate();
  }

  // ── drain ─────────────────────────────────────────────────────────────────────────────────────────────────────

  /** Up to `limit` fragments of current objects that live on `diskId`. */
  fragmentsToMove(diskId: number, limit: number): FragmentToMove[] {
    const rows = this.db
      .prepare(
        `SELECT o.key AS key, f.version_id AS versionId, f.extent_index AS extentIndex
         FROM fragments f JOIN objects o ON o.version_id = f.version_id
         WHERE f.disk_id = ? GROUP BY f.version_id, f.extent_index LIMIT ?`,
      )
      .all(diskId, limit) as Array<{ key: string; versionId: string; extentIndex: number }>;
    const moves: FragmentToMove[] = [];
    for (const row of rows) {
      const object = this.getObject(row.key);
      if (!object) continue;
      const extent = this.extentOf(row.versionId, row.extentIndex);
      if (!extent) continue;
      for (const fragment of extent.fragments) {
        if (fragment.diskId === diskId) moves.push({ object, extent, fragment });
      }
    }
    return moves;
  }

  /** Re-points one fragment from one disk to another; false when it no longer lives where expected. */
  /** Registers a fragment about to be copied from its source disk to `targetDiskId` (see the moves table). */
  beginMove(fragment: FragmentRow, targetDiskId: number): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO moves
           (version_id, extent_index, fragment_index, source_disk_id, target_disk_id, started_at_ms, source_location_bytes)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(fragment.versionId, fragment.extentIndex, fragment.fragmentIndex, fragment.diskId, targetDiskId, Date.now(), fragment.locationBytes);
  }

  listMoves(): Array<FragmentAddress & { sourceDiskId: number; targetDiskId: number; sourceLocationBytes: number }> {
    return this.db
      .prepare(
        `SELECT version_id AS versionId, extent_index AS extentIndex, fragment_index AS fragmentIndex,
                source_disk_id AS sourceDiskId, target_disk_id AS targetDiskId,
                source_location_bytes AS sourceLocationBytes FROM moves`,
      )
      .all() as Array<FragmentAddress & { sourceDiskId: number; targetDiskId: number; sourceLocationBytes: number }>;
  }

  /** The disk the catalog places a fragment on, or undefined when the fragment is no longer referenced. */
  diskOfFragment(address: FragmentAddress): number | undefined {
    return this.fragmentRow(address)?.diskId;
  }

  fragmentRow(address: FragmentAddress): FragmentRow | undefined {
    return this.db
      .prepare(`${FRAGMENT_SELECT} WHERE version_id = ? AND extent_index = ? AND fragment_index = ?`)
      .get(address.versionId, address.extentIndex, address.fragmentIndex) as FragmentRow | undefined;
  }

  fragmentRows(addresses: ReadonlyArray<FragmentAddress>): Array<FragmentRow | undefined> {
    // One query per version, not per fragment: the addresses come in whole puts (every fragment of a large one).
    return this.db.transaction(() => {
      const byVersion = new Map<string, Map<string, FragmentRow>>();
      return addresses.map((address) => {
        let rows = byVersion.get(address.versionId);
        if (!rows) {
          rows = new Map(this.fragmentsOfVersion(address.versionId).map((row) => [`${row.extentIndex}.${row.fragmentIndex}`, row]));
          byVersion.set(address.versionId, rows);
        }
        return rows.get(`${address.extentIndex}.${address.fragmentIndex}`);
      });
    })();
  }

  /** Every fragment row naming this disk (current and garbage versions), for recover. */
  fragmentsOnDisk(diskId: number): FragmentRow[] {
    return this.db.prepare(`${FRAGMENT_SELECT} WHERE disk_id = ?`).all(diskId) as FragmentRow[];
  }

  /** True while a move of this fragment (or, without indexes, of any fragment of the version) is recorded. */
  isMoving(address: { versionId: string; extentIndex?: number; fragmentIndex?: number }): boolean {
    if (address.extentIndex === undefined || address.fragmentIndex === undefined) {
      return this.db.prepare(`SELECT 1 FROM moves WHERE version_id = ? LIMIT 1`).get(address.versionId) !== undefined;
    }
    return (
      this.db
        .prepare(`SELECT 1 FROM moves WHERE version_id = ? AND extent_index = ? AND fragment_index = ?`)
        .get(address.versionId, address.extentIndex, address.fragmentIndex) !== undefined
    );
  }

  hasIntent(versionId: string): boolean {
    return this.db.prepare(`SELECT 1 FROM intents WHERE version_id = ?`).get(versionId) !== undefined;
  }

  fragmentStatus(fragment: FragmentAddress, place: { diskId: number; locationBytes: number | undefined }): 'in-flight' | 'referenced' | 'unreferenced' {
    return this.db.transaction(() => {
      if (this.hasIntent(fragment.versionId) || this.isMoving(fragment)) return 'in-flight' as const;
      const row = this.fragmentRow(fragment);
      const here = row !== undefined && row.diskId === place.diskId && (place.locationBytes === undefined || row.locationBytes === place.locationBytes);
      return here ? ('referenced' as const) : ('unreferenced' as const);
    })();
  }

  /** Up to `limit` objects whose key starts with `prefix`, after `afterKey` (from the first when undefined). */
  objectsWithPrefix(prefix: string, afterKey: string | undefined, limit: number): ObjectRow[] {
    const rows =
      afterKey === undefined
        ? (this.db.prepare(`${OBJECT_SELECT} WHERE key >= ? ORDER BY key LIMIT ?`).all(prefix, limit) as ObjectRow[])
        : (this.db.prepare(`${OBJECT_SELECT} WHERE key > ? ORDER BY key LIMIT ?`).all(afterKey, limit) as ObjectRow[]);
    const end = rows.findIndex((row) => !row.key.startsWith(prefix));
    return end < 0 ? rows : rows.slice(0, end);
  }

  /** Runs `work` in a savepoint of the open transaction: undone alone if it throws. */
  async inSavepoint<T>(work: () => Promise<T>): Promise<T> {
    this.db.exec('SAVEPOINT batch_item');
    try {
      const result = await work();
      this.db.exec('RELEASE batch_item');
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK TO batch_item; RELEASE batch_item');
      throw error;
    }
  }

  dropMove(address: FragmentAddress): void {
    this.db
      .prepare(`DELETE FROM moves WHERE version_id = ? AND extent_index = ? AND fragment_index = ?`)
      .run(address.versionId, address.extentIndex, address.fragmentIndex);
  }

  /** Re-points a fragment at the disk its copy was written to. The move row stays until the source copy is gone. */
  moveFragment(
    address: FragmentAddress,
    from: { diskId: number },
    to: { diskId: number; storedBytes: number; locationBytes: number },
  ): boolean {
    const result = this.db
      .prepare(
        `UPDATE fragments SET disk_id = ?, stored_bytes = ?, location_bytes = ?
         WHERE version_id = ? AND extent_index = ? AND fragment_index = ? AND disk_id = ?`,
      )
      .run(to.diskId, to.storedBytes, to.locationBytes, address.versionId, address.extentIndex, address.fragmentIndex, from.diskId);
    return result.changes === 1;
  }

  /** The most fragments per extent among the objects with a fragment on this disk (0 when it holds none). */
  widestExtentOnDisk(diskId: number): number {
    const row = this.db
      .prepare(
        `SELECT coalesce(max(o.fragment_count), 0) AS n
         FROM fragments f JOIN objects o ON o.version_id = f.version_id WHERE f.disk_id = ?`,
      )
      .get(diskId) as { n: number };
    return row.n;
  }

  countFragmentsOnDisk(diskId: number): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM fragments WHERE disk_id = ?`).get(diskId) as { n: number }).n;
  }

  // ── health ────────────────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Counts extents of current objects by how many of their fragments are on unavailable disks: `degraded` have at
   * least one there, `unreadable` have fewer available than the policy needs.
   */
  redundancyReport(unavailableDiskIds: ReadonlyArray<number>): { degradedExtents: number; unreadableExtents: number } {
    return this.db
      .prepare(
        `SELECT coalesce(sum(missing > 0), 0) AS degradedExtents,
                coalesce(sum(fragment_count - missing < fragments_needed), 0) AS unreadableExtents
         FROM (
           SELECT o.fragment_count, o.fragments_needed,
                  sum(f.disk_id IN (SELECT value FROM json_each(?))) AS missing
           FROM fragments f JOIN objects o ON o.version_id = f.version_id
           WHERE f.extent_index < ?
           GROUP BY f.version_id, f.extent_index
         )`,
      )
      .get(JSON.stringify(unavailableDiskIds), MANIFEST_EXTENT_INDEX) as { degradedExtents: number; unreadableExtents: number };
  }

  // ── counters ──────────────────────────────────────────────────────────────────────────────────────────────────

  addToCounter(name: string, delta: number): void {
    this.db
      .prepare(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + ?`)
      .run(name, delta, delta);
  }

  counters(): Record<string, number> {
    const rows = this.db.prepare(`SELECT name, value FROM counters ORDER BY name`).all() as Array<{
      name: string;
      value: number;
    }>;
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────────────────────────

  extentOf(versionId: string, extentIndex: number): ExtentRow | undefined {
    const extent = this.db
      .prepare(
        `SELECT version_id AS versionId, extent_index AS extentIndex, length_bytes AS lengthBytes, checksum
         FROM extents WHERE version_id = ? AND extent_index = ?`,
      )
      .get(versionId, extentIndex) as Omit<ExtentRow, 'fragments'> | undefined;
    if (!extent) return undefined;
    const fragments = this.db
      .prepare(`${FRAGMENT_SELECT} WHERE version_id = ? AND extent_index = ? ORDER BY fragment_index`)
      .all(versionId, extentIndex) as FragmentRow[];
    return { ...extent, fragments };
  }

  /** Inside a transaction: detaches the key's current version (if any) and queues it as garbage. */
  private queueGarbageFor(key: string): string | undefined {
    const current = this.db.prepare(`SELECT version_id AS versionId, sequence FROM objects WHERE key = ?`).get(key) as
      | { versionId: string; sequence: number }
      | undefined;
    if (!current) return undefined;
    this.db.prepare(`DELETE FROM objects WHERE key = ?`).run(key);
    this.db
      .prepare(`INSERT INTO garbage (version_id, key, queued_at_ms, sequence) VALUES (?, ?, ?, ?)`)
      .run(current.versionId, key, Date.now(), current.sequence);
    return current.versionId;
  }

  private migrate(filePath: string): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > CATALOG_SCHEMA_VERSION) {
      throw new ShardpoolError(
        'POOL_FORMAT_UNSUPPORTED',
        `catalog ${filePath} has schema version ${version}; this shardpool reads up to ${CATALOG_SCHEMA_VERSION}`,
        { path: filePath },
      );
    }
    if (version === CATALOG_SCHEMA_VERSION) return;
    // A migration that makes a table anew (SQLite cannot change constraints) drops the old one, which foreign keys
    // would refuse while rows name it: they are off around the transaction (the pragma cannot change inside one)
    // and checked before it commits, as SQLite's documented procedure for changing a table does.
    this.db.pragma('foreign_keys = OFF');
    try {
      this.db.transaction(() => {
        // Read again under the write lock: a reader and a writer may open an old catalog at once, and only the first
        // may migrate it.
        const current = this.db.pragma('user_version', { simple: true }) as number;
        for (let step = current; step < CATALOG_SCHEMA_VERSION; step += 1) {
          this.db.exec(catalogMigration(SQLITE_DIALECT, step));
        }
        const broken = this.db.pragma('foreign_key_check') as unknown[];
        if (broken.length > 0) {
          throw new ShardpoolError('CATALOG_FAILED', `catalog ${filePath} cannot be migrated: ${broken.length} rows name a disk or row that does not exist`, { path: filePath });
        }
        this.db.pragma(`user_version = ${CATALOG_SCHEMA_VERSION}`);
      }).immediate();
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
  }
}

const NODE_SELECT = `SELECT name, address, state, joined_at_ms AS joinedAtMs, lease_expires_ms AS leaseExpiresMs,
  last_seen_ms AS lastSeenMs FROM nodes`;

const OBJECT_SELECT = `SELECT key, version_id AS versionId, size_bytes AS sizeBytes, policy,
  fragment_count AS fragmentCount, fragments_needed AS fragmentsNeeded, extent_size_bytes AS extentSizeBytes,
  extent_count AS extentCount, created_at_ms AS createdAtMs, sequence FROM objects`;

/** Hands out the next commit sequence number (inside a transaction). */
const NEXT_SEQUENCE = `INSERT INTO sequences (name, value) VALUES ('commit', 1)
  ON CONFLICT (name) DO UPDATE SET value = sequences.value + 1 RETURNING value`;

const FRAGMENT_SELECT = `SELECT version_id AS versionId, extent_index AS extentIndex, fragment_index AS fragmentIndex,
  disk_id AS diskId, stored_bytes AS storedBytes, location_bytes AS locationBytes FROM fragments`;

/** The methods of `T`, each returning a promise of what it returned. */
type Async<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never };

/** Set while a transaction's work runs: the catalog itself may not be called from there (it would wait forever). */
const insideTransaction = new AsyncLocalStorage<true>();

/**
 * The SQLite engine. One connection, used by one caller at a time: a call made while a transaction is open (a
 * group commit awaiting its pieces of work) waits for it to end, so nobody reads uncommitted rows or writes into
 * another's transaction; a call made when none is open runs at once. Transactions are BEGIN IMMEDIATE … COMMIT,
 * durable at COMMIT (synchronous=FULL); each piece of a group commit runs in a savepoint of its own.
 */
export class SqliteCatalog {
  readonly engine = 'sqlite';
  readonly s3: S3Tables;
  private readonly outside: Async<SqliteRows>;
  /** The handle of the open transaction: the same rows, without waiting. */
  private readonly tx: CatalogTransaction;
  private transactionEnded: Promise<void> | undefined;
  private batch: BatchPiece[] = [];
  private batchScheduled = false;

  private constructor(
    private readonly rows: SqliteRows,
    private readonly filePath: string,
  ) {
    this.outside = asyncView(rows, filePath, () => this.untilNoTransaction());
    this.s3 = asyncView(rows.s3, filePath, () => this.untilNoTransaction());
    this.tx = this.operations(asyncView(rows, filePath, undefined), asyncView(rows.s3, filePath, undefined), (work) => work(this.tx));
  }

  static open(filePath: string, options: { create: boolean }): Catalog {
    const catalog = new SqliteCatalog(SqliteRows.open(filePath, options), filePath);
    return catalog.operations(catalog.outside, catalog.s3, (work) => catalog.transaction(work), catalog);
  }

  inBatch<T>(work: (tx: CatalogTransaction) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.batch.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        setImmediate(() => void this.runBatch());
      }
    });
  }

  async close(): Promise<void> {
    await this.untilNoTransaction();
    this.rows.close();
  }

  /** Read through a connection of its own (sqlite-dump.ts), so this one stays free for other calls meanwhile. */
  async *dumpRecords(): AsyncGenerator<CatalogRecord> {
    try {
      const { dumpSqliteRecords } = await import('./sqlite-dump.js');
      yield* dumpSqliteRecords(this.filePath);
    } catch (error) {
      throw catalogError(error, this.filePath);
    }
  }

  /** One transaction of its own on this connection, which nothing else uses until the load ends. */
  loadRecords(records: AsyncIterable<CatalogRecord>): Promise<Record<string, number>> {
    return this.alone(async () => {
      try {
        const { loadSqliteRecords } = await import('./sqlite-dump.js');
        return await loadSqliteRecords(this.rows.db, records);
      } catch (error) {
        throw catalogError(error, this.filePath);
      }
    });
  }

  private async runBatch(): Promise<void> {
    this.batchScheduled = false;
    const items = this.batch.splice(0);
    if (items.length === 0) return;
    const outcomes: PieceOutcome[] = [];
    try {
      await this.transaction(async (tx) => {
        for (const item of items) {
          try {
            outcomes.push({ ok: true, value: await this.rows.inSavepoint(() => item.work(tx)) });
          } catch (error) {
            outcomes.push({ ok: false, error: catalogError(error, this.filePath) });
          }
        }
      });
    } catch (error) {
      settleBatch(items, { failure: catalogError(error, this.filePath) });
      return;
    }
    settleBatch(items, { outcomes });
  }

  /** One transaction around `work`, with the connection to itself until it ends. */
  private transaction<T>(work: (tx: CatalogTransaction) => Promise<T>): Promise<T> {
    return this.alone(async () => {
      const { db } = this.rows;
      try {
        db.exec('BEGIN IMMEDIATE');
        try {
          const result = await insideTransaction.run(true, () => work(this.tx));
          db.exec('COMMIT');
          return result;
        } finally {
          if (db.inTransaction) db.exec('ROLLBACK');
        }
      } catch (error) {
        throw catalogError(error, this.filePath);
      }
    });
  }

  /** Runs `work` with the connection to itself: every other call waits until it ends. */
  private async alone<T>(work: () => Promise<T>): Promise<T> {
    // The wait is inline, not `await this.untilNoTransaction()`: returning from that call takes more turns of the
    // microtask queue, in which a second waiter could see no transaction either and both would BEGIN. Here the check
    // that finds none and the claim below run in the same turn.
    assert(insideTransaction.getStore() === undefined, "inside a transaction only its handle is used, never the catalog's");
    while (this.transactionEnded) await this.transactionEnded;
    let end!: () => void;
    this.transactionEnded = new Promise<void>((resolve) => (end = resolve));
    try {
      return await work();
    } finally {
      this.transactionEnded = undefined;
      end();
    }
  }

  private async untilNoTransaction(): Promise<void> {
    assert(insideTransaction.getStore() === undefined, "inside a transaction only its handle is used, never the catalog's");
    while (this.transactionEnded) await this.transactionEnded;
  }

  /** The operations over a view of the rows; `commit` runs a commit's transaction (joins the open one, in tx). */
  private operations<T extends object>(
    view: Async<SqliteRows>,
    s3: S3Tables,
    commit: <R>(work: (tx: CatalogTransaction) => Promise<R>) => Promise<R>,
    base?: T,
  ): CatalogOperations & T {
    const rows = this.rows;
    const own = {
      s3,
      commitObject: (newObject: NewObject, inCommit?: InCommit) =>
        commit(async (tx) => {
          const { replaced, superseded } = rows.commitObjectRows(newObject);
          const alsoQueued = (await inCommit?.(tx, { replacedVersionId: replaced, superseded })) ?? [];
          // A version replaced at once by a later put is collected by its own put, like one it replaced.
          return { replacedVersionId: replaced, alsoQueued: superseded ? [...alsoQueued, newObject.object.versionId] : alsoQueued };
        }),
      listObjects: (prefix: string): AsyncIterable<ObjectRow> => pagedObjects((pagePrefix, afterKey, limit) => view.objectsWithPrefix(pagePrefix, afterKey, limit), prefix),
    };
    const { commitObjectRows: _rows, objectsWithPrefix: _page, inSavepoint: _savepoint, listObjects: _list, s3: _s3, db: _db, close: _close, ...rest } = bindAll(view);
    const operations: CatalogOperations = { ...rest, ...own }; // checked here: the rows implement every operation
    return Object.assign(base ?? ({} as T), operations);
  }
}


/**
 * Each statement is prepared once per connection: preparing costs more than running most of them (a write-open looks
 * up a journal's worth of fragments, one statement each). A statement still stepping through rows (an iteration in
 * progress) is never handed out twice: a second caller meanwhile gets a fresh one.
 */
function prepareOnce(db: Database.Database): void {
  const prepare = db.prepare.bind(db);
  const prepared = new Map<string, Database.Statement>();
  db.prepare = ((source: string) => {
    const cached = prepared.get(source);
    if (cached && !cached.busy) return cached;
    const statement = prepare(source);
    if (!cached) prepared.set(source, statement);
    return statement;
  }) as typeof db.prepare;
}

/** Every method of the view (its prototype's included), as own properties. */
function bindAll<T extends object>(view: T): T {
  const names = new Set<string>();
  for (let prototype = Object.getPrototypeOf(view) as object | null; prototype && prototype !== Object.prototype; prototype = Object.getPrototypeOf(prototype) as object | null) {
    for (const name of Object.getOwnPropertyNames(prototype)) if (name !== 'constructor') names.add(name);
  }
  return Object.fromEntries([...names].map((name) => [name, (view as Record<string, unknown>)[name]])) as T;
}

/**
 * The rows' methods, async: each waits for `before` (no transaction of another caller open), then runs at once.
 * SQLite's own failures — an I/O error, a full or vanished filesystem, a damaged or locked file — become
 * CATALOG_IO_FAILED (with SQLite's code), never "internal error".
 */
function asyncView<T extends object>(target: T, filePath: string, before: (() => Promise<void>) | undefined): Async<T> {
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (before) await before();
        try {
          return (value as (...args: unknown[]) => unknown).apply(object, args);
        } catch (error) {
          throw catalogError(error, filePath);
        }
      };
    },
  }) as unknown as Async<T>;
}

/** Constraint violations stay what they are: a statement that breaks the schema's rules is a bug. */
export function catalogError(error: unknown, filePath: string): unknown {
  if (!(error instanceof Database.SqliteError) || error.code.startsWith('SQLITE_CONSTRAINT')) return error;
  return new ShardpoolError('CATALOG_IO_FAILED', `the catalog ${filePath} failed: ${error.message} (${error.code})`, { path: filePath, sqliteCode: error.code }, { cause: error });
}
