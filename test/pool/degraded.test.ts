import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import { faultTolerance, fragmentCount, parsePolicy } from '../../src/redundancy/policy.js';
import { createTestPool, fragmentFiles, getBuffer, putBuffer, seededBytes, type TestPool } from '../support/test-pool.js';

const EXTENT_BYTES = 64 * 1024;

type Damage = 'delete' | 'flip-data' | 'flip-header' | 'truncate';
const DAMAGES: Damage[] = ['delete', 'flip-data', 'flip-header', 'truncate'];

async function fragmentPath(testPool: TestPool, versionId: string, extent: number, fragment: number): Promise<string> {
  for (const disk of testPool.diskDirectories) {
    const match = (await fragmentFiles(disk)).find((file) => file.endsWith(`/${versionId}.${extent}.${fragment}.frag`));
    if (match) return match;
  }
  throw new Error(`fragment ${versionId}.${extent}.${fragment} not found on any disk`);
}

async function damage(file: string, how: Damage): Promise<void> {
  if (how === 'delete') return fs.rm(file);
  const bytes = await fs.readFile(file);
  if (how === 'truncate') return fs.writeFile(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const at = how === 'flip-header' ? 20 : bytes.length - 1 - (bytes.length % 97);
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  await fs.writeFile(file, bytes);
}

/** Picks `count` distinct fragment indexes of `total`, deterministically from `seed`. */
function pickIndexes(total: number, count: number, seed: number): number[] {
  const indexes = Array.from({ length: total }, (_, index) => index);
  let state = seed;
  for (let index = total - 1; index > 0; index -= 1) {
    state = (state * 48271) % 2147483647;
    const other = state % (index + 1);
    [indexes[index], indexes[other]] = [indexes[other] as number, indexes[index] as number];
  }
  return indexes.slice(0, count);
}

for (const policyText of ['replica:3', 'ec:4+2', 'ec:8+3']) {
  test(`${policyText}: up to M fragments of every extent missing or corrupt still read back exactly, and are counted`, async (t) => {
    const policy = parsePolicy(policyText);
    const tolerance = faultTolerance(policy);
    const testPool = await createTestPool(t, { disks: 11, policy: policyText, extentSizeBytes: EXTENT_BYTES });
    const data = seededBytes(6 * EXTENT_BYTES + 123, 7);
    const versionId = await testPool.withPool(async (pool) => (await putBuffer(pool, 'victim', data)).object.versionId);
    const extents = Math.ceil(data.length / EXTENT_BYTES);
    for (let extent = 0; extent < extents; extent += 1) {
      // Extent 0 keeps all fragments; the others lose 1..M, with every kind of damage.
      const lost = extent === 0 ? 0 : 1 + ((extent - 1) % tolerance);
      for (const [n, fragment] of pickIndexes(fragmentCount(policy), lost, extent + 1).entries()) {
        await damage(await fragmentPath(testPool, versionId, extent, fragment), DAMAGES[(extent + n) % DAMAGES.length] as Damage);
      }
    }
    await testPool.withPool(async (pool) => {
      const reader = await pool.openObject('victim');
      const chunks: Buffer[] = [];
      for await (const chunk of reader.chunks()) chunks.push(chunk);
      assert.ok(Buffer.concat(chunks).equals(data), 'degraded read returns the original bytes');
      assert.ok(reader.stats.extentsDegraded >= 1, 'degraded extents are counted');
      assert.ok(reader.stats.fragmentFailures.length >= 1, 'failed fragments are reported');
      const status = await pool.describe();
      assert.ok((status.counters.extents_read_degraded ?? 0) >= 1, 'the pool counter records degraded reads');
    }, 'read');
  });

  test(`${policyText}: M+1 fragments of one extent lost gives EXTENT_UNRECOVERABLE naming the object and extent`, async (t) => {
    const policy = parsePolicy(policyText);
    const testPool = await createTestPool(t, { disks: 11, policy: policyText, extentSizeBytes: EXTENT_BYTES });
    const data = seededBytes(3 * EXTENT_BYTES, 9);
    const versionId = await testPool.withPool(async (pool) => (await putBuffer(pool, 'photos/lost.jpg', data)).object.versionId);
    for (const [n, fragment] of pickIndexes(fragmentCount(policy), faultTolerance(policy) + 1, 5).entries()) {
      await damage(await fragmentPath(testPool, versionId, 2, fragment), DAMAGES[n % DAMAGES.length] as Damage);
    }
    await testPool.withPool(async (pool) => {
      await assert.rejects(getBuffer(pool, 'photos/lost.jpg'), (error: unknown) => {
        assert.ok(isShardpoolError(error, 'EXTENT_UNRECOVERABLE'), String(error));
        assert.match(error.message, /"photos\/lost\.jpg" extent 2 \(bytes 131072–196607\)/);
        return true;
      });
    }, 'read');
  });
}
