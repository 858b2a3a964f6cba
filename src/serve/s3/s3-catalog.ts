// The S3 layer's own tables in the pool catalog (schema in pool/catalog-schema.ts): buckets, access keys and multipart
// uploads. Objects themselves are pool objects keyed "bucket/key"; their ETag and metadata live with the version.
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Catalog } from '../../pool/catalog.js';
import { ShardpoolError } from '../../errors.js';

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

  constructor(catalog: Catalog) {
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

  putPart(part: Omit<PartRow, 'uploadedAtMs'>): void {
    this.db
      .prepare(
        `INSERT INTO multipart_parts (upload_id, part_number, part_key, etag, size_bytes, uploaded_at_ms)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (upload_id, part_number) DO UPDATE SET
           part_key = excluded.part_key, etag = excluded.etag, size_bytes = excluded.size_bytes,
           uploaded_at_ms = excluded.uploaded_at_ms`,
      )
      .run(part.uploadId, part.partNumber, part.partKey, part.etag, part.sizeBytes, Date.now());
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

  /** Forgets an upload and its part rows (the caller removes the parts' pool objects). */
  deleteUpload(uploadId: string): void {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM multipart_parts WHERE upload_id = ?`).run(uploadId);
      this.db.prepare(`DELETE FROM multipart_uploads WHERE upload_id = ?`).run(uploadId);
    }).immediate();
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
