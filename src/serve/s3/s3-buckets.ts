// Bucket operations and listings: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation and
// ListObjects (V1 and V2, with prefix, delimiter and paging).
import type { ObjectRow } from '../../pool/catalog/catalog.js';
import { etagOf, isoDate, queryCount, requireBucket, sendEmpty, sendXml, type S3Call } from './s3-call.js';
import { S3Error } from './s3-error.js';
import { bucketPrefix, validateBucketName } from './s3-names.js';
import { xmlDocument, type XmlElement } from './xml.js';

const LIST_KEYS_MAX = 1000;
const CATALOG_PAGE_COUNT = 1000;
const OWNER = { ID: 'shardpool', DisplayName: 'shardpool' };

export async function listBuckets(call: S3Call): Promise<void> {
  const buckets = (await call.context.s3.listBuckets()).map((bucket) => ({ Name: bucket.name, CreationDate: isoDate(bucket.createdAtMs) }));
  sendXml(call, 200, xmlDocument('ListAllMyBucketsResult', { Owner: OWNER, Buckets: { Bucket: buckets } }));
}

export async function createBucket(call: S3Call): Promise<void> {
  const name = validateBucketName(call.bucket ?? '');
  if (!(await call.context.s3.createBucket(name))) {
    throw new S3Error('BucketAlreadyOwnedByYou', 409, 'Your previous request to create the named bucket succeeded and you already own it.', {
      BucketName: name,
    });
  }
  sendEmpty(call, 200, { Location: `/${name}` });
}

export async function headBucket(call: S3Call): Promise<void> {
  await requireBucket(call);
  sendEmpty(call, 200, { 'x-amz-bucket-region': call.context.region });
}

export async function deleteBucket(call: S3Call): Promise<void> {
  const bucket = await requireBucket(call);
  if (!(await call.context.s3.deleteBucket(bucket))) {
    throw new S3Error('BucketNotEmpty', 409, 'The bucket you tried to delete is not empty', { BucketName: bucket });
  }
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
  const etags = await Promise.all(page.objects.map((entry) => etagOf(call.context, entry.object)));
  const contents = page.objects.map((entry, index) => ({
    Key: encode(entry.key),
    LastModified: isoDate(entry.object.createdAtMs),
    ETag: etags[index],
    Size: entry.object.sizeBytes,
    StorageClass: 'STANDARD',
    ...(v2 && query.get('fetch-owner') !== 'true' ? {} : { Owner: OWNER }),
  }));
  const common: XmlElement[] = page.commonPrefixes.map((commonPrefix) => ({ Prefix: encode(commonPrefix) }));
  const shared: XmlElement = {
    Name: bucket,
    Prefix: encode(prefix),
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
