// Checks a pool against what a test knows it acknowledged: every object reads back exactly, every fragment the
// catalog names is present and verifies (no degraded read hides a lost write), and, optionally, no disk holds a
// fragment file the catalog does not reference (nothing leaked).
import assert from 'node:assert/strict';
import { MANIFEST_EXTENT_INDEX } from '../../src/constants.js';
import { decodeManifest } from '../../src/format/version-manifest.js';
import { manifestCopies } from '../../src/pool/manifests.js';
import { Pool } from '../../src/pool/pool.js';
import { toArray } from './async.js';
import { getBuffer } from './read-object.js';

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
    const keys = (await toArray(pool.listObjects())).map((object) => object.key).sort();
    assert.deepEqual(keys, [...options.expected.keys()].sort(), `${options.context}: the set of objects`);
    const referenced = new Set<string>();
    for (const [key, data] of options.expected) {
      const object = await pool.requireObject(key);
      for (const extent of await pool.catalog.extentsOf(object.versionId)) {
        for (const fragment of extent.fragments) {
          const disk = pool.readableDisk(fragment.diskId);
          assert.ok(disk, `${options.context}: disk ${fragment.diskId} of ${key} is readable`);
          // readFragment verifies header identity and data checksum; a lost or torn write throws here.
          await disk.readFragment(fragment);
          referenced.add(`${fragment.diskId}:${fragment.versionId}.${fragment.extentIndex}.${fragment.fragmentIndex}`);
        }
      }
      // Its manifest copies (docs/format.md § Version manifest) are there, verify, and describe it.
      const manifest = await pool.catalog.extentOf(object.versionId, MANIFEST_EXTENT_INDEX);
      assert.ok(manifest && manifest.fragments.length === manifestCopies(object.fragmentCount, object.fragmentsNeeded), `${options.context}: ${key} has its manifest copies`);
      const dataChecksums = (await pool.catalog.extentsOf(object.versionId)).map((extent) => extent.checksum.toString('hex'));
      for (const fragment of manifest.fragments) {
        const disk = pool.readableDisk(fragment.diskId);
        assert.ok(disk, `${options.context}: disk ${fragment.diskId} of ${key}'s manifest is readable`);
        const decoded = decodeManifest((await disk.readFragment(fragment)).data, `${key}'s manifest`);
        assert.ok(decoded.kind === 'version' && decoded.key === key && decoded.versionId === object.versionId && decoded.sequence === object.sequence);
        assert.deepEqual(decoded.extentChecksums.map((checksum) => checksum.toString('hex')), dataChecksums, `${options.context}: ${key}'s manifest names its extents`);
        referenced.add(`${fragment.diskId}:${fragment.versionId}.${fragment.extentIndex}.${fragment.fragmentIndex}`);
      }
      const reader = await pool.openObject(key);
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

/**
 * The allocator accounts for every unit of every block device: the units it holds allocated are exactly the units the
 * catalog's fragments cover, and no two fragments share a unit (a unit freed by one owner and handed to another while
 * the first still references it shows up here). Returns the problems found, one line each.
 */
export async function auditAllocators(poolDirectory: string): Promise<string[]> {
  const problems: string[] = [];
  const pool = await Pool.open(poolDirectory, { access: 'read', lockWaitMs: 0 });
  try {
    for (const member of pool.listMembers()) {
      const disk = member.disk;
      if (!disk || disk.kind !== 'block-device' || !disk.geometry) continue;
      const unitBytes = disk.geometry.allocationUnitBytes;
      const owners = new Map<number, string>();
      let coveredUnits = 0;
      for (const fragment of await pool.catalog.fragmentsOnDisk(member.row.id)) {
        const name = `${fragment.versionId}.${fragment.extentIndex}.${fragment.fragmentIndex}`;
        const recordBytes = Math.ceil(fragment.storedBytes / RECORD_ALIGNMENT_BYTES) * RECORD_ALIGNMENT_BYTES;
        const unitCount = Math.ceil(recordBytes / unitBytes);
        for (let unit = 0; unit < unitCount; unit += 1) {
          const offsetBytes = fragment.locationBytes + unit * unitBytes;
          const owner = owners.get(offsetBytes);
          if (owner !== undefined) problems.push(`disk ${member.row.id}: fragments ${owner} and ${name} share the unit at byte ${offsetBytes}`);
          else owners.set(offsetBytes, name);
        }
        coveredUnits += unitCount;
      }
      const space = await disk.space();
      const usedUnits = (space.capacityBytes - space.freeBytes) / unitBytes;
      if (usedUnits !== owners.size) {
        problems.push(
          `disk ${member.row.id}: the allocator holds ${usedUnits} units, the catalog's fragments cover ${owners.size} ` +
            `(${coveredUnits} counting shared ones)` +
            (space.freeBytes === 0 ? '; no unit free: the device metadata (checkpoint + journal) did not load, see recover' : ''),
        );
      }
    }
  } finally {
    await pool.close();
  }
  return problems;
}

/** Device fragment records start on 4096-byte boundaries and take whole multiples of it (device-disk.ts). */
const RECORD_ALIGNMENT_BYTES = 4096;

/**
 * What a pool at rest must not hold: intents of puts that never committed or cleaned up, versions queued as garbage
 * but never collected, moves never finished, and fragments on a disk no catalog row references (counted per disk,
 * split by whether an intent still covers them, since recover leaves those alone as "in flight").
 */
export async function auditLeftovers(poolDirectory: string): Promise<string[]> {
  const problems: string[] = [];
  const pool = await Pool.open(poolDirectory, { access: 'read', lockWaitMs: 0 });
  try {
    const intents = await pool.catalog.listIntents();
    if (intents.length > 0) problems.push(`${intents.length} put intents remain (first: ${intents[0]?.key} version ${intents[0]?.versionId})`);
    const garbage = await pool.catalog.listGarbage();
    if (garbage.length > 0) problems.push(`${garbage.length} garbage versions remain uncollected (first: ${garbage[0]})`);
    const moves = await pool.catalog.listMoves();
    if (moves.length > 0) problems.push(`${moves.length} fragment moves remain unfinished`);
    const intentVersions = new Set(intents.map((intent) => intent.versionId));
    for (const member of pool.listMembers()) {
      if (!member.disk) continue;
      const referenced = new Set((await pool.catalog.fragmentsOnDisk(member.row.id)).map((row) => `${row.versionId}.${row.extentIndex}.${row.fragmentIndex}`));
      const unreferenced = { underIntent: 0, other: 0, bytes: 0, firstKey: '' };
      for await (const found of member.disk.scanFragments()) {
        if (referenced.has(`${found.versionId}.${found.extentIndex}.${found.fragmentIndex}`)) continue;
        if (intentVersions.has(found.versionId)) unreferenced.underIntent += 1;
        else unreferenced.other += 1;
        unreferenced.bytes += found.storedBytes;
        unreferenced.firstKey ||= `${found.key} (version ${found.versionId})`;
      }
      if (unreferenced.underIntent + unreferenced.other > 0) {
        problems.push(
          `disk ${member.row.id} (${member.row.state}): ${unreferenced.underIntent + unreferenced.other} fragments no catalog row references ` +
            `(${unreferenced.underIntent} under a put intent), ${unreferenced.bytes} bytes; first: ${unreferenced.firstKey}`,
        );
      }
    }
  } finally {
    await pool.close();
  }
  return problems;
}
