// Keys are opaque data: they are stored in the catalog and in fragment headers, never used to build a path, so
// `../../etc/passwd` is just a key like any other. The allowed set keeps keys printable and portable (they appear
// in listings, logs and, later, S3 URLs): 1 to 1024 bytes of well-formed UTF-8 without control characters.
import { KEY_LENGTH_MAX_BYTES } from '../constants.js';
import { ShardpoolError } from '../errors.js';

// C0 controls (NUL included), DEL and C1 controls.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Keys under this prefix belong to shardpool itself (the parts of S3 multipart uploads in progress): users cannot
 * put them, and listings leave them out. S3 bucket names never start with a dot, so no S3 key can collide.
 */
export const RESERVED_KEY_PREFIX = '.shardpool/';

export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_KEY_PREFIX);
}

/** A key a user may put: valid, and outside the reserved prefix. */
export function validateUserKey(key: string): string {
  validateKey(key);
  if (isReservedKey(key)) {
    throw new ShardpoolError('KEY_INVALID', `invalid key ${JSON.stringify(key.slice(0, 80))}: keys starting with ` +
      `${RESERVED_KEY_PREFIX} are reserved for shardpool's own use`, { keyPrefix: key.slice(0, 80) });
  }
  return key;
}

export function validateKey(key: string): string {
  const invalid = (why: string) =>
    new ShardpoolError('KEY_INVALID', `invalid key ${JSON.stringify(key.slice(0, 80))}: ${why}`, {
      keyPrefix: key.slice(0, 80),
    });
  if (key.length === 0) throw invalid('keys must not be empty');
  if (!key.isWellFormed()) throw invalid('keys must be well-formed UTF-8 (no lone surrogates)');
  if (CONTROL_CHARACTER.test(key)) throw invalid('keys must not contain control characters such as NUL or newline');
  const lengthBytes = Buffer.byteLength(key, 'utf8');
  if (lengthBytes > KEY_LENGTH_MAX_BYTES) {
    throw invalid(`keys are at most ${KEY_LENGTH_MAX_BYTES} bytes of UTF-8; this one is ${lengthBytes}`);
  }
  return key;
}

/** Prefixes for `ls` follow the same rules, except that the empty prefix lists everything. */
export function validatePrefix(prefix: string): string {
  return prefix === '' ? prefix : validateKey(prefix);
}
