// The SSE-S3 pool keys: POOL/sse-keys.json (format/sse-layout.ts), outside the catalog so that a catalog dump, a
// catalog backup or a PostgreSQL replica never holds what unwraps the data keys. Only the owner may read the file
// (0600; a file others may read is refused, never used). It is created with the first key when an SSE-S3 object is
// first written; `shardpool sse rotate-key` adds a key and makes it current, keeping the old ones, which still unwrap
// what was written with them. The file is read afresh whenever a key is needed (it is small), so a rotation takes
// effect in a running daemon at once.
import * as path from 'node:path';
import { ShardpoolError } from '../../errors.js';
import { readOwnerOnlyFile, writeOwnerOnlyFileDurable } from '../../io/durable-files.js';
import { SSE_KEY_FILE_NAME, decodeKeyFile, encodeKeyFile, newPoolKey, type PoolKey, type PoolKeyFile } from '../../format/sse-layout.js';

export function keyFilePath(poolDirectory: string): string {
  return path.join(poolDirectory, SSE_KEY_FILE_NAME);
}

/** The key file, or undefined when the pool has none yet. */
export async function readKeyFile(poolDirectory: string): Promise<PoolKeyFile | undefined> {
  const filePath = keyFilePath(poolDirectory);
  const bytes = await readOwnerOnlyFile(filePath).catch((error: unknown) => {
    // Most often EACCES: the file belongs to another user than the daemon's (a rotation run as root).
    throw new ShardpoolError('SSE_KEY_FILE_INVALID', `${filePath} cannot be read: ${String(error)} (it must belong to the daemon's user)`, { path: filePath });
  });
  if (bytes === 'missing') return undefined;
  if (bytes === 'exposed') {
    throw new ShardpoolError('SSE_KEY_FILE_EXPOSED', `${filePath} may be read by others than its owner: chmod 600 it (and rotate the key if others could read it)`, { path: filePath });
  }
  return decodeKeyFile(bytes, filePath);
}

/** The key new SSE-S3 objects are wrapped with; the file is created (with one new key) when there is none. */
export async function currentPoolKey(poolDirectory: string): Promise<PoolKey> {
  let file = await readKeyFile(poolDirectory);
  if (file === undefined) {
    const key = newPoolKey(Date.now());
    const created = await writeOwnerOnlyFileDurable(keyFilePath(poolDirectory), encodeKeyFile({ currentKeyId: key.id, keys: [key] }), { exclusive: true });
    // Another process created it first: its key is the one.
    file = created ? { currentKeyId: key.id, keys: [key] } : await readKeyFile(poolDirectory);
  }
  const current = file?.keys.find((key) => key.id === file?.currentKeyId);
  if (current === undefined) throw new Error('a decoded key file names its current key'); // unreachable: decodeKeyFile checks it
  return current;
}

/** The pool key `keyId`; SSE_KEY_UNKNOWN when the key file does not hold it (or there is none). */
export async function poolKeyById(poolDirectory: string, keyId: string): Promise<PoolKey> {
  const found = (await readKeyFile(poolDirectory))?.keys.find((key) => key.id === keyId);
  if (found === undefined) {
    throw new ShardpoolError(
      'SSE_KEY_UNKNOWN',
      `the pool key ${keyId} that wraps this object's data key is not in ${keyFilePath(poolDirectory)}: copy the key file this pool's SSE-S3 objects were written with`,
      { keyId },
    );
  }
  return found;
}

/**
 * Adds a new key and makes it the current one (SSE-S3 objects written from now on use it); the old keys stay, to
 * unwrap the objects written with them. Returns the new key's id and how many keys the file holds.
 */
export async function rotatePoolKey(poolDirectory: string): Promise<{ keyId: string; keys: number }> {
  const file = await readKeyFile(poolDirectory);
  const key = newPoolKey(Date.now());
  const keys = [...(file?.keys ?? []), key];
  const written = await writeOwnerOnlyFileDurable(keyFilePath(poolDirectory), encodeKeyFile({ currentKeyId: key.id, keys }), { exclusive: file === undefined });
  if (!written) return rotatePoolKey(poolDirectory); // created meanwhile by the daemon: rotate that one
  return { keyId: key.id, keys: keys.length };
}
