// Bucket names and object keys as S3 defines them, and how they map onto pool keys: object KEY in bucket BUCKET is
// the pool object "BUCKET/KEY", so the CLI and the S3 API see the same objects.
import { KEY_LENGTH_MAX_BYTES } from '../../constants.js';
import { S3Error } from './s3-error.js';

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IP_ADDRESS = /^\d+\.\d+\.\d+\.\d+$/;

export function validateBucketName(name: string): string {
  if (!BUCKET_NAME.test(name) || IP_ADDRESS.test(name) || name.includes('..') || name.includes('.-') || name.includes('-.')) {
    throw new S3Error(
      'InvalidBucketName',
      400,
      'Bucket names are 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit',
      { BucketName: name },
    );
  }
  return name;
}

export function poolKeyOf(bucket: string, key: string): string {
  if (key.length === 0) throw new S3Error('InvalidArgument', 400, 'object keys must not be empty');
  const poolKey = `${bucket}/${key}`;
  if (Buffer.byteLength(poolKey) > KEY_LENGTH_MAX_BYTES) {
    throw new S3Error(
      'KeyTooLongError',
      400,
      `bucket name, '/' and key together are at most ${KEY_LENGTH_MAX_BYTES} bytes of UTF-8 in shardpool`,
      { Key: key },
    );
  }
  return poolKey;
}

/** The pool key prefix of every object of a bucket. */
export function bucketPrefix(bucket: string): string {
  return `${bucket}/`;
}

/** The largest part number of a multipart upload (S3's). */
export const PART_NUMBER_MAX = 10_000;

/** Where multipart uploads keep their parts: every hidden pool key under it belongs to an upload's part row. */
export const MULTIPART_KEY_PREFIX = '.shardpool/multipart/';

/**
 * Where one upload of a part keeps its bytes until the upload completes (a reserved pool key, hidden from listings).
 * Each upload of a part gets a key of its own (the `attempt` suffix): two uploads of one part number never share a
 * key, so the part row, committed with its own object, always names exactly the bytes whose ETag it records.
 */
export function partKeyOf(uploadId: string, partNumber: number, attempt: string): string {
  return `${MULTIPART_KEY_PREFIX}${uploadId}/${String(partNumber).padStart(5, '0')}-${attempt}`;
}
