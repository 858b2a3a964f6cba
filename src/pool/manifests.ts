// Version manifests on the disks (format/version-manifest.ts): what a put or a removal leaves beside its fragments
// so that the disks alone describe the pool. A manifest is written as fragment records at MANIFEST_EXTENT_INDEX of
// its version, one copy per disk on as many distinct disks as the version's policy may lose plus one, before the
// flush that precedes the catalog commit; the catalog keeps the copies as an extent row (never listed as data: see
// Catalog.extentsOf) so that garbage collection, drains, rebuilds and recover handle them like any fragment.
import { assert } from '../assert.js';
import { MANIFEST_EXTENT_INDEX } from '../constants.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { fragmentHeaderLengthBytes } from '../format/fragment-header.js';
import { encodeManifest, type Manifest, type ManifestMetadata } from '../format/version-manifest.js';
import { checksum128 } from '../redundancy/checksum.js';
import type { Policy } from '../redundancy/policy.js';
import type { ExtentRow, FragmentRow, ObjectMetadata } from './catalog/catalog.js';
import { chooseDisks, type PlacementCandidate } from './placement.js';
import type { Pool } from './pool.js';

/** Copies of a manifest: one more than the fragments of an extent that may be lost. */
export function manifestCopies(fragmentCount: number, fragmentsNeeded: number): number {
  return fragmentCount - fragmentsNeeded + 1;
}

export function isManifestExtent(extentIndex: number): boolean {
  return extentIndex === MANIFEST_EXTENT_INDEX;
}

/** The manifest's form of a version's S3 metadata. */
export function manifestMetadata(metadata: ObjectMetadata | undefined): ManifestMetadata | undefined {
  return metadata === undefined ? undefined : { ...metadata };
}

/**
 * Writes `copies` copies of a manifest to distinct writable disks (drawn by free space among `candidates`, or every
 * writable member), a disk that fails the write replaced by another. Returns the manifest's extent row; the caller
 * flushes the disks it names before committing it.
 */
export async function writeManifest(
  pool: Pool,
  manifest: Manifest,
  options: { policy: Policy; copies: number; candidates?: ReadonlyArray<PlacementCandidate> },
): Promise<ExtentRow> {
  const data = encodeManifest(manifest);
  const checksum = checksum128(data);
  const storedBytes = fragmentHeaderLengthBytes(manifest.key) + data.length;
  const candidates = options.candidates ?? (await writableCandidates(pool));
  const usable = candidates.filter((candidate) => candidate.freeBytes >= storedBytes && pool.member(candidate.diskId).disk?.acceptsFragments);
  const chosen = chooseDisks(usable, Math.min(options.copies, Math.max(usable.length, 1)));
  if (chosen.length < options.copies) {
    throw new ShardpoolError(
      'POLICY_NEEDS_MORE_DISKS',
      `a version manifest needs ${options.copies} healthy disks with space, the pool has ${usable.length}`,
      { needed: options.copies, available: usable.length },
    );
  }
  const spare = usable.map((candidate) => candidate.diskId).filter((diskId) => !chosen.includes(diskId));
  const used = new Set(chosen);
  const fragments = await Promise.all(
    chosen.map(async (firstDiskId, fragmentIndex): Promise<FragmentRow> => {
      let diskId = firstDiskId;
      for (;;) {
        const disk = pool.member(diskId).disk;
        assert(disk !== undefined, 'manifests are placed on reachable disks');
        try {
          const { locationBytes } = await disk.writeFragment(
            {
              versionId: manifest.versionId,
              key: manifest.key,
              policy: options.policy,
              extentIndex: MANIFEST_EXTENT_INDEX,
              extentLengthBytes: data.length,
              extentChecksum: checksum,
              fragmentIndex,
              dataLengthBytes: data.length,
              dataChecksum: checksum,
            },
            data,
          );
          return { versionId: manifest.versionId, extentIndex: MANIFEST_EXTENT_INDEX, fragmentIndex, diskId, storedBytes, locationBytes };
        } catch (error) {
          const replaceable = (['DISK_IO_FAILED', 'DISK_FULL', 'DEVICE_ALLOCATIONS_LIMIT', 'NODE_UNREACHABLE'] as const).some((code) => isShardpoolError(error, code));
          const next = spare.find((candidate) => !used.has(candidate));
          if (!replaceable || next === undefined) throw error;
          used.add(next);
          diskId = next;
        }
      }
    }),
  );
  return { versionId: manifest.versionId, extentIndex: MANIFEST_EXTENT_INDEX, lengthBytes: data.length, checksum, fragments };
}

async function writableCandidates(pool: Pool): Promise<PlacementCandidate[]> {
  const candidates: PlacementCandidate[] = [];
  for (const member of pool.writableMembers()) {
    const space = await member.disk!.space().catch(() => undefined);
    if (space) candidates.push({ diskId: member.row.id, freeBytes: space.freeBytes });
  }
  return candidates;
}
