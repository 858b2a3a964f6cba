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
}

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
}

export interface UserRow {
  readonly name: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly createdAtMs: number;
}

export interface UploadRow {
  readonly uploadId: string;
  readonly bucket: string;
  readonly key: string;
  readonly contentType: string | undefined;
  readonly userMetadata: Record<string, string>;
  readonly createdAtMs: number;
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
  createBucket(name: string): boolean;
  getBucket(name: string): BucketRow | undefined;
  listBuckets(): BucketRow[];
  /** Deletes a bucket that holds no object and no upload in progress; false if it is not empty. */
  deleteBucket(name: string): boolean;
  /** False when a user of that name exists. */
  insertUser(row: UserRow): boolean;
  listUsers(): UserRow[];
  removeUser(name: string): boolean;
  secretOf(accessKeyId: string): string | undefined;
  userOf(accessKeyId: string): UserRow | undefined;
  insertUpload(row: UploadRow): void;
  getUpload(uploadId: string): UploadRow | undefined;
  /** Uploads in a bucket whose key starts with prefix, ordered by key then creation. */
  listUploads(bucket: string, prefix: string, limit: number): UploadRow[];
  /**
   * Records an uploaded part, run inside the transaction that commits the part's own object (PutOptions.inCommit),
   * so the row and the bytes it describes become visible together and in the same order as the commits. The part it
   * replaces (an earlier upload of the same number) is removed in the same transaction. Returns the versions that
   * removal queued as garbage, or undefined when the upload is gone (aborted or completed meanwhile): the caller then
   * refuses the commit, and nothing of the part remains.
   */
  replacePart(part: Omit<PartRow, 'uploadedAtMs'>): string[] | undefined;
  listParts(uploadId: string, afterPartNumber?: number, limit?: number): PartRow[];
  /**
   * Forgets an upload, atomically: its row, its part rows and every part object (queued as garbage; a version a
   * reader still pins, such as a Complete reading it, is collected when the reader lets go). Returns the queued
   * versions for the caller to collect, or undefined if the upload does not exist. Run alone (Abort) or inside the
   * commit of the completed object (Complete), so the object appears exactly when the upload disappears.
   */
  finishUpload(uploadId: string, objectsPrefix: string): string[] | undefined;
  /**
   * Part objects no S3 call could ever remove, removed in one transaction (the daemon runs this when it opens the
   * pool): hidden part objects that no part row of an existing upload names, and uploads with a part row naming a
   * missing object (they can never complete; older versions could leave both behind after a crash in Complete's or
   * Abort's cleanup). Returns the versions queued as garbage.
   */
  removeAbandonedParts(partsPrefix: string): {
    versionIds: string[];
    uploadsRemoved: number;
    objectsRemoved: number;
  };
}

/** Every read and write of pool metadata. Each method is one transaction unless it says otherwise. */
export interface Catalog {
  /** Which engine keeps this catalog ('sqlite'). */
  readonly engine: string;
  /** The S3 layer's tables, in the same database (and transactions) as the pool's. */
  readonly s3: S3Tables;
  /**
   * Catalog group commit: runs `work` in one transaction with every other call made before the event loop turns,
   * so concurrent puts share one fsync. Resolves after that transaction committed (durably: synchronous=FULL).
   * If the shared transaction fails, each piece of work is retried alone so one bad put cannot fail the others.
   */
  inBatch<T>(work: () => T): Promise<T>;
  close(): void;
  addDisk(disk: {
    uuid: string;
    kind: DiskKind;
    path: string;
  }): DiskRow;
  listDisks(): DiskRow[];
  setDiskState(diskId: number, state: DiskState): void;
  /** Forgets a disk; only allowed once no fragment row names it. */
  deleteDisk(diskId: number): void;
  diskUsage(): Map<number, DiskUsage>;
  beginIntent(versionId: string, key: string): void;
  listIntents(): Array<{
    versionId: string;
    key: string;
  }>;
  dropIntent(versionId: string): void;
  /**
   * Makes a new object version visible, atomically: inserts its extents and fragments, points the key at it,
   * queues the version it replaces (if any) as garbage and clears the put's intent. Returns the replaced version.
   * `inCommit` runs last in the same transaction (it may change other rows, or throw to refuse the commit); the
   * versions it returns were queued as garbage by it.
   */
  commitObject(newObject: NewObject, inCommit?: () => ReadonlyArray<string> | void): {
    replacedVersionId: string | undefined;
    alsoQueued: ReadonlyArray<string>;
  };
  /**
   * A large put's progress: rows of extents written and flushed so far, under the put's intent (no object row points
   * at them yet). An interrupted put's recorded rows tell its cleanup where the fragments are (abandonVersion).
   */
  recordIntentExtents(versionId: string, extents: ReadonlyArray<ExtentRow>): void;
  /** Drops the rows a put recorded under its intent (after their fragments were deleted and the deletes flushed). */
  dropIntentRows(versionId: string): void;
  getObject(key: string): ObjectRow | undefined;
  /** The version's S3 metadata, or undefined for objects put without it (CLI puts). */
  objectMetadata(versionId: string): ObjectMetadata | undefined;
  isCurrentVersion(key: string, versionId: string): boolean;
  /** Objects whose key starts with `prefix`, in byte order of their keys. */
  listObjects(prefix: string): Generator<ObjectRow>;
  /** Up to `limit` objects with keys after `afterKey` (all when undefined), in key order: for resumable walks. */
  objectsAfter(afterKey: string | undefined, limit: number): ObjectRow[];
  /** Up to `limit` objects with keys from `firstKey` on (inclusive), in key order. */
  objectsFrom(firstKey: string, limit: number): ObjectRow[];
  /** The current object whose version this is, or undefined for a replaced or removed version. */
  objectOfVersion(versionId: string): ObjectRow | undefined;
  getSetting(name: string): string | undefined;
  setSetting(name: string, value: string): void;
  objectTotals(): {
    objectCount: number;
    logicalBytes: number;
  };
  extentsOf(versionId: string): ExtentRow[];
  /** Removes the key; its version is queued as garbage. Returns that version, or undefined if there was no object. */
  removeObject(key: string): string | undefined;
  listGarbage(): string[];
  isGarbage(versionId: string): boolean;
  fragmentsOfVersion(versionId: string): FragmentRow[];
  deleteFragmentRows(rows: ReadonlyArray<FragmentAddress>): void;
  /** Drops a garbage version once none of its fragments remain. */
  finishGarbage(versionId: string): boolean;
  /** Up to `limit` fragments of current objects that live on `diskId`. */
  fragmentsToMove(diskId: number, limit: number): FragmentToMove[];
  /** Registers a fragment about to be copied from its source disk to `targetDiskId` (see the moves table). */
  beginMove(fragment: FragmentRow, targetDiskId: number): void;
  listMoves(): Array<FragmentAddress & {
    sourceDiskId: number;
    targetDiskId: number;
    sourceLocationBytes: number;
  }>;
  /** The disk the catalog places a fragment on, or undefined when the fragment is no longer referenced. */
  diskOfFragment(address: FragmentAddress): number | undefined;
  fragmentRow(address: FragmentAddress): FragmentRow | undefined;
  /** Every fragment row naming this disk (current and garbage versions), for recover. */
  fragmentsOnDisk(diskId: number): FragmentRow[];
  /** True while a move of this fragment (or, without indexes, of any fragment of the version) is recorded. */
  isMoving(address: {
    versionId: string;
    extentIndex?: number;
    fragmentIndex?: number;
  }): boolean;
  hasIntent(versionId: string): boolean;
  dropMove(address: FragmentAddress): void;
  /** Re-points a fragment at the disk its copy was written to. The move row stays until the source copy is gone. */
  moveFragment(address: FragmentAddress, from: {
    diskId: number;
  }, to: {
    diskId: number;
    storedBytes: number;
    locationBytes: number;
  }): boolean;
  /** The most fragments per extent among the objects with a fragment on this disk (0 when it holds none). */
  widestExtentOnDisk(diskId: number): number;
  countFragmentsOnDisk(diskId: number): number;
  /**
   * Counts extents of current objects by how many of their fragments are on unavailable disks: `degraded` have at
   * least one there, `unreadable` have fewer available than the policy needs.
   */
  redundancyReport(unavailableDiskIds: ReadonlyArray<number>): {
    degradedExtents: number;
    unreadableExtents: number;
  };
  addToCounter(name: string, delta: number): void;
  counters(): Record<string, number>;
  extentOf(versionId: string, extentIndex: number): ExtentRow | undefined;
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
