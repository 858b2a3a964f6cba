// Checks a pool against what a test knows it acknowledged: every object reads back exactly, every fragment the
// catalog names is present and verifies (no degraded read hides a lost write), and, optionally, no disk holds a
// fragment file the catalog does not reference (nothing leaked).
import assert from 'node:assert/strict';
import { Pool } from '../../src/pool/pool.js';
import { getBuffer } from './test-pool.js';

export interface AuditOptions {
  /** The exact set of objects that must exist, with their bytes. */
  readonly expected: ReadonlyMap<string, Buffer>;
  /** Also require that disks hold no unreferenced fragment (true after a write-open has cleaned up). */
  readonly noOrphans: boolean;
  readonly context: string;
}

export async function auditPool(poolDirectory: string, options: AuditOptions): Promise<void> {
  const pool = await Pool.open(poolDirectory, { access: 'read', lockWaitMs: 0 });
  try {
    const keys = [...pool.listObjects()].map((object) => object.key).sort();
    assert.deepEqual(keys, [...options.expected.keys()].sort(), `${options.context}: the set of objects`);
    const referenced = new Set<string>();
    for (const [key, data] of options.expected) {
      const object = pool.requireObject(key);
      for (const extent of pool.catalog.extentsOf(object.versionId)) {
        for (const fragment of extent.fragments) {
          const disk = pool.readableDisk(fragment.diskId);
          assert.ok(disk, `${options.context}: disk ${fragment.diskId} of ${key} is readable`);
          // readFragment verifies header identity and data checksum; a lost or torn write throws here.
          await disk.readFragment(fragment);
          referenced.add(`${fragment.diskId}:${fragment.versionId}.${fragment.extentIndex}.${fragment.fragmentIndex}`);
        }
      }
      const reader = pool.openObject(key);
      const chunks: Buffer[] = [];
      for await (const chunk of reader.chunks()) chunks.push(chunk);
      assert.ok(Buffer.concat(chunks).equals(data), `${options.context}: ${key} reads back byte-exact`);
      assert.equal(reader.stats.extentsDegraded, 0, `${options.context}: ${key} reads without degradation`);
    }
    if (options.noOrphans) {
      for (const member of pool.listMembers()) {
        if (!member.disk) continue;
        for await (const address of member.disk.scanFragments()) {
          const name = `${member.row.id}:${address.versionId}.${address.extentIndex}.${address.fragmentIndex}`;
          assert.ok(referenced.has(name), `${options.context}: orphan fragment ${name} was left behind`);
        }
      }
    }
  } finally {
    await pool.close();
  }
}

export { getBuffer };
