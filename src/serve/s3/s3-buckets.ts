// Bucket operations and listings: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation and
// ListObjects (V1 and V2, with prefix, delimiter and paging).
import type { ObjectRow } from '../../pool/catalog/catalog.js';
import type { ObjectMetadata } from '../../pool/catalog/catalog.js';
import { plaintextSizeOf } from './s3-sse.js';
import { metadataOf, isoDate, queryCount, requireBucket, sendEmpty, sendXml, type S3Call } from './s3-call.js';
import { ownerNameOf, owns, visibleBuckets } from './s3-access.js';
import { cannedAclOf, ownerElement } from './s3-acl.js';
import { S3Error } from './s3-error.js';
import { bucketPrefix, validateBucketName } from './s3-names.js';
import { xmlDocument, type XmlElement } from './xml.js';

const LIST_KEYS_MAX = 1000;
const BUCKETS_MAX = 10_000;
const CATALOG_PAGE_COUNT = 1000;

/**
 * ListBuckets, paged as S3 pages it: max-buckets (1 to 10,000; all when absent), continuation-token (opaque: the
 * last name of the previous page), prefix, and bucket-region (every bucket is in the daemon's region). The names are
 * read whole and paged here: a pool holds few buckets (S3's own quota is 10,000).
 */
export async function listBuckets(call: S3Call): Promise<void> {
  const prefix = call.query.get('prefix') ?? '';
  const maxBuckets = call.query.has('max-buckets') ? queryCount(call, 'max-buckets', { fallback: BUCKETS_MAX, max: Number.MAX_SAFE_INTEGER }) : undefined;
  if (maxBuckets !== undefined && (maxBuckets < 1 || maxBuckets > BUCKETS_MAX)) {
    throw new S3Error('InvalidArgument', 400, `max-buckets must be an integer from 1 to ${BUCKETS_MAX}`, { ArgumentName: 'max-buckets', ArgumentValue: String(maxBuckets) });
  }
  const token = call.query.get('continuation-token');
  const after = token === null ? undefined : decodeToken(token);
  const region = call.query.get('bucket-region');
  // Only the buckets this key may reach (s3-access.ts): another tenant's are not named at all.
  const visible = await visibleBuckets(call.context, call.access.principal);
  const all = region !== null && region !== call.context.region ? [] : visible;
  const matching = all.filter((bucket) => bucket.name.startsWith(prefix) && (after === undefined || bucket.name > after));
  const shown = maxBuckets === undefined ? matching : matching.slice(0, maxBuckets);
  const truncated = shown.length < matching.length;
  sendXml(
    call,
    200,
    xmlDocument('ListAllMyBucketsResult', {
      Owner: ownerElement(ownerNameOf(call.access.principal)),
      Buckets: { Bucket: shown.map((bucket) => ({ Name: bucket.name, CreationDate: isoDate(bucket.createdAtMs), BucketRegion: call.context.region })) },
      ContinuationToken: truncated ? encodeToken((shown[shown.length - 1] as { name: string }).name) : undefined,
      Prefix: call.query.has('prefix') ? prefix : undefined,
    }),
  );
}

export async function createBucket(call: S3Call): Promise<void> {
  const name = validateBucketName(call.bucket ?? '');
  const acl = cannedAclOf(call);
  const owner = ownerNameOf(call.access.principal);
  if (!(await call.context.s3.createBucket(name, { owner, acl: acl ?? 'private' }))) {
    const existing = await call.context.s3.getBucket(name);
    if (existing === undefined || !owns(call.access.principal, existing)) {
      throw new S3Error('BucketAlreadyExists', 409, 'The requested bucket name is not available. Select a different name and try again.', { BucketName: name });
    }
    // us-east-1 answers 200 to a bucket its caller already owns (and applies an ACL sent with it); other regions 409.
    if (call.context.region !== 'us-east-1') {
      throw new S3Error('BucketAlreadyOwnedByYou', 409, 'Your previous request to create the named bucket succeeded and you already own it.', {
        BucketName: name,
      });
    }
    if (acl !== undefined) await call.context.s3.setBucketAcl(name, acl);
  }
  sendEmpty(call, 200, { Location: `/${name}` });
}

export async function headBucket(call: S3Call): Promise<void> {
  await requireBucket(call);
  sendEmpty(call, 200, { 'x-amz-bucket-region': call.context.region });
}

export async function deleteBucket(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  // As S3 does, unfinished multipart uploads do not keep a bucket: they go with it, and their parts' fragments are
  // freed (a crash before that leaves them queued as garbage, collected by the next write-open).
  await call.context.gate.shared(async () => {
    const queued = await call.context.s3.deleteBucket(bucket);
    if (queued === undefined) throw new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty', { BucketName: bucket });
    for (const versionId of queued) await call.context.pool.collectVersion(versionId);
  });
  sendEmpty(call, 204);
}

export async function getBucketLocation(call: S3Call): Promise<void> {
  await requireBucket(call);
  // us-east-1 is spelled as an empty LocationConstraint, as S3 does.
  const region = call.context.region === 'us-east-1' ? '' : call.context.region;
  sendXml(call, 200, xmlDocument('LocationConstraint', { '#text': region }));
}

/** ListObjectsV2 (list-type=2) and the original ListObjects, which differ only in how paging is spelled. */
export async function listObjects(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  const query = call.query;
  const v2 = query.get('list-type') === '2';
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const maxKeys = queryCount(call, 'max-keys', { fallback: LIST_KEYS_MAX, max: LIST_KEYS_MAX });
  const urlEncode = query.get('encoding-type') === 'url';
  if (query.has('encoding-type') && !urlEncode) throw new S3Error('InvalidArgument', 400, 'encoding-type must be url');
  const continuationToken = query.get('continuation-token') ?? undefined;
  const startAfter = v2 ? (continuationToken !== undefined ? decodeToken(continuationToken) : (query.get('start-after') ?? '')) : (query.get('marker') ?? '');
  const page = await listPage(call, { bucket, prefix, delimiter, maxKeys, startAfter });
  const encode = (text: string) => (urlEncode ? encodeURIComponent(text).replace(/%2F/g, '/') : text);
  const described = await Promise.all(page.objects.map((entry) => metadataOf(call.context, entry.object)));
  // Objects belong to their bucket's owner (s3-acl.ts).
  const owner = ownerElement((await call.context.s3.getBucket(bucket))?.owner);
  const contents = page.objects.map((entry, index) => ({
    Key: encode(entry.key),
    LastModified: isoDate(entry.object.createdAtMs),
    ETag: (described[index] as ObjectMetadata).etag,
    // An encrypted object's size is its plaintext's, as S3 lists it.
    Size: plaintextSizeOf(described[index], entry.object.sizeBytes, entry.key),
    StorageClass: 'STANDARD',
    ...(v2 && query.get('fetch-owner') !== 'true' ? {} : { Owner: owner }),
  }));
  const common: XmlElement[] = page.commonPrefixes.map((commonPrefix) => ({ Prefix: encode(commonPrefix) }));
  const shared: XmlElement = {
    Name: bucket,
    // ListObjects (V1) returns its own Prefix as given, encoding-type or not (clients do not decode it there); V2
    // encodes it with the keys.
    Prefix: v2 ? encode(prefix) : prefix,
    Delimiter: delimiter === '' ? undefined : encode(delimiter),
    MaxKeys: maxKeys,
    EncodingType: urlEncode ? 'url' : undefined,
    IsTruncated: page.truncated,
  };
  const document: XmlElement = v2
    ? {
        ...shared,
        KeyCount: contents.length + common.length,
        ContinuationToken: continuationToken,
        NextContinuationToken: page.truncated ? encodeToken(page.lastReturned) : undefined,
        StartAfter: query.has('start-after') ? encode(query.get('start-after') ?? '') : undefined,
        Contents: contents,
        CommonPrefixes: common,
      }
    : {
        ...shared,
        Marker: encode(query.get('marker') ?? ''),
        NextMarker: page.truncated && delimiter !== '' ? encode(page.lastReturned) : undefined,
        Contents: contents,
        CommonPrefixes: common,
      };
  sendXml(call, 200, xmlDocument('ListBucketResult', document));
}

interface ListedPage {
  readonly objects: Array<{ key: string; object: ObjectRow }>;
  readonly commonPrefixes: string[];
  readonly truncated: boolean;
  /** The last key or common prefix returned: where the next page starts after. */
  readonly lastReturned: string;
}

/**
 * Walks the bucket's keys in order after `startAfter`, folding keys that contain the delimiter after the prefix into
 * common prefixes. A marker that is itself a common prefix skips every key under it.
 */
async function listPage(
  call: S3Call,
  options: { bucket: string; prefix: string; delimiter: string; maxKeys: number; startAfter: string },
): Promise<ListedPage> {
  const bucketKeys = bucketPrefix(options.bucket);
  const objects: ListedPage['objects'] = [];
  const commonPrefixes: string[] = [];
  let lastReturned = '';
  let truncated = false;
  const from = bucketKeys + options.prefix;
  const startAfter = bucketKeys + options.startAfter;
  const skipUnder = options.delimiter !== '' && options.startAfter.endsWith(options.delimiter) ? startAfter : undefined;
  if (options.maxKeys === 0) return { objects, commonPrefixes, truncated: false, lastReturned };
  const catalog = call.context.pool.catalog;
  // The first page starts at the prefix (inclusive) or after the marker, whichever is further on.
  let rows = options.startAfter !== '' && startAfter >= from ? await catalog.objectsAfter(startAfter, CATALOG_PAGE_COUNT) : await catalog.objectsFrom(from, CATALOG_PAGE_COUNT);
  walk: while (rows.length > 0) {
    let cursor = (rows[rows.length - 1] as ObjectRow).key;
    for (const row of rows) {
      // Keys with the prefix are contiguous in key order: the first one without it ends the listing.
      if (!row.key.startsWith(from)) break walk;
      if (skipUnder !== undefined && row.key.startsWith(skipUnder)) continue;
      const key = row.key.slice(bucketKeys.length);
      let entry: string | undefined;
      if (options.delimiter !== '') {
        const at = key.indexOf(options.delimiter, options.prefix.length);
        if (at >= 0) entry = key.slice(0, at + options.delimiter.length);
      }
      if (entry !== undefined && entry === commonPrefixes[commonPrefixes.length - 1]) continue;
      if (objects.length + commonPrefixes.length === options.maxKeys) {
        truncated = true;
        break walk;
      }
      if (entry !== undefined) {
        commonPrefixes.push(entry);
        lastReturned = entry;
        // Everything under this common prefix is folded into it: continue the walk past it.
        cursor = bucketKeys + entry + '\u{10FFFF}';
        break;
      }
      objects.push({ key, object: row });
      lastReturned = key;
    }
    rows = await catalog.objectsAfter(cursor, CATALOG_PAGE_COUNT);
  }
  return { objects, commonPrefixes, truncated, lastReturned };
}

function encodeToken(lastKey: string): string {
  return Buffer.from(lastKey, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  const key = Buffer.from(token, 'base64url').toString('utf8');
  if (encodeToken(key) !== token) throw new S3Error('InvalidArgument', 400, 'The continuation token provided is incorrect');
  return key;
}
