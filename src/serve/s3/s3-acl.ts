// Canned ACLs and the ACL operations (GetBucketAcl, PutBucketAcl, GetObjectAcl, PutObjectAcl), mapped onto what
// shardpool enforces (s3-access.ts): a bucket or an object version is private or public-read.
//   private, bucket-owner-full-control → private: the bucket's owner, its grantees and admins, nobody anonymous.
//     (Objects belong to their bucket's owner, as S3's "bucket owner enforced" ownership has it, so
//     bucket-owner-full-control holds of every object and asks for nothing more.)
//   public-read → anonymous GET, HEAD (and, on a bucket, listing).
// Every other canned ACL, every x-amz-grant-* header and an AccessControlPolicy document would grant what is not
// enforced: they are refused (NotImplemented), never accepted and ignored.
import type { BucketGrant, BucketRow, CannedAcl } from '../../pool/catalog/catalog.js';
import { isShardpoolError } from '../../errors.js';
import { header, metadataOf, noSuchBucket, sendEmpty, sendXml, type S3Call } from './s3-call.js';
import { S3Error } from './s3-error.js';
import { poolKeyOf } from './s3-names.js';
import { xmlDocument, type XmlElement } from './xml.js';

const CANNED_ACLS: ReadonlyMap<string, CannedAcl | undefined> = new Map([
  ['private', 'private'],
  ['bucket-owner-full-control', 'private'],
  ['public-read', 'public-read'],
  ['public-read-write', undefined],
  ['authenticated-read', undefined],
  ['aws-exec-read', undefined],
  ['bucket-owner-read', undefined],
  ['log-delivery-write', undefined],
]);

const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers';
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';

/**
 * The request's x-amz-acl as what it puts in force (undefined: no header). x-amz-grant-* headers are refused: they
 * would grant single accounts rights shardpool gives only by `shardpool user allow`.
 */
export function cannedAclOf(call: S3Call): CannedAcl | undefined {
  for (const name of Object.keys(call.request.headers)) {
    if (name.startsWith('x-amz-grant-')) throw notImplemented(`access control grants (${name}): grant access with shardpool user allow`);
  }
  const value = header(call, 'x-amz-acl');
  if (value === undefined) return undefined;
  const acl = value.trim();
  if (!CANNED_ACLS.has(acl)) throw new S3Error('InvalidArgument', 400, `${JSON.stringify(acl)} is not a canned ACL`, { ArgumentName: 'x-amz-acl', ArgumentValue: acl });
  const inForce = CANNED_ACLS.get(acl);
  if (inForce === undefined) throw notImplemented(`the canned ACL ${acl}: shardpool enforces private, public-read and bucket-owner-full-control`);
  return inForce;
}

export async function getBucketAcl(call: S3Call): Promise<void> {
  const bucket = await bucketRowOf(call);
  const grants = await call.context.s3.listGrants({ bucket: bucket.name });
  sendAcl(call, bucket, bucket.acl, grants);
}

export async function putBucketAcl(call: S3Call): Promise<void> {
  const bucket = await bucketRowOf(call);
  const acl = await requestedAcl(call);
  if (!(await call.context.s3.setBucketAcl(bucket.name, acl))) throw noSuchBucket(bucket.name);
  sendEmpty(call, 200);
}

export async function getObjectAcl(call: S3Call): Promise<void> {
  const bucket = await bucketRowOf(call);
  const object = await currentObject(call, bucket.name);
  const metadata = await metadataOf(call.context, object);
  sendAcl(call, bucket, metadata.acl ?? 'private', []);
}

export async function putObjectAcl(call: S3Call): Promise<void> {
  const bucket = await bucketRowOf(call);
  const acl = await requestedAcl(call);
  const object = await currentObject(call, bucket.name);
  const metadata = await metadataOf(call.context, object);
  // False when the key was overwritten or removed meanwhile: the ACL was for a version that is gone.
  if (!(await call.context.s3.setObjectAcl(object.key, object.versionId, acl, metadata))) throw noSuchKey(call.key ?? '');
  sendEmpty(call, 200, { 'x-amz-version-id': 'null' });
}

/** PutBucketAcl / PutObjectAcl take a canned ACL only; an AccessControlPolicy document is refused. */
async function requestedAcl(call: S3Call): Promise<CannedAcl> {
  const acl = cannedAclOf(call);
  const length = Number(header(call, 'content-length') ?? '0');
  const hasBody = length > 0 || header(call, 'transfer-encoding') !== undefined;
  if (hasBody) throw notImplemented('ACLs given as an AccessControlPolicy document: send a canned ACL in x-amz-acl');
  if (acl === undefined) throw new S3Error('MissingSecurityHeader', 400, 'Your request was missing a required header: x-amz-acl', { MissingHeaderName: 'x-amz-acl' });
  return acl;
}

/** The AccessControlPolicy in force: the owner with full control, the bucket's grantees, AllUsers READ if public. */
function sendAcl(call: S3Call, bucket: BucketRow, acl: CannedAcl, grants: ReadonlyArray<BucketGrant>): void {
  const owner = ownerElement(bucket.owner);
  const grant = (grantee: XmlElement, permission: string): XmlElement => ({ Grantee: grantee, Permission: permission });
  const user = (name: string): XmlElement => ({ '@_xmlns:xsi': XSI, '@_xsi:type': 'CanonicalUser', ...ownerElement(name) });
  const list: XmlElement[] = [grant({ '@_xmlns:xsi': XSI, '@_xsi:type': 'CanonicalUser', ...owner }, 'FULL_CONTROL')];
  for (const entry of grants) {
    if (entry.owner) list.push(grant(user(entry.user), 'FULL_CONTROL'));
    if (entry.read) list.push(grant(user(entry.user), 'READ'));
    if (entry.write) list.push(grant(user(entry.user), 'WRITE'));
  }
  if (acl === 'public-read') list.push(grant({ '@_xmlns:xsi': XSI, '@_xsi:type': 'Group', URI: ALL_USERS }, 'READ'));
  sendXml(call, 200, xmlDocument('AccessControlPolicy', { Owner: owner, AccessControlList: { Grant: list } }));
}

/** An Owner element: a user, or for a bucket from before tenants (owned by no one) the admins who alone reach it. */
export function ownerElement(name: string | undefined): XmlElement {
  const id = name ?? 'shardpool-admins';
  return { ID: id, DisplayName: id };
}

async function bucketRowOf(call: S3Call): Promise<BucketRow> {
  const bucket = call.bucket === undefined ? undefined : await call.context.s3.getBucket(call.bucket);
  if (bucket === undefined) throw noSuchBucket(call.bucket ?? '');
  return bucket;
}

async function currentObject(call: S3Call, bucket: string) {
  const key = call.key ?? '';
  try {
    const object = await call.context.pool.catalog.getObject(poolKeyOf(bucket, key));
    if (object === undefined) throw noSuchKey(key);
    return object;
  } catch (error) {
    if (isShardpoolError(error, 'KEY_INVALID')) throw noSuchKey(key);
    throw error;
  }
}

const notImplemented = (what: string): S3Error => new S3Error('NotImplemented', 501, `shardpool does not implement ${what}`);
const noSuchKey = (key: string): S3Error => new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: key });
