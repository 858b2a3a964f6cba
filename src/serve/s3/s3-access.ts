// Who may do what: every S3 request is authorised here, once it is authenticated and before it is handled.
//
// A bucket belongs to the user that created it (by name). Other users reach it only through a grant (`shardpool user
// allow NAME --bucket B --read|--write|--owner`): read is GET/HEAD/list, write is put/copy-into/delete and every
// multipart call, owner is what the owner alone may do besides (its ACLs, deleting it). Admins (`user add --admin`)
// may do everything with every bucket, including those owned by no one (buckets from before tenants). Anonymous
// requests may only read, and only what a canned ACL of public-read opens: a whole bucket (list, GET, HEAD of every
// object in it) or one object version. Everything else is 403 AccessDenied; a bucket that does not exist is 404 to
// a user (as S3 answers) and 403 to an anonymous request, which learns nothing.
import type { BucketGrant, BucketRow, CannedAcl, ObjectMetadata, UserRow } from '../../pool/catalog/catalog.js';
import type { S3Call, S3Context } from './s3-call.js';
import { accessDenied, S3Error } from './s3-error.js';
import { poolKeyOf } from './s3-names.js';

export type Principal = { readonly kind: 'anonymous' } | { readonly kind: 'user'; readonly user: UserRow };

export const ANONYMOUS: Principal = { kind: 'anonymous' };

/** What an operation needs of its bucket. */
type Need = 'read' | 'write' | 'owner';

/** The decision for one request, kept on the call for the checks a handler makes later. */
export interface Access {
  readonly principal: Principal;
  /**
   * True when only the object's own public-read ACL let the request through (anonymous GET/HEAD of a private
   * bucket's object): the version actually read must still be public-read (requireVersionReadable).
   */
  readonly throughObjectAcl: boolean;
}

const NEEDS: Readonly<Record<string, Need>> = {
  HeadBucket: 'read',
  GetBucketLocation: 'read',
  ListObjects: 'read',
  ListObjectsV2: 'read',
  ListMultipartUploads: 'read',
  GetObject: 'read',
  HeadObject: 'read',
  PutObject: 'write',
  CopyObject: 'write',
  DeleteObject: 'write',
  CreateMultipartUpload: 'write',
  UploadPart: 'write',
  CompleteMultipartUpload: 'write',
  AbortMultipartUpload: 'write',
  ListParts: 'write',
  DeleteBucket: 'owner',
  GetBucketAcl: 'owner',
  PutBucketAcl: 'owner',
  GetObjectAcl: 'owner',
  PutObjectAcl: 'owner',
};

/** Operations any user may attempt (what they see or change is decided by the handler): not anonymous ones. */
const USERS_ONLY = new Set(['ListBuckets', 'CreateBucket', 'DeleteObjects', 'NotImplemented']);

/** The hook: throws AccessDenied (or NoSuchBucket to a user) unless the principal may run this operation here. */
export async function authorize(
  context: S3Context,
  principal: Principal,
  request: { operation: string; bucket: string | undefined; key: string | undefined },
): Promise<Access> {
  const need = NEEDS[request.operation];
  if (need === undefined) {
    if (principal.kind === 'anonymous' || !USERS_ONLY.has(request.operation)) throw accessDenied();
    return { principal, throughObjectAcl: false };
  }
  const bucket = request.bucket ?? '';
  return readOrWriteAccess(context, principal, { bucket, key: request.key, need });
}

/** CopyObject's source: read on its bucket, or an object the caller may read through its own ACL. */
export async function authorizeCopySource(call: S3Call, source: { bucket: string; key: string }): Promise<Access> {
  return readOrWriteAccess(call.context, call.access.principal, { ...source, need: 'read' });
}

/** For a read allowed only by the object's ACL: the version read (looked up after the check) must still allow it. */
export function requireVersionReadable(access: Access, metadata: ObjectMetadata): void {
  if (access.throughObjectAcl && metadata.acl !== 'public-read') throw accessDenied();
}

/** DeleteObjects: each key is deleted only where the caller may write (refused keys are listed as AccessDenied). */
export async function mayWriteKey(call: S3Call, bucket: string): Promise<boolean> {
  try {
    await readOrWriteAccess(call.context, call.access.principal, { bucket, key: undefined, need: 'write' });
    return true;
  } catch (error) {
    if (error instanceof S3Error && error.code === 'AccessDenied') return false;
    throw error;
  }
}

/** ListBuckets: an admin sees every bucket, a user those it owns or holds a grant on. */
export async function visibleBuckets(context: S3Context, principal: Principal): Promise<BucketRow[]> {
  if (principal.kind === 'anonymous') throw accessDenied();
  const all = await context.s3.listBuckets();
  if (principal.user.admin) return all;
  const granted = new Set((await context.s3.listGrants({ user: principal.user.name })).map((grant) => grant.bucket));
  return all.filter((bucket) => bucket.owner === principal.user.name || granted.has(bucket.name));
}

/** What a version written into the bucket records of it in its manifest, for import (ObjectMetadata.bucketAccess). */
export async function bucketAccessOf(context: S3Context, bucket: string): Promise<ObjectMetadata['bucketAccess']> {
  const row = await context.s3.getBucket(bucket);
  return row === undefined ? undefined : { owner: row.owner, acl: row.acl };
}

/** The user a new bucket or object is owned by (a bucket's creator; objects follow their bucket). */
export function ownerNameOf(principal: Principal): string {
  if (principal.kind === 'anonymous') throw accessDenied();
  return principal.user.name;
}

/** Whether this user owns the bucket (created it), which answers a CreateBucket of an existing name. */
export function owns(principal: Principal, bucket: BucketRow): boolean {
  return principal.kind === 'user' && bucket.owner === principal.user.name;
}

/**
 * The decision itself, pure: may this principal do `need` with this bucket, given its grant (if any)? Object ACLs
 * are not in it (see readOrWriteAccess).
 */
export function permits(principal: Principal, bucket: BucketRow, grant: BucketGrant | undefined, need: Need): boolean {
  if (principal.kind === 'anonymous') return need === 'read' && bucket.acl === 'public-read';
  if (principal.user.admin || bucket.owner === principal.user.name) return true;
  if (grant?.[need] === true) return true;
  // public-read opens a bucket to reading by everyone, users included.
  return need === 'read' && bucket.acl === 'public-read';
}

async function readOrWriteAccess(context: S3Context, principal: Principal, request: { bucket: string; key: string | undefined; need: Need }): Promise<Access> {
  const bucket = await context.s3.getBucket(request.bucket);
  if (bucket === undefined) {
    if (principal.kind === 'anonymous') throw accessDenied();
    throw new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist', { BucketName: request.bucket });
  }
  const grant = principal.kind === 'user' && !principal.user.admin ? (await context.s3.listGrants({ bucket: bucket.name, user: principal.user.name }))[0] : undefined;
  if (permits(principal, bucket, grant, request.need)) return { principal, throughObjectAcl: false };
  // An object of its own public-read: readable by everyone (a missing or private one is 403, as S3 answers a caller
  // that may not list the bucket).
  if (request.need === 'read' && request.key !== undefined && (await objectAclOf(context, request.bucket, request.key)) === 'public-read') {
    return { principal, throughObjectAcl: true };
  }
  throw accessDenied();
}

async function objectAclOf(context: S3Context, bucket: string, key: string): Promise<CannedAcl | undefined> {
  const object = await context.pool.catalog.getObject(poolKeyOf(bucket, key));
  if (object === undefined) return undefined;
  return (await context.pool.catalog.objectMetadata(object.versionId))?.acl ?? 'private';
}
