// The S3 layer's view of its catalog tables (pool/catalog: S3Tables): what S3 decides before a row is written —
// user names, access keys, upload ids — and where its hidden part objects live. No SQL here.
import { randomBytes } from 'node:crypto';
import { ShardpoolError } from '../../errors.js';
import type { BucketGrant, BucketRow, CannedAcl, Catalog, CatalogTransaction, ObjectMetadata, PartRow, S3Tables, UploadRow, UserRow } from '../../pool/catalog/catalog.js';
import { MULTIPART_KEY_PREFIX } from './s3-names.js';

export type { BucketGrant, BucketRow, PartRow, UploadRow, UserRow } from '../../pool/catalog/catalog.js';

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
// Access key ids look like AWS's (20 upper-case letters and digits) so every client accepts them.
const ACCESS_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class S3Catalog {
  private constructor(private readonly rows: S3Tables) {}

  static of(catalog: Catalog): S3Catalog {
    return new S3Catalog(catalog.s3);
  }

  /** The same, inside a transaction (a put's inCommit): every call joins it. */
  static within(tx: CatalogTransaction): S3Catalog {
    return new S3Catalog(tx.s3);
  }

  /** False when a bucket of that name exists (its owner and ACL are left as they are). */
  async createBucket(name: string, access: { owner: string | undefined; acl: CannedAcl }): Promise<boolean> {
    return this.rows.createBucket(name, access);
  }

  async setBucketAcl(name: string, acl: CannedAcl): Promise<boolean> {
    return this.rows.setBucketAcl(name, acl);
  }

  /** See S3Tables.setObjectAcl. */
  async setObjectAcl(key: string, versionId: string, acl: CannedAcl, metadata: ObjectMetadata): Promise<boolean> {
    return this.rows.setObjectAcl(key, versionId, acl, metadata);
  }

  async listGrants(filter: { bucket?: string; user?: string } = {}): Promise<BucketGrant[]> {
    return this.rows.listGrants(filter);
  }

  /**
   * `shardpool user allow` / `deny`: adds (allow) or takes away (deny) these permissions of the user on the bucket.
   * The user must exist; the bucket too. Returns the grant now in force (all false: none).
   */
  async changeGrant(change: { user: string; bucket: string; allow: boolean; read: boolean; write: boolean; owner: boolean }): Promise<BucketGrant> {
    await this.requireUser(change.user);
    const current = (await this.rows.listGrants({ bucket: change.bucket, user: change.user }))[0] ?? { bucket: change.bucket, user: change.user, read: false, write: false, owner: false };
    const apply = (had: boolean, named: boolean): boolean => (change.allow ? had || named : had && !named);
    const grant: BucketGrant = { ...current, read: apply(current.read, change.read), write: apply(current.write, change.write), owner: apply(current.owner, change.owner) };
    if (!(await this.rows.putGrant(grant))) {
      throw new ShardpoolError('BUCKET_NOT_FOUND', `the pool has no bucket named ${JSON.stringify(change.bucket)}`, { bucket: change.bucket });
    }
    return grant;
  }

  async setAdmin(name: string, admin: boolean): Promise<void> {
    if (!(await this.rows.setAdmin(name, admin))) throw userNotFound(name);
  }

  async getBucket(name: string): Promise<BucketRow | undefined> {
    return this.rows.getBucket(name);
  }

  async listBuckets(): Promise<BucketRow[]> {
    return this.rows.listBuckets();
  }

  /** See S3Tables.deleteBucket: the versions its uploads' parts queued as garbage, or undefined if it holds objects. */
  async deleteBucket(name: string): Promise<string[] | undefined> {
    return this.rows.deleteBucket(name, MULTIPART_KEY_PREFIX);
  }

  async addUser(name: string, options: { admin: boolean } = { admin: false }): Promise<UserRow> {
    if (!USER_NAME.test(name)) {
      throw new ShardpoolError('USAGE_INVALID', `user names are 1 to 64 letters, digits, '.', '_', '@' or '-', not ${JSON.stringify(name)}`);
    }
    const row: UserRow = {
      name,
      accessKeyId: `SP${randomString(18, ACCESS_KEY_ALPHABET)}`,
      secretAccessKey: randomBytes(30).toString('base64').replace(/[+/=]/g, 'x'),
      createdAtMs: Date.now(),
      admin: options.admin,
    };
    if (!(await this.rows.insertUser(row))) throw new ShardpoolError('USER_ALREADY_EXISTS', `a user named ${JSON.stringify(name)} already exists`, { user: name });
    return row;
  }

  async listUsers(): Promise<UserRow[]> {
    return this.rows.listUsers();
  }

  /** See S3Tables.removeUser: its grants go, the buckets it owns stay its (by name). */
  async removeUser(name: string): Promise<boolean> {
    return this.rows.removeUser(name);
  }

  private async requireUser(name: string): Promise<void> {
    if (!(await this.rows.listUsers()).some((user) => user.name === name)) throw userNotFound(name);
  }

  async secretOf(accessKeyId: string): Promise<string | undefined> {
    return this.rows.secretOf(accessKeyId);
  }

  async userOf(accessKeyId: string): Promise<UserRow | undefined> {
    return this.rows.userOf(accessKeyId);
  }

  async createUpload(upload: Omit<UploadRow, 'uploadId' | 'createdAtMs'>): Promise<UploadRow> {
    const row: UploadRow = { ...upload, uploadId: randomBytes(16).toString('hex'), createdAtMs: Date.now() };
    await this.rows.insertUpload(row);
    return row;
  }

  async getUpload(uploadId: string): Promise<UploadRow | undefined> {
    return this.rows.getUpload(uploadId);
  }

  /** Uploads in a bucket whose key starts with prefix, ordered by key then creation. */
  async listUploads(bucket: string, prefix: string, limit: number): Promise<UploadRow[]> {
    return this.rows.listUploads(bucket, prefix, limit);
  }

  /** See S3Tables.replacePart: run inside the commit of the part's own object. */
  async replacePart(part: Omit<PartRow, 'uploadedAtMs'>): Promise<string[] | undefined> {
    return this.rows.replacePart(part);
  }

  async listParts(uploadId: string, afterPartNumber = 0, limit = 10_000): Promise<PartRow[]> {
    return this.rows.listParts(uploadId, afterPartNumber, limit);
  }

  /** See S3Tables.finishUpload: the upload, its parts and every hidden object under its prefix, atomically. */
  async finishUpload(uploadId: string): Promise<string[] | undefined> {
    return this.rows.finishUpload(uploadId, `${MULTIPART_KEY_PREFIX}${uploadId}/`);
  }

  /** See S3Tables.removeAbandonedParts (the daemon runs it when it opens the pool). */
  async removeAbandonedParts(): Promise<{ versionIds: string[]; uploadsRemoved: number; objectsRemoved: number }> {
    return this.rows.removeAbandonedParts(MULTIPART_KEY_PREFIX);
  }
}

export function userNotFound(name: string): ShardpoolError {
  return new ShardpoolError('USER_NOT_FOUND', `no user named ${JSON.stringify(name)} (see shardpool user list)`, { user: name });
}

function randomString(length: number, alphabet: string): string {
  const bytes = randomBytes(length);
  let text = '';
  for (const byte of bytes) text += alphabet[byte % alphabet.length];
  return text;
}
