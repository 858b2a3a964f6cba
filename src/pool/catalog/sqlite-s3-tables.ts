// The S3 layer's tables in the SQLite catalog (schema in schema.ts): buckets, access keys and multipart
// uploads. Objects themselves are pool objects keyed "bucket/key"; their ETag and metadata live with the version.
// Only rows here: names, keys and upload ids are made and checked by the S3 layer (serve/s3/s3-catalog.ts).
import type Database from 'better-sqlite3';
import type { BucketGrant, BucketRow, CannedAcl, ObjectMetadata, PartRow, UploadRow, UserRow } from './catalog.js';
import {
  bucketOfStored,
  grantOfStored,
  storedMetadata,
  storedUploadValues,
  uploadOfStored,
  userOfStored,
  type StoredBucket,
  type StoredGrant,
  type StoredUpload,
  type StoredUser,
} from './engine-common.js';

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

  createBucket(name: string, access: { owner: string | undefined; acl: CannedAcl }): boolean {
    const result = this.db
      .prepare(`INSERT INTO buckets (name, created_at_ms, owner, acl) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`)
      .run(name, Date.now(), access.owner ?? null, access.acl);
    return result.changes === 1;
  }

  getBucket(name: string): BucketRow | undefined {
    const row = this.db.prepare(`${BUCKET_SELECT} WHERE name = ?`).get(name) as StoredBucket | undefined;
    return row && bucketOfStored(row);
  }

  listBuckets(): BucketRow[] {
    return (this.db.prepare(`${BUCKET_SELECT} ORDER BY name`).all() as StoredBucket[]).map(bucketOfStored);
  }

  setBucketAcl(name: string, acl: CannedAcl): boolean {
    return this.db.prepare(`UPDATE buckets SET acl = ? WHERE name = ?`).run(acl, name).changes === 1;
  }

  /** See S3Tables.setObjectAcl. */
  setObjectAcl(key: string, versionId: string, acl: CannedAcl, metadata: ObjectMetadata): boolean {
    return this.db.transaction(() => {
      if (this.db.prepare(`SELECT 1 FROM objects WHERE key = ? AND version_id = ?`).get(key, versionId) === undefined) return false;
      if (this.db.prepare(`UPDATE object_metadata SET acl = ? WHERE version_id = ?`).run(acl, versionId).changes === 1) return true;
      const stored = storedMetadata({ ...metadata, acl });
      this.db
        .prepare(`INSERT INTO object_metadata (version_id, etag, content_type, user_metadata, content_headers, part_sizes, acl) VALUES (?, ?, ?, ?, ?, ?, ?)`)
        .run(versionId, stored.etag, stored.contentType, stored.userMetadata, stored.contentHeaders, stored.partSizes, stored.acl);
      return true;
    }).immediate();
  }

  // ── grants ────────────────────────────────────────────────────────────────────────────────────────────────────

  listGrants(filter: { bucket?: string; user?: string }): BucketGrant[] {
    const rows = this.db
      .prepare(`${GRANT_SELECT} WHERE (? IS NULL OR bucket = ?) AND (? IS NULL OR user_name = ?) ORDER BY bucket, user_name`)
      .all(filter.bucket ?? null, filter.bucket ?? null, filter.user ?? null, filter.user ?? null) as StoredGrant[];
    return rows.map(grantOfStored);
  }

  putGrant(grant: BucketGrant): boolean {
    return this.db.transaction(() => {
      if (this.db.prepare(`SELECT 1 FROM buckets WHERE name = ?`).get(grant.bucket) === undefined) return false;
      if (!grant.read && !grant.write && !grant.owner) {
        this.db.prepare(`DELETE FROM bucket_grants WHERE bucket = ? AND user_name = ?`).run(grant.bucket, grant.user);
        return true;
      }
      this.db
        .prepare(
          `INSERT INTO bucket_grants (bucket, user_name, may_read, may_write, may_own) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (bucket, user_name) DO UPDATE SET may_read = excluded.may_read, may_write = excluded.may_write, may_own = excluded.may_own`,
        )
        .run(grant.bucket, grant.user, Number(grant.read), Number(grant.write), Number(grant.owner));
      return true;
    }).immediate();
  }

  setAdmin(name: string, admin: boolean): boolean {
    return this.db.prepare(`UPDATE users SET admin = ? WHERE name = ?`).run(Number(admin), name).changes === 1;
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
      this.db.prepare(`DELETE FROM bucket_grants WHERE bucket = ?`).run(name);
      this.db.prepare(`DELETE FROM buckets WHERE name = ?`).run(name);
      return versionIds;
    }).immediate();
  }

  // ── users (access keys) ───────────────────────────────────────────────────────────────────────────────────────

  /** False when a user of that name exists. */
  insertUser(row: UserRow): boolean {
    const result = this.db
      .prepare(
        `INSERT INTO users (name, access_key_id, secret_access_key, created_at_ms, admin) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING`,
      )
      .run(row.name, row.accessKeyId, row.secretAccessKey, row.createdAtMs, Number(row.admin));
    return result.changes === 1;
  }

  listUsers(): UserRow[] {
    return (this.db.prepare(`${USER_SELECT} ORDER BY name`).all() as StoredUser[]).map(userOfStored);
  }

  /** See S3Tables.removeUser. */
  removeUser(name: string): boolean {
    return this.db.transaction(() => {
      this.db.prepare(`DELETE FROM bucket_grants WHERE user_name = ?`).run(name);
      return this.db.prepare(`DELETE FROM users WHERE name = ?`).run(name).changes === 1;
    }).immediate();
  }

  secretOf(accessKeyId: string): string | undefined {
    return this.userOf(accessKeyId)?.secretAccessKey;
  }

  userOf(accessKeyId: string): UserRow | undefined {
    const row = this.db.prepare(`${USER_SELECT} WHERE access_key_id = ?`).get(accessKeyId) as StoredUser | undefined;
    return row && userOfStored(row);
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
  created_at_ms AS createdAtMs, admin FROM users`;
const BUCKET_SELECT = `SELECT name, created_at_ms AS createdAtMs, owner, acl FROM buckets`;
const GRANT_SELECT = `SELECT bucket, user_name AS user, may_read AS read, may_write AS write, may_own AS owner FROM bucket_grants`;
const UPLOAD_SELECT = `SELECT upload_id AS uploadId, bucket, key, content_type AS contentType,
  user_metadata AS userMetadata, created_at_ms AS createdAtMs, content_headers AS contentHeaders, encryption FROM multipart_uploads`;

type RawUpload = StoredUpload;
const decodeUpload = uploadOfStored;
