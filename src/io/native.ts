// Loads the native I/O addon (native/shardpool_io.c, built by node-gyp at `npm ci`) and types its functions.
// Everything else reaches the addon through the small modules beside this one (file-lock, aligned-buffer, block-io).
//
// Why an N-API addon rather than an FFI such as koffi: it adds no dependency (npm ships node-gyp, Debian ships the
// toolchain and Node's headers), its blocking calls run on the libuv threadpool with no glue, and the few calls we
// need (flock, open with O_DIRECT|O_EXCL, ioctls, fallocate, posix_memalign) are a few lines of C each.
// Measured per call on this machine (2 cores, Node 20, flock LOCK_EX|LOCK_NB on a held lock, awaited one by one):
// N-API async 15.6 µs, koffi async 16.1–18.5 µs, koffi sync 0.47 µs (but on the main thread). The threadpool hop
// dominates either way and is small next to the I/O it carries, so overhead does not decide it; dependencies do.
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { ShardpoolError } from '../errors.js';

export interface DeviceInfo {
  readonly isBlockDevice: boolean;
  readonly sizeBytes: number;
  /** BLKSSZGET for a block device; 512 for a regular file. */
  readonly logicalSectorBytes: number;
  /** BLKPBSZGET for a block device; st_blksize for a regular file. */
  readonly physicalSectorBytes: number;
  readonly blockSizeBytes: number;
}

export interface NativeIo {
  open(filePath: string, flags: number): Promise<number>;
  /** mode: 0 unlock, 1 shared, 2 exclusive. Resolves false when nonBlocking and someone else holds the lock. */
  flock(fd: number, mode: 0 | 1 | 2, nonBlocking: boolean): Promise<boolean>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  deviceInfo(fd: number): Promise<DeviceInfo>;
  pread(fd: number, buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<number>;
  pwrite(fd: number, buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<number>;
  discard(fd: number, positionBytes: number, lengthBytes: number): Promise<void>;
  zeroOut(fd: number, positionBytes: number, lengthBytes: number): Promise<void>;
  allocateAligned(lengthBytes: number, alignmentBytes: number, zeroed?: boolean): Buffer;
  bufferAddress(buffer: Buffer): bigint;
  readonly flags: { O_RDONLY: number; O_RDWR: number; O_DIRECT: number; O_EXCL: number; O_SYNC: number; O_DSYNC: number };
}

let loaded: NativeIo | undefined;

export function nativeIo(): NativeIo {
  loaded ??= load();
  return loaded;
}

function load(): NativeIo {
  const addonPath = path.join(packageRoot(), 'build', 'Release', 'shardpool_io.node');
  try {
    return createRequire(import.meta.url)(addonPath) as NativeIo;
  } catch (error) {
    throw new ShardpoolError(
      'NATIVE_ADDON_MISSING',
      `the native I/O addon ${addonPath} cannot be loaded (${(error as Error).message.split('\n')[0]}): run npm ci, ` +
        'which builds it (needs python3, make and a C compiler)',
      { path: addonPath },
      { cause: error },
    );
  }
}

/** The directory holding package.json, found upwards from this file (src/io in a checkout, dist/src/io built). */
function packageRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new ShardpoolError('NATIVE_ADDON_MISSING', 'cannot find the shardpool package root');
    directory = parent;
  }
  return directory;
}
