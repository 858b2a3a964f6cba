// Loads the native I/O addon (native/shardpool_io.c, built by node-gyp at `npm ci`) and types its functions.
// Everything else reaches the addon through the small modules beside this one (file-lock, aligned-buffer, block-io).
//
// Why an N-API addon rather than an FFI such as koffi: it adds no dependency (npm ships node-gyp, Debian ships the
// toolchain and Node's headers), its blocking calls run on the libuv threadpool with no glue, and the few calls we
// need (flock, open with O_DIRECT|O_EXCL, ioctls, fallocate, posix_memalign) are a few lines of C each. koffi 2.x
// ships prebuilt binaries inside its npm tarball (28 MB unpacked, all platforms); koffi 3.x ships none and builds
// with cmake at install, so it would not even save us the compiler.
// Measured on this machine (2-core AMD EPYC VM, Node 20.20, koffi 2.16.3; 100,000 calls per run, median of 5):
//   synchronous, on the main thread:  fstat       N-API 0.34 µs   koffi 0.53 µs   (fs.fstatSync 0.69 µs)
//                                     flock LOCK_SH|LOCK_NB   N-API 0.34 µs   koffi 0.39 µs
//   asynchronous, threadpool, awaited one by one:  flock   N-API 28.7 µs   koffi 30.0 µs   (fs.promises.stat 31.0 µs)
// N-API is at least as fast in every case; the threadpool hop dominates the asynchronous cost either way and is
// small next to the I/O it carries, so dependencies decide it.
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
  /** Prefer openDevice below; flags are composed from `flags`, and O_CLOEXEC is always added. */
  open(filePath: string, flags: number): Promise<number>;
  /** mode: 0 unlock, 1 shared, 2 exclusive. Resolves false when nonBlocking and someone else holds the lock. */
  flock(fd: number, mode: 0 | 1 | 2, nonBlocking: boolean): Promise<boolean>;
  fdatasync(fd: number): Promise<void>;
  fsync(fd: number): Promise<void>;
  deviceInfo(fd: number): Promise<DeviceInfo>;
  pread(fd: number, buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<number>;
  pwrite(fd: number, buffer: Buffer, bufferOffset: number, lengthBytes: number, positionBytes: number): Promise<number>;
  /** One write of `buffers` laid end to end (1 to 8 of them); resolves with the bytes written. */
  pwritev(fd: number, buffers: ReadonlyArray<Buffer>, positionBytes: number): Promise<number>;
  discard(fd: number, positionBytes: number, lengthBytes: number): Promise<void>;
  zeroOut(fd: number, positionBytes: number, lengthBytes: number): Promise<void>;
  /** A Buffer, or a Uint8Array over an external ArrayBuffer where the runtime refuses external Buffers. */
  allocateAligned(lengthBytes: number, alignmentBytes: number, zeroed?: boolean): Buffer | Uint8Array;
  /** Address of the first byte of the view (not of its backing store). */
  bufferAddress(buffer: Buffer): bigint;
  readonly flags: { O_RDONLY: number; O_RDWR: number; O_DIRECT: number; O_EXCL: number; O_SYNC: number; O_DSYNC: number };
}

export interface OpenDeviceOptions {
  /** O_DIRECT: bypass the page cache; every transfer must then be sector-aligned in offset, length and memory. */
  readonly direct: boolean;
  /** O_EXCL: on a block device, fails with EBUSY while it is mounted or open exclusively elsewhere. */
  readonly exclusive: boolean;
  /** O_RDONLY instead of O_RDWR. */
  readonly readOnly: boolean;
  /** O_SYNC: each write returns once durable (the stand-in when O_DIRECT is refused). */
  readonly sync: boolean;
}

/** Opens a file or device (always O_CLOEXEC); the plain fd works with node:fs calls such as fs.close. */
export function openDevice(filePath: string, options: OpenDeviceOptions): Promise<number> {
  const io = nativeIo();
  const flags =
    (options.readOnly ? io.flags.O_RDONLY : io.flags.O_RDWR) |
    (options.direct ? io.flags.O_DIRECT : 0) |
    (options.exclusive ? io.flags.O_EXCL : 0) |
    (options.sync ? io.flags.O_SYNC : 0);
  return io.open(filePath, flags);
}

let loaded: NativeIo | undefined;

export function nativeIo(): NativeIo {
  loaded ??= load();
  return loaded;
}

function load(): NativeIo {
  const addonPath = path.join(packageRoot(), 'build', 'Release', 'shardpool_io.node');
  if (!existsSync(addonPath)) {
    throw new ShardpoolError(
      'NATIVE_ADDON_MISSING',
      'the native I/O addon is not built: run npm ci (needs python3, make and a C compiler)',
      { path: addonPath },
    );
  }
  try {
    return createRequire(import.meta.url)(addonPath) as NativeIo;
  } catch (error) {
    throw new ShardpoolError(
      'NATIVE_ADDON_MISSING',
      `the native I/O addon ${addonPath} cannot be loaded (${(error as Error).message.split('\n')[0]}): ` +
        'run npm ci or npm rebuild, which build it for this Node (needs python3, make and a C compiler)',
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
