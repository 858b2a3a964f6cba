// The catalog: which objects exist, where each of their fragments lives, and the S3 layer's tables. One interface,
// one module per engine (sqlite-catalog.ts, the embedded default); nothing outside this folder holds a database
// handle or writes SQL.
import type { DiskKind, FragmentAddress } from '../../disk/disk.js';
import type { CatalogRecord } from '../../format/catalog-dump.js';

export const CATALOG_FILE_NAME = 'catalog.sqlite';

export type DiskState = 'healthy' | 'failed' | 'draining';

export interface DiskRow {
  readonly id: number;
  readonly uuid: string;
  readonly kind: DiskKind;
  readonly path: string;
  readonly state: DiskState;
  readonly addedAtMs: number;
  /** The node whose host holds the disk ('' in a pool of one host). */
  readonly node: string;
}

/**
 * A node of a pool across hosts. active: it may hold disks and serve; a node is *up* while its lease has not
 * expired (it renews it), otherwise down. failed: an operator said it is gone (its disks are read around and never
 * written) until it joins again. removing: its disks are being drained onto the others.
 */
export type NodeState = 'active' | 'failed' | 'removing';

export interface NodeRow {
  readonly name: string;
  /** The node's fragment service, as other nodes reach it (http://ADDR:PORT). */
  readonly address: string;
  readonly state: NodeState;
  readonly joinedAtMs: number;
  readonly leaseExpiresMs: number;
  readonly lastSeenMs: number;
}

export interface ObjectRow {
  readonly key: string;
  readonly versionId: string;
  readonly sizeBytes: number;
  readonly policy: string;
  readonly fragmentCount: number;
  readonly fragmentsNeeded: number;
  readonly extentSizeBytes: number;
  readonly extentCount: number;
  readonly createdAtMs: number;
  /**
   * Orders the puts and removals of the key (handed out by beginIntent, increasing): a version whose put started
   * earlier never replaces one whose put started later. 0 for versions from before version manifests.
   */
  readonly sequence: number;
}

export interface FragmentRow extends FragmentAddress {
  readonly diskId: number;
  readonly storedBytes: number;
  /** Where the fragment record starts on a block device; 0 on directory disks. */
  readonly locationBytes: number;
}

export interface ExtentRow {
  readonly versionId: string;
  readonly extentIndex: number;
  readonly lengthBytes: number;
  readonly checksum: Buffer;
  /** Ordered by fragment index. */
  readonly fragments: FragmentRow[];
}

/** What S3 clients see of an object beside its bytes; kept per version. */
export interface ObjectMetadata {
  /** The S3 ETag, quoted: MD5 of the bytes, or "<hex>-<parts>" for multipart uploads and CLI puts. */
  readonly etag: string;
  readonly contentType: string | undefined;
  /** x-amz-meta-* headers, lower-cased names without the prefix. */
  readonly userMetadata: Readonly<Record<string, string>>;
  /** Cache-Control, Content-Disposition, Content-Encoding, Content-Language, Expires, by lower-case name; absent when none. */
  readonly contentHeaders?: Readonly<Record<string, string>> | undefined;
  /** The sizes of a multipart object's parts, in order; absent for an object put whole. */
  readonly partSizesBytes?: ReadonlyArray<number> | undefined;
  /**
   * How the stored bytes decrypt, for an object encrypted at rest (format/sse-layout.ts, verified by the S3 layer that
   * reads it); absent for a plaintext one. Kept as given, like the version manifest keeps it.
   */
  readonly encryption?: Readonly<Record<string, unknown>> | undefined;
  /** The version's canned ACL; absent: private. */
  readonly acl?: CannedAcl | undefined;
  /**
   * Who owned the object's bucket, and its ACL, when the version was written. Not a catalog column: it travels in the
   * version manifest only, so that `shardpool import` can give a rebuilt bucket its owner back (docs/format.md).
   */
  readonly bucketAccess?: { readonly owner: string | undefined; readonly acl: CannedAcl } | undefined;
}

/** The canned ACLs a bucket or an object version can be in (the others are mapped onto these or refused). */
export type CannedAcl = 'private' | 'public-read';

export interface NewObject {
  readonly object: ObjectRow;
  readonly extents: ReadonlyArray<ExtentRow>;
  readonly metadata?: ObjectMetadata | undefined;
}

export interface DiskUsage {
  readonly fragmentCount: number;
  readonly storedBytes: number;
}

/** One fragment on a disk being drained, with what is needed to move or rebuild it. */
export interface FragmentToMove {
  readonly object: ObjectRow;
  readonly extent: ExtentRow;
  readonly fragment: FragmentRow;
}

// ── S3 tables ─────────────────────────────────────────────────────────────────────────────────────────────────

export interface BucketRow {
  readonly name: string;
  readonly createdAtMs: number;
  /** The user name that created it; undefined for a bucket from before tenants (admins only, until granted). */
  readonly owner: string | undefined;
  readonly acl: CannedAcl;
}

export interface UserRow {
  readonly name: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly createdAtMs: number;
  /** May do anything with every bucket. */
  readonly admin: boolean;
}

/** What a user who does not own a bucket may do with it (`shardpool user allow`). */
export interface BucketGrant {
  readonly bucket: string;
  readonly user: string;
  readonly read: boolean;
  readonly write: boolean;
  /** Manage the bucket as its owner does: ACLs, deleting it. */
  readonly owner: boolean;
}

export interface UploadRow {
  readonly uploadId: string;
  readonly bucket: string;
  readonly key: string;
  readonly contentType: string | undefined;
  readonly userMetadata: Record<string, string>;
  readonly createdAtMs: number;
  /** As ObjectMetadata.contentHeaders, for the object the upload will make; absent when none. */
  readonly contentHeaders?: Readonly<Record<string, string>> | undefined;
  /** The encryption its parts and its object get (S3 layer's JSON: kind, customer key MD5); absent when none. */
  readonly encryption?: Readonly<Record<string, unknown>> | undefined;
}

export interface PartRow {
  readonly uploadId: string;
  readonly partNumber: number;
  /** The hidden pool key holding the part's bytes. */
  readonly partKey: string;
  readonly etag: string;
  readonly sizeBytes: number;
  readonly uploadedAtMs: number;
}

/** The S3 layer's rows. Every method is one transaction, or joins the one it is called in (a put's inCommit). */
export interface S3Tables {
  /** False when a bucket of that name exists (nothing changed). */
  createBucket(name: string, access: { owner: string | undefined; acl: CannedAcl }): Promise<boolean>;
  getBucket(name: string): Promise<BucketRow | undefined>;
  listBuckets(): Promise<BucketRow[]>;
  /** False when the bucket does not exist. */
  setBucketAcl(name: string, acl: CannedAcl): Promise<boolean>;
  /**
   * Sets the ACL of the version's S3 metadata; a version put without metadata (a CLI put) is given `metadata` with
   * it. False when the version is no longer current under `key` (nothing changed).
   */
  setObjectAcl(key: string, versionId: string, acl: CannedAcl, metadata: ObjectMetadata): Promise<boolean>;
  /** Grants of one bucket, or of one user (by name), or all; ordered by bucket then user. */
  listGrants(filter: { bucket?: string; user?: string }): Promise<BucketGrant[]>;
  /** Stores the grant as given (every flag false removes it). False when the bucket does not exist. */
  putGrant(grant: BucketGrant): Promise<boolean>;
  /** False when no user has that name. */
  setAdmin(name: string, admin: boolean): Promise<boolean>;
  /**
   * Deletes a bucket that holds no object, with its unfinished uploads (each forgotten as finishUpload does, its
   * part objects under `partsPrefix` queued as garbage), in one transaction. Returns the versions queued, for the
   * caller to collect, or undefined (nothing changed) if the bucket holds an object.
   */
  deleteBucket(name: string, partsPrefix: string): Promise<string[] | undefined>;
  /** False when a user of that name exists. */
  insertUser(row: UserRow): Promise<boolean>;
  listUsers(): Promise<UserRow[]>;
  /** Removes the user and its grants; the buckets it owns keep its name as their owner (a user re-added regains them). */
  removeUser(name: string): Promise<boolean>;
  secretOf(accessKeyId: string): Promise<string | undefined>;
  userOf(accessKeyId: string): Promise<UserRow | undefined>;
  insertUpload(row: UploadRow): Promise<void>;
  getUpload(uploadId: string): Promise<UploadRow | undefined>;
  /** Uploads in a bucket whose key starts with prefix, ordered by key then creation. */
  listUploads(bucket: string, prefix: string, limit: number): Promise<UploadRow[]>;
  /**
   * Records an uploaded part, run inside the transaction that commits the part's own object (PutOptions.inCommit),
   * so the row and the bytes it describes become visible together and in the same order as the commits. The part it
   * replaces (an earlier upload of the same number) is removed in the same transaction. Returns the versions that
   * removal queued as garbage, or undefined when the upload is gone (aborted or completed meanwhile): the caller then
   * refuses the commit, and nothing of the part remains.
   */
  replacePart(part: Omit<PartRow, 'uploadedAtMs'>): Promise<string[] | undefined>;
  listParts(uploadId: string, afterPartNumber?: number, limit?: number): Promise<PartRow[]>;
  /**
   * Forgets an upload, atomically: its row, its part rows and every part object (queued as garbage; a version a
   * reader still pins, such as a Complete reading it, is collected when the reader lets go). Returns the queued
   * versions for the caller to collect, or undefined if the upload does not exist. Run alone (Abort) or inside the
   * commit of the completed object (Complete), so the object appears exactly when the upload disappears.
   */
  finishUpload(uploadId: string, objectsPrefix: string): Promise<string[] | undefined>;
  /**
   * Part objects no S3 call could ever remove, removed in one transaction (the daemon runs this when it opens the
   * pool): hidden part objects that no part row of an existing upload names, and uploads with a part row naming a
   * missing object (they can never complete; older versions could leave both behind after a crash in Complete's or
   * Abort's cleanup). Returns the versions queued as garbage.
   */
  removeAbandonedParts(partsPrefix: string): Promise<{
    versionIds: string[];
    uploadsRemoved: number;
    objectsRemoved: number;
  }>;
}

/**
 * The catalog of a pool: every read and write of pool metadata (the operations), each its own transaction, plus
 * group commit. Every call is async: an engine may be a server (PostgreSQL) as well as a file (SQLite).
 */
export interface Catalog extends CatalogOperations {
  /** Which engine keeps this catalog ('sqlite'). */
  readonly engine: string;
  /**
   * Catalog group commit: runs `work` in one transaction with every other call made before the event loop turns,
   * so concurrent puts share one commit (one fsync). Resolves after that transaction committed, durably. Each piece
   * of work runs in a savepoint of its own: one that throws is undone alone and rejects its own call, the others
   * still commit. `work` may use only its transaction's handle (the catalog itself waits for the transaction to end)
   * and must do nothing but catalog work: every other caller waits while it runs.
   */
  inBatch<T>(work: (tx: CatalogTransaction) => Promise<T>): Promise<T>;
  /**
   * Every row of every table as engine-neutral records (`shardpool catalog dump`): tables in CATALOG_DUMP_TABLES
   * order, rows in primary-key order (text as UTF-8 bytes), all read in one read transaction, so the records are a
   * snapshot while writers go on. Rows are read a page at a time: memory does not grow with the catalog, and the
   * engine's other calls may run between two records.
   */
  dumpRecords(): AsyncIterable<CatalogRecord>;
  /**
   * Fills an empty catalog with `records` (`shardpool catalog load`), in one transaction committed only once the
   * records ended normally: an error thrown by them (a dump found bad or cut short) or a row that breaks the
   * schema's rules (CATALOG_DUMP_INVALID, naming its line) leaves the catalog as it was. Empty means no row in any
   * table but meta, whose settings the records replace; otherwise CATALOG_NOT_EMPTY. Nothing else may use the
   * catalog while it loads. Returns the rows loaded per table.
   */
  loadRecords(records: AsyncIterable<CatalogRecord>): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** The operations inside one transaction (inBatch, a commit's inCommit): all of them see and join it. */
export type CatalogTransaction = CatalogOperations;

/**
 * Runs last in a commit's transaction (see commitObject), told the version the new one replaces (undefined: the key
 * had no object). The key's row is the commit's until the transaction ends — no other commit or remove of the key
 * runs between the decision and the commit — so a precondition on what the key held (S3's If-None-Match: *) is
 * checked here atomically with the commit, and a throw refuses it.
 */
export type InCommit = (
  tx: CatalogTransaction,
  commit: {
    readonly replacedVersionId: string | undefined;
    /**
     * True when a put or removal of the key that started later has already committed: this version is queued as
     * garbage at once (ordered before that later one), so a precondition on what the key held cannot be met.
     */
    readonly superseded: boolean;
  },
) => Promise<ReadonlyArray<string> | void>;

export interface CatalogOperations {
  /** The S3 layer's tables, in the same database (and transactions) as the pool's. */
  readonly s3: S3Tables;
  addDisk(disk: {
    uuid: string;
    kind: DiskKind;
    path: string;
    /** The node whose host holds it; '' (the default) in a pool of one host. */
    node?: string;
  }): Promise<DiskRow>;
  /**
   * Records a node joining (or joining again: its address is updated and a failed node becomes active), with a
   * lease until `nowMs + leaseMs`. Returns the row as it is now.
   */
  joinNode(node: { name: string; address: string; nowMs: number; leaseMs: number }): Promise<NodeRow>;
  /**
   * Extends the node's lease to `nowMs + leaseMs` and notes it was seen; the row as it is now, or undefined when the
   * node is not (any more) a member. A failed node's lease is not renewed: it must join again.
   */
  renewNodeLease(name: string, nowMs: number, leaseMs: number): Promise<NodeRow | undefined>;
  listNodes(): Promise<NodeRow[]>;
  setNodeState(name: string, state: NodeState): Promise<void>;
  /** Forgets a node; only allowed once no disk row names it. */
  deleteNode(name: string): Promise<void>;
  listDisks(): Promise<DiskRow[]>;
  setDiskState(diskId: number, state: DiskState): Promise<void>;
  /**
   * Records where disks are now, all in one transaction (two disks may trade paths: device names swapped across a
   * reboot). A path may be recorded for one disk only.
   */
  setDiskPaths(changes: ReadonlyArray<{ diskId: number; path: string }>): Promise<void>;
  /** Forgets a disk; only allowed once no fragment row names it. */
  deleteDisk(diskId: number): Promise<void>;
  diskUsage(): Promise<Map<number, DiskUsage>>;
  /** Registers a put (or removal) about to write under `versionId`; returns its sequence number. */
  beginIntent(versionId: string, key: string, node?: string): Promise<number>;
  /** Every put in flight or interrupted, with the node that started it ('' in a pool of one host). */
  listIntents(): Promise<Array<{
    versionId: string;
    key: string;
    node: string;
  }>>;
  dropIntent(versionId: string): Promise<void>;
  /**
   * Makes a new object version visible, atomically: inserts its extents and fragments, points the key at it,
   * queues the version it replaces (if any) as garbage and clears the put's intent. Returns the replaced version.
   * `inCommit` runs last in the same transaction (it may change other rows, or throw to refuse the commit), told the
   * replaced version; the versions it returns were queued as garbage by it.
   */
  commitObject(newObject: NewObject, inCommit?: InCommit): Promise<{
    replacedVersionId: string | undefined;
    alsoQueued: ReadonlyArray<string>;
  }>;
  /**
   * A large put's progress: rows of extents written and flushed so far, under the put's intent (no object row points
   * at them yet). An interrupted put's recorded rows tell its cleanup where the fragments are (abandonVersion).
   */
  recordIntentExtents(versionId: string, extents: ReadonlyArray<ExtentRow>): Promise<void>;
  /** Drops the rows a put recorded under its intent (after their fragments were deleted and the deletes flushed). */
  dropIntentRows(versionId: string): Promise<void>;
  getObject(key: string): Promise<ObjectRow | undefined>;
  /** The version's S3 metadata, or undefined for objects put without it (CLI puts). */
  objectMetadata(versionId: string): Promise<ObjectMetadata | undefined>;
  isCurrentVersion(key: string, versionId: string): Promise<boolean>;
  /** Objects whose key starts with `prefix`, in byte order of their keys. */
  listObjects(prefix: string): AsyncIterable<ObjectRow>;
  /** Up to `limit` objects with keys after `afterKey` (all when undefined), in key order: for resumable walks. */
  objectsAfter(afterKey: string | undefined, limit: number): Promise<ObjectRow[]>;
  /** Up to `limit` objects with keys from `firstKey` on (inclusive), in key order. */
  objectsFrom(firstKey: string, limit: number): Promise<ObjectRow[]>;
  /** The current object whose version this is, or undefined for a replaced or removed version. */
  objectOfVersion(versionId: string): Promise<ObjectRow | undefined>;
  getSetting(name: string): Promise<string | undefined>;
  setSetting(name: string, value: string): Promise<void>;
  objectTotals(): Promise<{
    objectCount: number;
    logicalBytes: number;
  }>;
  extentsOf(versionId: string): Promise<ExtentRow[]>;
  /** Removes the key; its version is queued as garbage. Returns that version, or undefined if there was no object. */
  removeObject(key: string): Promise<string | undefined>;
  /**
   * Removes the key, recording the removal marker whose manifest copies (`marker.extent`, written and flushed) say so
   * on the disks; clears the marker's intent. The marker is garbage that waits (garbageWaits) until no older version
   * of the key is left. Returns the object removed; undefined when there was none, or when a put that started after
   * the removal has already committed (the removal then came first, and the key keeps that put's version).
   */
  removeWithMarker(key: string, marker: { versionId: string; sequence: number; extent: ExtentRow }): Promise<ObjectRow | undefined>;
  /**
   * True while a garbage version must not be collected yet: a removal marker with an older version of its key still
   * in garbage (on the disks it could otherwise come back). A put still in flight does not hold a marker back: if it
   * lands after all (an import of the disks after a crash), it lands after the removal, which it overlapped.
   */
  garbageWaits(versionId: string): Promise<boolean>;
  /** The key a garbage version belonged to, or undefined when it is not garbage. */
  garbageKey(versionId: string): Promise<string | undefined>;
  /** The removal markers of a key still in garbage (each may wait for the key's older versions: garbageWaits). */
  removalMarkersOf(key: string): Promise<string[]>;
  /** The last sequence number handed out (0 before the first). */
  lastSequence(): Promise<number>;
  /** The next sequence number to hand out is above `sequence` (after an import). */
  raiseSequence(sequence: number): Promise<void>;
  /** Removes the key and returns its object as it was (its version queued as garbage), or undefined if none. */
  takeObject(key: string): Promise<ObjectRow | undefined>;
  listGarbage(): Promise<string[]>;
  isGarbage(versionId: string): Promise<boolean>;
  fragmentsOfVersion(versionId: string): Promise<FragmentRow[]>;
  deleteFragmentRows(rows: ReadonlyArray<FragmentAddress>): Promise<void>;
  /** Drops a garbage version once none of its fragments remain. */
  finishGarbage(versionId: string): Promise<boolean>;
  /** Up to `limit` fragments of current objects that live on `diskId`. */
  fragmentsToMove(diskId: number, limit: number): Promise<FragmentToMove[]>;
  /** Registers a fragment about to be copied from its source disk to `targetDiskId` (see the moves table). */
  beginMove(fragment: FragmentRow, targetDiskId: number): Promise<void>;
  listMoves(): Promise<Array<FragmentAddress & {
    sourceDiskId: number;
    targetDiskId: number;
    sourceLocationBytes: number;
  }>>;
  /** The disk the catalog places a fragment on, or undefined when the fragment is no longer referenced. */
  diskOfFragment(address: FragmentAddress): Promise<number | undefined>;
  fragmentRow(address: FragmentAddress): Promise<FragmentRow | undefined>;
  /** fragmentRow of each address, in the same order, in one read (a write-open settles a journal's worth at once). */
  fragmentRows(addresses: ReadonlyArray<FragmentAddress>): Promise<Array<FragmentRow | undefined>>;
  /** Every fragment row naming this disk (current and garbage versions), for recover. */
  fragmentsOnDisk(diskId: number): Promise<FragmentRow[]>;
  /** True while a move of this fragment (or, without indexes, of any fragment of the version) is recorded. */
  isMoving(address: {
    versionId: string;
    extentIndex?: number;
    fragmentIndex?: number;
  }): Promise<boolean>;
  hasIntent(versionId: string): Promise<boolean>;
  /**
   * What the catalog says of a fragment found at `diskId` (and, on a device, `locationBytes`), read in one
   * transaction: 'in-flight' while its put's intent or a move of it is recorded, 'referenced' when its row names that
   * place, else 'unreferenced' (an orphan, if the disk still holds it).
   */
  fragmentStatus(fragment: FragmentAddress, place: { diskId: number; locationBytes: number | undefined }): Promise<'in-flight' | 'referenced' | 'unreferenced'>;
  dropMove(address: FragmentAddress): Promise<void>;
  /** Re-points a fragment at the disk its copy was written to. The move row stays until the source copy is gone. */
  moveFragment(address: FragmentAddress, from: {
    diskId: number;
  }, to: {
    diskId: number;
    storedBytes: number;
    locationBytes: number;
  }): Promise<boolean>;
  /** The most fragments per extent among the objects with a fragment on this disk (0 when it holds none). */
  widestExtentOnDisk(diskId: number): Promise<number>;
  countFragmentsOnDisk(diskId: number): Promise<number>;
  /**
   * Counts extents of current objects by how many of their fragments are on unavailable disks: `degraded` have at
   * least one there, `unreadable` have fewer available than the policy needs.
   */
  redundancyReport(unavailableDiskIds: ReadonlyArray<number>): Promise<{
    degradedExtents: number;
    unreadableExtents: number;
  }>;
  addToCounter(name: string, delta: number): Promise<void>;
  counters(): Promise<Record<string, number>>;
  extentOf(versionId: string, extentIndex: number): Promise<ExtentRow | undefined>;
}

/** Told the number of pieces of work in every shared catalog transaction (the daemon's commit batch metric). */
let batchObserver: ((size: number) => void) | undefined;

export function setCatalogBatchObserver(next: ((size: number) => void) | undefined): void {
  batchObserver = next;
}


/** Engines call this after every shared catalog transaction with the number of pieces of work it held. */
export function reportCatalogBatch(size: number): void {
  batchObserver?.(size);
}
