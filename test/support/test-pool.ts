// A pool on directory disks in a temp directory, opened in-process through the Pool API.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { Pool, type PoolAccess } from '../../src/pool/pool.js';
import { parsePolicy } from '../../src/redundancy/policy.js';
import { testCatalogLocation } from './test-catalog.js';
import { makeTempDir } from './temp-dir.js';

export interface TestPool {
  readonly root: string;
  readonly directory: string;
  readonly diskDirectories: string[];
  open(access?: PoolAccess): Promise<Pool>;
  /** Opens for writing, runs `action`, closes. */
  withPool<T>(action: (pool: Pool) => Promise<T>, access?: PoolAccess): Promise<T>;
}

export async function createTestPool(
  t: TestContext,
  options: { disks: number; policy?: string; extentSizeBytes?: number },
): Promise<TestPool> {
  const root = await makeTempDir(t, 'pool');
  const directory = path.join(root, 'pool');
  await Pool.create(directory, {
    policy: parsePolicy(options.policy ?? 'ec:4+2'),
    extentSizeBytes: options.extentSizeBytes ?? 64 * 1024,
    catalog: await testCatalogLocation(),
  });
  const diskDirectories: string[] = [];
  const open = (access: PoolAccess = 'write') => Pool.open(directory, { access, lockWaitMs: 10_000 });
  const withPool = async <T>(action: (pool: Pool) => Promise<T>, access: PoolAccess = 'write'): Promise<T> => {
    const pool = await open(access);
    try {
      return await action(pool);
    } finally {
      await pool.close();
    }
  };
  await withPool(async (pool) => {
    for (let index = 1; index <= options.disks; index += 1) {
      const diskDirectory = path.join(root, `disk${index}`);
      await fs.mkdir(diskDirectory);
      await pool.addDisk(diskDirectory);
      diskDirectories.push(diskDirectory);
    }
  });
  return { root, directory, diskDirectories, open, withPool };
}

export async function putBuffer(pool: Pool, key: string, data: Buffer, policy?: string) {
  return pool.put(key, [data], policy === undefined ? {} : { policy: parsePolicy(policy) });
}

export { getBuffer } from './read-object.js';

/** Fragment files on one disk directory, as absolute paths. */
export async function fragmentFiles(diskDirectory: string): Promise<string[]> {
  const entries = await fs.readdir(diskDirectory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.frag'))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/** Deterministic pseudo-random bytes (xorshift32) so a failing case reproduces from its seed. */
export function seededBytes(lengthBytes: number, seed: number): Buffer {
  const words = Math.ceil(lengthBytes / 4);
  const bytes = Buffer.alloc(words * 4);
  let state = seed >>> 0 || 1;
  for (let word = 0; word < words; word += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes.writeUInt32LE(state >>> 0, word * 4);
  }
  return bytes.subarray(0, lengthBytes);
}
