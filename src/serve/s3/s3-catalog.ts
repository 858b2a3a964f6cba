// The S3 layer's own tables in the pool catalog (schema in pool/catalog-schema.ts): buckets, access keys and multipart
// uploads. Objects themselves are pool objects keyed "bucket/key"; their ETag and metadata live with the version.
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Catalog } from '../../pool/catalog.js';
import { ShardpoolError } from '../../errors.js';
import { MULTIPART_KEY_PREFIX } from './s3-names.js';

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

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
// Access key ids look like AWS's (20 upper-case letters and digits) so every client accepts them.
const ACCESS_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class S3Catalog {
  private readonly db: Database.Database;

  constructor(private readonly catalog: Catalog) {
    this.db = catalog.connection();
  }

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

  /** Deletes a bucket that holds no object and no upload in progress; false if it is not empty. */
  deleteBucket(name: string): boolean {
    return this.db.transaction(() => {
      const prefix = `${name}/`;
      const object = this.db.prepare(`SELECT 1 FROM objects WHERE key >= ? AND key < ? LIMIT 1`).get(prefix, `${name}0`);
      const upload = this.db.prepare(`SELECT 1 FROM multipart_uploads WHERE bucket = ? LIMIT 1`).get(name);
      if (object !== undefined || upload !== undefined) return false;
      this.db.prepare(`DELETE FROM buckets WHERE name = ?`).run(name);
      return true;
    }).immediate();
  }

  // ── users (access keys) ───────────────────────────────────────────────────────────────────────────────────────

  addUser(name: string): UserRow {
    if (!USER_NAME.test(name)) {
      throw new ShardpoolError('USAGE_INVALID', `user names are 1 to 64 letters, digits, '.', '_', '@' or '-', not ${JSON.stringify(name)}`);
    }
    const row: UserRow = {
      name,
      accessKeyId: `SP${randomString(18, ACCESS_KEY_ALPHABET)}`,
      secretAccessKey: randomBytes(30).toString('base64').replace(/[+/=]/g, 'x'),
      createdAtMs: Date.now(),
    };
    const result = this.db
      .prepare(
        `INSERT INTO users (name, access_key_id, secret_access_key, created_at_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO NOTHING`,
      )
      .run(row.name, row.accessKeyId, row.secretAccessKey, row.createdAtMs);
    if (result.changes === 0) throw new ShardpoolError('USER_ALREADY_EXISTS', `a user named ${JSON.stringify(name)} already exists`, { user: name });
    return row;
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

  createUpload(upload: Omit<UploadRow, 'uploadId' | 'createdAtMs'>): UploadRow {
    const row: UploadRow = { ...upload, uploadId: randomBytes(16).toString('hex'), createdAtMs: Date.now() };
    this.db
      .prepare(
        `INSERT INTO multipart_uploads (upload_id, bucket, key, content_type, user_metadata, created_at_ms)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(row.uploadId, row.bucket, row.key, row.contentType ?? null, JSON.stringify(row.userMetadata), row.createdAtMs);
    return row;
  }

  getUpload(uploadId: string): UploadRow | undefined {
    const row = this.db.prepare(`${UPLOAD_SELECT} WHERE upload_id = ?`).get(uploadId) as RawUpload | undefined;
    return row && decodeUpload(row);
  }

  /** Uploads in a bucket whose key starts with prefix, ordered by key then creation. */
  listUploads(bucket: string, prefix: string, limit: number): UploadRow[] {
    return (
      this.db
        .prepare(`${UPLOAD_SELECT} WHERE bucket = ? AND substr(key, 1, ?) = ? ORDER BY key, created_at_ms LIMIT ?`)
        .all(bucket, prefix.length, prefix, limit) as RawUpload[]
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
  finishUpload(uploadId: string): string[] | undefined {
    return this.db.transaction(() => {
      if (!this.uploadExists(uploadId)) return undefined;
      const named = (this.db.prepare(`SELECT part_key AS partKey FROM multipart_parts WHERE upload_id = ?`).all(uploadId) as Array<{ partKey: string }>).map(
        (row) => row.partKey,
      );
      // Also any object under the upload's prefix that no row names (left by an older shardpool): nothing may outlive
      // the upload it belongs to.
      const stray = [...this.catalog.listObjects(`${MULTIPART_KEY_PREFIX}${uploadId}/`)].map((object) => object.key);
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
  removeAbandonedParts(): { versionIds: string[]; uploadsRemoved: number; objectsRemoved: number } {
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
        versionIds.push(...(this.finishUpload(uploadId) ?? []));
        // A part row whose upload row is gone (finishUpload saw no upload): drop the rows themselves.
        this.db.prepare(`DELETE FROM multipart_parts WHERE upload_id = ?`).run(uploadId);
      }
      const named = new Set(
        (this.db.prepare(`SELECT part_key AS partKey FROM multipart_parts`).all() as Array<{ partKey: string }>).map((row) => row.partKey),
      );
      const orphans = [...this.catalog.listObjects(MULTIPART_KEY_PREFIX)].map((object) => object.key).filter((key) => !named.has(key));
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
  user_metadata AS userMetadata, created_at_ms AS createdAtMs FROM multipart_uploads`;

type RawUpload = Omit<UploadRow, 'userMetadata' | 'contentType'> & { userMetadata: string; contentType: string | null };

function decodeUpload(row: RawUpload): UploadRow {
  return {
    ...row,
    contentType: row.contentType ?? undefined,
    userMetadata: JSON.parse(row.userMetadata) as Record<string, string>,
  };
}

function randomString(length: number, alphabet: string): string {
  const bytes = randomBytes(length);
  let text = '';
  for (const byte of bytes) text += alphabet[byte % alphabet.length];
  return text;
}
