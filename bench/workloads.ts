// The pool's side of every comparison: pools made on the bench's devices and the workloads run on them, in-process.
import { randomBytes } from 'node:crypto';
import { DeviceDisk } from '../src/disk/device/device-disk.js';
import type { CatalogLocation } from '../src/format/pool-config.js';
import { Pool } from '../src/pool/pool.js';
import type { Policy } from '../src/redundancy/policy.js';
import { parsePolicy } from '../src/redundancy/policy.js';
import { fillWithZeros } from './rig.js';
import { seconds } from './stats.js';

const MiB = 1024 * 1024;

export async function openPool(directory: string): Promise<Pool> {
  return Pool.open(directory, { access: 'write', lockWaitMs: 10_000 });
}

/**
 * A pool (ec:4+2, 1 MiB extents) on `disks`. `catalog`: where its catalog lives (default SQLite in the pool
 * directory); `fillBytes`: fill only the first bytes of each device's data region (default all of it), for a pool
 * remade every round whose workload only writes the start.
 */
export async function makePool(
  directory: string,
  disks: ReadonlyArray<string>,
  kind: 'device' | 'directory',
  options: { readonly catalog?: CatalogLocation; readonly fillBytes?: number } = {},
): Promise<void> {
  await Pool.create(directory, { policy: parsePolicy('ec:4+2'), extentSizeBytes: MiB, ...(options.catalog ? { catalog: options.catalog } : {}) });
  const pool = await openPool(directory);
  const dataRegions: Array<{ device: string; offsetBytes: number; lengthBytes: number }> = [];
  try {
    for (const disk of disks) {
      await pool.addDisk(disk, kind === 'device' ? { device: true, force: true, confirm: async () => true } : { device: false });
    }
    for (const member of pool.listMembers()) {
      if (member.disk instanceof DeviceDisk) dataRegions.push({ device: member.disk.path, ...member.disk.dataRegion });
    }
  } finally {
    await pool.close();
  }
  // Adding a device discards its data region, and a loop device turns a discard into a hole in its image file: the
  // pool would then write into holes while the raw baseline wrote over allocated blocks. Zeros written back over the
  // (empty) data region make both write to blocks that exist, as on a disk (where TRIM costs later writes nothing).
  if (kind === 'device' && disks.every((disk) => disk.startsWith('/dev/'))) {
    await Promise.all(dataRegions.map((region) => fillWithZeros(region.device, region.offsetBytes, Math.min(region.lengthBytes, options.fillBytes ?? region.lengthBytes))));
  }
}

export function* chunksOf(totalBytes: number, chunkBytes: number, seed: number): Generator<Buffer> {
  const block = randomBytes(Math.min(chunkBytes, Math.max(totalBytes, 1)));
  block.writeUInt32LE(seed >>> 0, 0);
  for (let done = 0; done < totalBytes; done += chunkBytes) yield block.subarray(0, Math.min(chunkBytes, totalBytes - done));
}

/** Puts `totalBytes` in objects of `objectBytes`, one after another; bytes per second. */
export async function largePut(pool: Pool, options: { readonly totalBytes: number; readonly objectBytes: number }, round: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let offset = 0, index = 0; offset < options.totalBytes; offset += options.objectBytes, index += 1) {
    await pool.put(`large/${round}/${index}`, chunksOf(options.objectBytes, 4 * MiB, index));
  }
  return options.totalBytes / seconds(started);
}

/** Reads back what `largePut` wrote in `round`; bytes per second. */
export async function largeGet(pool: Pool, options: { readonly totalBytes: number; readonly objectBytes: number }, round: number): Promise<number> {
  const started = process.hrtime.bigint();
  let bytes = 0;
  for (let offset = 0, index = 0; offset < options.totalBytes; offset += options.objectBytes, index += 1) {
    for await (const chunk of (await pool.openObject(`large/${round}/${index}`)).chunks()) bytes += chunk.length;
  }
  return bytes / seconds(started);
}

/**
 * 4 KiB puts, 32 at a time; returns puts per second and acknowledged puts per device flush. `internal`: keys under
 * the reserved prefix, which the pool writes without a version manifest (bench/manifests.ts compares the two).
 */
export async function smallPuts(pool: Pool, count: number, prefix: string, options: { readonly internal?: boolean } = {}): Promise<{ putsPerSecond: number; putsPerFlush: number }> {
  const devices = pool.listMembers().map((member) => member.disk).filter((disk): disk is DeviceDisk => disk instanceof DeviceDisk);
  const flushesBefore = devices.reduce((sum, disk) => sum + disk.stats.flushes, 0);
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        await pool.put(`${prefix}/${index}`, [randomBytes(4096)], { internal: options.internal === true });
      }
    }),
  );
  const elapsed = seconds(started);
  const flushes = devices.reduce((sum, disk) => sum + disk.stats.flushes, 0) - flushesBefore;
  // Each put touches every device once (ec:4+2 on 6 devices): flushes per device = flushes / devices.
  const perDeviceFlushes = devices.length === 0 ? 0 : flushes / devices.length;
  return { putsPerSecond: count / elapsed, putsPerFlush: perDeviceFlushes === 0 ? 0 : count / perDeviceFlushes };
}

export interface TimedRun {
  readonly bytesPerSecond: number;
  readonly opsPerSecond: number;
  readonly keys: ReadonlyArray<string>;
}

/**
 * What `rados bench SECONDS write -b SIZE -t CONCURRENCY` does, on the pool: `concurrency` writers put objects of
 * `objectBytes` until `durationSeconds` have passed (or `maxObjects` were started), then the puts in flight finish;
 * the rate counts until the last.
 */
export async function timedPuts(
  pool: Pool,
  options: { readonly objectBytes: number; readonly concurrency: number; readonly durationSeconds: number; readonly prefix: string; readonly policy?: Policy; readonly maxObjects?: number },
): Promise<TimedRun> {
  const keys: string[] = [];
  const chunkBytes = Math.min(options.objectBytes, 4 * MiB);
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(options.durationSeconds * 1e9));
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (process.hrtime.bigint() < deadline && next < (options.maxObjects ?? Number.MAX_SAFE_INTEGER)) {
        const key = `${options.prefix}/${next}`;
        next += 1;
        await pool.put(key, chunksOf(options.objectBytes, chunkBytes, next), options.policy ? { policy: options.policy } : {});
        keys.push(key);
      }
    }),
  );
  const elapsed = seconds(started);
  return { bytesPerSecond: (keys.length * options.objectBytes) / elapsed, opsPerSecond: keys.length / elapsed, keys };
}

/** What `rados bench seq` does: reads every object `timedPuts` wrote, `concurrency` at a time, each whole. */
export async function readAllOf(pool: Pool, keys: ReadonlyArray<string>, concurrency: number): Promise<{ bytesPerSecond: number; opsPerSecond: number }> {
  const started = process.hrtime.bigint();
  let bytes = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const key = keys[next] as string;
        next += 1;
        for await (const chunk of (await pool.openObject(key)).chunks()) bytes += chunk.length;
      }
    }),
  );
  const elapsed = seconds(started);
  return { bytesPerSecond: bytes / elapsed, opsPerSecond: keys.length / elapsed };
}

/** What `rados cleanup` does after a bench: removes the objects, 16 at a time. */
export async function removeAllOf(pool: Pool, keys: ReadonlyArray<string>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < keys.length) {
        const key = keys[next] as string;
        next += 1;
        await pool.removeObject(key);
      }
    }),
  );
}
