// The S3 layer's tables in the SQLite catalog (schema in schema.ts): buckets, access keys and multipart
// uploads. Objects themselves are pool objects keyed "bucket/key"; their ETag and metadata live with the version.
// Only rows here: names, keys and upload ids are made and checked by the S3 layer (serve/s3/s3-catalog.ts).
import type Database from 'better-sqlite3';
import type { BucketRow, PartRow, UploadRow, UserRow } from './catalog.js';
import { storedUploadValues, uploadOfStored, type StoredUpload } from './engine-common.js';

/** What the S3 tables need of the pool's own tables, inside the same transaction. */
interface PoolObjects {
  listObjects(prefix: string): Iterable<{ readonly key: string }>;
  removeObject(key: string): string | undefined;
}

export class SqliteS3Tables {
  constructor(
    private readonly db: Database.Database,
    private readonly catalog: PoolObjects,
  ) {}

  // ── buckets ───────────────────────────────────────────────────────────────────────────────────────────────────

  createBucket(name: string): boolean {
    const result = this.db
      .prepare(`INSERT INTO buckets (name, created_at_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`)
      .run(name, Date.now());
    return result.changes === 1;
  }

  getBucket(name: string): BucketRow | undefined {
    return this.db.prepare(`SELECT name, created_at_ms AS createdAtMs FROM buckets WHERE name = ?`).get(name) as
      | BucketRow
      | undefined;
  }

  listBuckets(): BucketRow[] {
    return this.db.prepare(`SELECT name, created_at_ms AS createdAtMs FROM buckets ORDER BY name`).all() as BucketRow[];
  }

  /** See S3Tables.deleteBucket: a bucket with no object goes with its unfinished uploads. */
  deleteBucket(name: string, partsPrefix: string): string[] | undefined {
    return this.db.transaction(() => {
      const prefix = `${name}/`;
      const object = this.db.prepare(`SELECT 1 FROM objects WHERE key >= ? AND key < ? LIMIT 1`).get(prefix, `${name}0`);
      if (object !== undefined) return undefined;
      const uploads = this.db.prepare(`SELECT upload_id AS uploadId FROM multipart_uploads WHERE bucket = ? ORDER BY upload_id`).all(name) as Array<{ uploadId: string }>;
      const versionIds: string[] = [];
      for (const { uploadId } of uploads) versionIds.push(...(this.finishUpload(uploadId, `${partsPrefix}${uploadId}/`) ?? []));
      this.db.prepare(`DELETE FROM buckets WHERE name = ?`).run(name);
      return versionIds;
    }).immediate();
  }

  // ── users (access keys) ───────────────────────────────────────────────────────────────────────────────────────

  /** False when a user of that name exists. */
  insertUser(row: UserRow): boolean {
    const result = this.db
      .prepare(
        `INSERT INTO users (name, access_key_id, secret_access_key, created_at_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING`,
      )
      .run(row.name, row.accessKeyId, row.secretAccessKey, row.createdAtMs);
    return result.changes === 1;
  }

  listUsers(): UserRow[] {
    return this.db.prepare(`${USER_SELECT} ORDER BY name`).all() as UserRow[];
  }

  removeUser(name: string): boolean {
    return this.db.prepare(`DELETE FROM users WHERE name = ?`).run(name).changes === 1;
  }

  secretOf(accessKeyId: string): string | undefined {
    const row = this.db.prepare(`${USER_SELECT} WHERE access_key_id = ?`).get(accessKeyId) as UserRow | undefined;
    return row?.secretAccessKey;
  }

  userOf(accessKeyId: string): UserRow | undefined {
    return this.db.prepare(`${USER_SELECT} WHERE access_key_id = ?`).get(accessKeyId) as UserRow | undefined;
  }

  // ── multipart uploads ─────────────────────────────────────────────────────────────────────────────────────────

  insertUpload(row: UploadRow): void {
    this.db
      .prepare(
        `INSERT INTO multipart_uploads (upload_id, bucket, key, content_type, user_metadata, created_at_ms, content_headers, encryption)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(...storedUploadValues(row));
  }

  getUpload(uploadId: string): UploadRow | undefined {
    const row = this.db.prepare(`${UPLOAD_SELECT} WHERE upload_id = ?`).get(uploadId) as RawUpload | undefined;
    return row && decodeUpload(row);
  }

  /** Uploads in a bucket whose key starts with prefix, ordered by key then creation. */
  listUploads(bucket: string, prefix: string, limit: number): UploadRow[] {
    return (
      this.db
        .prepare(`${UPLOAD_SELECT} WHERE bucket = ? AND substr(key, 1, length(?)) = ? ORDER BY key, created_at_ms LIMIT ?`)
        .all(bucket, prefix, prefix, limit) as RawUpload[]
    ).map(decodeUpload);
  }

  /**
   * Records an uploaded part, run inside the transaction that commits the part's own object (PutOptions.inCommit),
   * so the row and the bytes it describes become visible together and in the same order as the commits. The part it
   * replaces (an earlier upload of the same number) is removed in the same transaction. Returns the versions that
   * removal queued as garbage, or undefined when the upload is gone (aborted or completed meanwhile): the caller then
   * refuses the commit, and nothing of the part remains.
   */
  replacePart(part: Omit<PartRow, 'uploadedAtMs'>): string[] | undefined {
    return this.db.transaction(() => {
      if (!this.uploadExists(part.uploadId)) return undefined;
      const previous = this.db
        .prepare(`SELECT part_key AS partKey FROM multipart_parts WHERE upload_id = ? AND part_number = ?`)
        .get(part.uploadId, part.partNumber) as { partKey: string } | undefined;
      this.db
        .prepare(
          `INSERT INTO multipart_parts (upload_id, part_number, part_key, etag, size_bytes, uploaded_at_ms)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (upload_id, part_number) DO UPDATE SET
             part_key = excluded.part_key, etag = excluded.etag, size_bytes = excluded.size_bytes,
             uploaded_at_ms = excluded.uploaded_at_ms`,
        )
        .run(part.uploadId, part.partNumber, part.partKey, part.etag, part.sizeBytes, Date.now());
      if (previous === undefined || previous.partKey === part.partKey) return [];
      return this.removePartObjects([previous.partKey]);
    })();
  }

  listParts(uploadId: string, afterPartNumber = 0, limit = 10_000): PartRow[] {
    return this.db
      .prepare(
        `SELECT upload_id AS uploadId, part_number AS partNumber, part_key AS partKey, etag, size_bytes AS sizeBytes,
                uploaded_at_ms AS uploadedAtMs
         FROM multipart_parts WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?`,
      )
      .all(uploadId, afterPartNumber, limit) as PartRow[];
  }

  /**
   * Forgets an upload, atomically: its row, its part rows and every part object (queued as garbage; a version a
   * reader still pins, such as a Complete reading it, is collected when the reader lets go). Returns the queued
   * versions for the caller to collect, or undefined if the upload does not exist. Run alone (Abort) or inside the
   * commit of the completed object (Complete), so the object appears exactly when the upload disappears.
   */
  finishUpload(uploadId: string, objectsPrefix: string): string[] | undefined {
    return this.db.transaction(() => {
      if (!this.uploadExists(uploadId)) return undefined;
      const named = (this.db.prepare(`SELECT part_key AS partKey FROM multipart_parts WHERE upload_id = ?`).all(uploadId) as Array<{ partKey: string }>).map(
        (row) => row.partKey,
      );
      // Also any object under the upload's prefix that no row names (left by an older shardpool): nothing may outlive
      // the upload it belongs to.
      const stray = [...this.catalog.listObjects(objectsPrefix)].map((object) => object.key);
      this.db.prepare(`DELETE FROM multipart_parts WHERE upload_id = ?`).run(uploadId);
      this.db.prepare(`DELETE FROM multipart_uploads WHERE upload_id = ?`).run(uploadId);
      return this.removePartObjects([...new Set([...named, ...stray])]);
    }).immediate();
  }

  /**
   * Part objects no S3 call could ever remove, removed in one transaction (the daemon runs this when it opens the
   * pool): hidden part objects that no part row of an existing upload names, and uploads with a part row naming a
   * missing object (they can never complete; older versions could leave both behind after a crash in Complete's or
   * Abort's cleanup). Returns the versions queued as garbage.
   */
  removeAbandonedParts(partsPrefix: string): { versionIds: string[]; uploadsRemoved: number; objectsRemoved: number } {
    return this.db.transaction(() => {
      const broken = (
        this.db
          .prepare(
            `SELECT DISTINCT upload_id AS uploadId FROM multipart_parts
             WHERE part_key NOT IN (SELECT key FROM objects) OR upload_id NOT IN (SELECT upload_id FROM multipart_uploads)`,
          )
          .all() as Array<{ uploadId: string }>
      ).map((row) => row.uploadId);
      const versionIds: string[] = [];
      for (const uploadId of broken) {
        versionIds.push(...(this.finishUpload(uploadId, `${partsPrefix}${uploadId}/`) ?? []));
        // A part row whose upload row is gone (finishUpload saw no upload): drop the rows themselves.
        this.db.prepare(`DELETE FROM multipart_parts WHERE upload_id = ?`).run(uploadId);
      }
      const named = new Set(
        (this.db.prepare(`SELECT part_key AS partKey FROM multipart_parts`).all() as Array<{ partKey: string }>).map((row) => row.partKey),
      );
      const orphans = [...this.catalog.listObjects(partsPrefix)].map((object) => object.key).filter((key) => !named.has(key));
      versionIds.push(...this.removePartObjects(orphans));
      return { versionIds, uploadsRemoved: broken.length, objectsRemoved: orphans.length };
    }).immediate();
  }

  private uploadExists(uploadId: string): boolean {
    return this.db.prepare(`SELECT 1 FROM multipart_uploads WHERE upload_id = ?`).get(uploadId) !== undefined;
  }

  /** Inside a transaction: removes these part objects (those that exist); returns the versions queued as garbage. */
  private removePartObjects(keys: ReadonlyArray<string>): string[] {
    const versionIds: string[] = [];
    for (const key of keys) {
      const removed = this.catalog.removeObject(key);
      if (removed !== undefined) versionIds.push(removed);
    }
    return versionIds;
  }
}

const USER_SELECT = `SELECT name, access_key_id AS accessKeyId, secret_access_key AS secretAccessKey,
  created_at_ms AS createdAtMs FROM users`;
const UPLOAD_SELECT = `SELECT upload_id AS uploadId, bucket, key, content_type AS contentType,
  user_metadata AS userMetadata, created_at_ms AS createdAtMs, content_headers AS contentHeaders, encryption FROM multipart_uploads`;

type RawUpload = StoredUpload;
const decodeUpload = uploadOfStored;
