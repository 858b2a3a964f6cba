// Filesystem operations with the durability rules shardpool relies on, for directory disks and the pool directory.
// A file is durable only after: data written to a temp file in the same directory → fsync(file) → rename over the
// final name → fsync(directory). Without the last step a power cut can forget the rename itself.
import { randomBytes } from 'node:crypto';
import { createReadStream, constants as fsConstants, watch } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';

export const TEMP_FILE_MARKER = '.tmp-';

/** Writes `data` to `filePath` atomically and durably (temp → fsync → rename → fsync dir). */
export async function writeFileDurable(filePath: string, data: Uint8Array | ReadonlyArray<Uint8Array>): Promise<void> {
  await writeFileSynced(filePath, data);
  await fsyncDirectory(path.dirname(filePath));
}

/**
 * Like writeFileDurable but leaves the directory fsync to the caller, so that many files written into one directory
 * share a single directory fsync (see DirectoryDisk.flush). The file's content is synced before its rename.
 */
export async function writeFileSynced(filePath: string, data: Uint8Array | ReadonlyArray<Uint8Array>): Promise<void> {
  const tempPath = `${filePath}${TEMP_FILE_MARKER}${randomBytes(6).toString('hex')}`;
  const handle = await fs.open(tempPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644);
  try {
    const parts = isBufferList(data) ? data : [data];
    await handle.writev(parts.map((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength)));
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await fs.rename(tempPath, filePath);
  } catch (error) {
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
}

export async function fsyncDirectory(directoryPath: string): Promise<void> {
  const handle = await fs.open(directoryPath, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The file's bytes, or undefined when it does not exist. Other errors propagate. */
export async function readFileIfExists(filePath: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(filePath);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** The first `maxBytes` of a file and its size (for reading a fragment header without the data). */
export async function readFileHead(filePath: string, maxBytes: number): Promise<{ bytes: Buffer; sizeBytes: number }> {
  const handle = await fs.open(filePath, 'r');
  try {
    const sizeBytes = (await handle.stat()).size;
    const bytes = Buffer.alloc(Math.min(maxBytes, sizeBytes));
    const { bytesRead } = await handle.read(bytes, 0, bytes.length, 0);
    return { bytes: bytes.subarray(0, bytesRead), sizeBytes };
  } finally {
    await handle.close();
  }
}

/** Removes a file; a file that is already gone is not an error (deletes are idempotent). */
export async function removeFileIfExists(filePath: string): Promise<boolean> {
  try {
    await fs.unlink(filePath);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

export async function removeDirectoryIfEmpty(directoryPath: string): Promise<void> {
  try {
    await fs.rmdir(directoryPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
  }
}

/**
 * Creates a directory (and missing parents). Returns the topmost directory it created, or undefined when it already
 * existed: the caller must fsync that one's parent for the new entry to survive a power cut.
 */
export async function ensureDirectory(directoryPath: string): Promise<string | undefined> {
  return fs.mkdir(directoryPath, { recursive: true });
}

/** Names in a directory, or [] when it does not exist. */
export async function listDirectory(directoryPath: string): Promise<string[]> {
  try {
    return await fs.readdir(directoryPath);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

export type PathKind = 'missing' | 'directory' | 'file' | 'block-device' | 'other';

export async function pathKind(targetPath: string): Promise<PathKind> {
  try {
    const stats = await fs.stat(targetPath);
    if (stats.isDirectory()) return 'directory';
    if (stats.isFile()) return 'file';
    if (stats.isBlockDevice()) return 'block-device';
    return 'other';
  } catch (error) {
    if (isNotFound(error)) return 'missing';
    throw error;
  }
}

export async function fileSizeBytes(filePath: string): Promise<number> {
  return (await fs.stat(filePath)).size;
}

/** The id of the filesystem (device) a path lives on: two paths with the same id fail together. */
export async function filesystemId(targetPath: string): Promise<number> {
  return (await fs.stat(targetPath)).dev;
}

export async function realPath(targetPath: string): Promise<string> {
  return fs.realpath(targetPath);
}

export interface FilesystemSpace {
  readonly capacityBytes: number;
  /** Bytes an unprivileged writer may still use (f_bavail), which is what a fragment write can count on. */
  readonly availableBytes: number;
}

export async function filesystemSpace(directoryPath: string): Promise<FilesystemSpace> {
  const stats = await fs.statfs(directoryPath);
  return { capacityBytes: stats.blocks * stats.bsize, availableBytes: stats.bavail * stats.bsize };
}

/** Opens a file for reading as a stream (put's input). */
export function openInputStream(filePath: string): Readable {
  return createReadStream(filePath, { highWaterMark: 1024 * 1024 });
}

/**
 * Writes a stream of chunks to `filePath` so that the file appears only complete (temp → fsync → rename → fsync
 * dir): a get that fails half-way, or is killed, never leaves a truncated file under the final name. `mode` (0644 by
 * default) applies to the new file, before any byte is in it.
 */
export async function writeStreamDurable(
  filePath: string,
  chunks: AsyncIterable<Uint8Array>,
  options: { mode?: number } = {},
): Promise<number> {
  const tempPath = `${filePath}${TEMP_FILE_MARKER}${randomBytes(6).toString('hex')}`;
  const handle = await fs.open(tempPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, options.mode ?? 0o644);
  let writtenBytes = 0;
  try {
    for await (const chunk of chunks) {
      // A regular file write may in principle be short; loop until the chunk is all written.
      for (let offset = 0; offset < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
        offset += bytesWritten;
      }
      writtenBytes += chunk.byteLength;
    }
    await handle.sync();
    await handle.close();
    await fs.rename(tempPath, filePath);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
  await fsyncDirectory(path.dirname(filePath));
  return writtenBytes;
}

/** Opens (creating if needed) a file that is only used to hold a lock on; returns its raw fd. */
export async function openLockFile(filePath: string): Promise<fs.FileHandle> {
  return fs.open(filePath, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
}

/** ENOENT, or ENOTDIR (a path through a file): either way there is nothing at that path. */
export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function isBufferList(data: Uint8Array | ReadonlyArray<Uint8Array>): data is ReadonlyArray<Uint8Array> {
  return Array.isArray(data);
}

/** Renames a file if it exists, durably (the directory is synced); false when there was nothing to rename. */
export async function renameIfExists(fromPath: string, toPath: string): Promise<boolean> {
  try {
    await fs.rename(fromPath, toPath);
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
  await fsyncDirectory(path.dirname(toPath));
  return true;
}

/** A file only its owner may read (no group or other permission bits), or undefined when it is missing or not so. */
export async function readPrivateFile(filePath: string): Promise<string | undefined> {
  try {
    if (((await fs.stat(filePath)).mode & 0o077) !== 0) return undefined;
    return await fs.readFile(filePath, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Resolves once one of `names` in `directoryPath` is created, removed or renamed (inotify), or after `timeoutMs`,
 * whichever is first: a process waiting for another's socket sleeps instead of polling hard.
 */
export async function directoryChangeOrTimeout(directoryPath: string, names: ReadonlyArray<string>, timeoutMs: number): Promise<void> {
  let watcher: ReturnType<typeof watch> | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      try {
        watcher = watch(directoryPath, { persistent: false }, (event, name) => {
          if (event === 'rename' && (name === null || names.includes(String(name)))) resolve();
        });
        watcher.on('error', () => undefined);
      } catch {
        // No watch (no inotify left, an exotic filesystem): the timeout alone paces the wait.
      }
    });
  } finally {
    clearTimeout(timer);
    watcher?.close();
  }
}

/**
 * A file only its owner may read (a key file): its bytes, 'missing', or 'exposed' when group or others have any
 * permission on it (it is then not read). Other errors propagate.
 */
export async function readOwnerOnlyFile(filePath: string): Promise<Buffer | 'missing' | 'exposed'> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, fsConstants.O_RDONLY);
  } catch (error) {
    if (isNotFound(error)) return 'missing';
    throw error;
  }
  try {
    // Checked on the open file, so the file read is the one whose mode was checked.
    if (((await handle.stat()).mode & 0o077) !== 0) return 'exposed';
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a file only its owner may read (mode 0600) atomically and durably. `exclusive`: only if no file of that name
 * exists (returns false, leaving the other file, when one does); otherwise replaces it.
 */
export async function writeOwnerOnlyFileDurable(filePath: string, data: Uint8Array, options: { exclusive: boolean }): Promise<boolean> {
  const tempPath = `${filePath}${TEMP_FILE_MARKER}${randomBytes(6).toString('hex')}`;
  const handle = await fs.open(tempPath, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o600);
  try {
    // The mode given to open is masked by the umask; chmod makes it exactly 0600 before any byte is written.
    await handle.chmod(0o600);
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    if (options.exclusive) {
      // link() fails when the name exists: two creators never overwrite each other's key.
      try {
        await fs.link(tempPath, filePath);
      } catch (error) {
        if ((error as NodeJS.ErrnoException | undefined)?.code === 'EEXIST') return false;
        throw error;
      }
    } else {
      await fs.rename(tempPath, filePath);
    }
  } finally {
    await fs.rm(tempPath, { force: true }).catch(() => undefined);
  }
  await fsyncDirectory(path.dirname(filePath));
  return true;
}
