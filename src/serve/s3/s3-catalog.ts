// The S3 layer's view of its catalog tables (pool/catalog: S3Tables): what S3 decides before a row is written —
// user names, access keys, upload ids — and where its hidden part objects live. No SQL here.
import { randomBytes } from 'node:crypto';
import { ShardpoolError } from '../../errors.js';
import type { BucketRow, Catalog, PartRow, S3Tables, UploadRow, UserRow } from '../../pool/catalog/catalog.js';
import { MULTIPART_KEY_PREFIX } from './s3-names.js';

export type { BucketRow, PartRow, UploadRow, UserRow } from '../../pool/catalog/catalog.js';

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
// Access key ids look like AWS's (20 upper-case letters and digits) so every client accepts them.
const ACCESS_KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class S3Catalog {
  private readonly rows: S3Tables;

  constructor(catalog: Catalog) {
    this.rows = catalog.s3;
  }

  createBucket(name: string): boolean {
    return this.rows.createBucket(name);
  }

  getBucket(name: string): BucketRow | undefined {
    return this.rows.getBucket(name);
  }

  listBuckets(): BucketRow[] {
    return this.rows.listBuckets();
  }

  /** Deletes a bucket that holds no object and no upload in progress; false if it is not empty. */
  deleteBucket(name: string): boolean {
    return this.rows.deleteBucket(name);
  }

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
    if (!this.rows.insertUser(row)) throw new ShardpoolError('USER_ALREADY_EXISTS', `a user named ${JSON.stringify(name)} already exists`, { user: name });
    return row;
  }

  listUsers(): UserRow[] {
    return this.rows.listUsers();
  }

  removeUser(name: string): boolean {
    return this.rows.removeUser(name);
  }

  secretOf(accessKeyId: string): string | undefined {
    return this.rows.secretOf(accessKeyId);
  }

  userOf(accessKeyId: string): UserRow | undefined {
    return this.rows.userOf(accessKeyId);
  }

  createUpload(upload: Omit<UploadRow, 'uploadId' | 'createdAtMs'>): UploadRow {
    const row: UploadRow = { ...upload, uploadId: randomBytes(16).toString('hex'), createdAtMs: Date.now() };
    this.rows.insertUpload(row);
    return row;
  }

  getUpload(uploadId: string): UploadRow | undefined {
    return this.rows.getUpload(uploadId);
  }

  /** Uploads in a bucket whose key starts with prefix, ordered by key then creation. */
  listUploads(bucket: string, prefix: string, limit: number): UploadRow[] {
    return this.rows.listUploads(bucket, prefix, limit);
  }

  /** See S3Tables.replacePart: run inside the commit of the part's own object. */
  replacePart(part: Omit<PartRow, 'uploadedAtMs'>): string[] | undefined {
    return this.rows.replacePart(part);
  }

  listParts(uploadId: string, afterPartNumber = 0, limit = 10_000): PartRow[] {
    return this.rows.listParts(uploadId, afterPartNumber, limit);
  }

  /** See S3Tables.finishUpload: the upload, its parts and every hidden object under its prefix, atomically. */
  finishUpload(uploadId: string): string[] | undefined {
    return this.rows.finishUpload(uploadId, `${MULTIPART_KEY_PREFIX}${uploadId}/`);
  }

  /** See S3Tables.removeAbandonedParts (the daemon runs it when it opens the pool). */
  removeAbandonedParts(): { versionIds: string[]; uploadsRemoved: number; objectsRemoved: number } {
    return this.rows.removeAbandonedParts(MULTIPART_KEY_PREFIX);
  }
}

function randomString(length: number, alphabet: string): string {
  const bytes = randomBytes(length);
  let text = '';
  for (const byte of bytes) text += alphabet[byte % alphabet.length];
  return text;
}
