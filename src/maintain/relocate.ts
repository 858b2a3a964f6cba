// Moving one fragment to a new home, the one protocol behind drain, rebuild, replace, repair and defrag:
//   record the move → write the copy at the target and flush (kill point drain.fragment-copied) → re-point the
//   catalog row (drain.fragment-moved) → delete the old copy and flush → drop the move record.
// The data comes from the old copy when it still verifies, else it is rebuilt from the rest of the extent. The
// target is a disk holding no other fragment of the extent, or, for an in-place rewrite (repair, defrag), the same
// disk at a new location (devices) or the same file replaced atomically (directories).
import { assert } from '../assert.js';
import { ShardpoolError } from '../errors.js';
import { fragmentHeaderLengthBytes } from '../format/fragment-header.js';
import type { FragmentToMove } from '../pool/catalog/catalog.js';
import { finishMove } from '../pool/garbage.js';
import { killPoint } from '../pool/kill-points.js';
import { gatherFragments, type ReadStats } from '../pool/object-reader.js';
import { chooseDisks } from '../pool/placement.js';
import type { Pool } from '../pool/pool.js';
import { checksum128, checksumEquals } from '../redundancy/checksum.js';
import { isManifestExtent } from '../pool/manifests.js';
import { createCodec } from '../redundancy/create-codec.js';
import { parsePolicy } from '../redundancy/policy.js';

export interface RelocateOptions {
  /** Write to this disk whenever it holds no other fragment of the extent and has room. */
  readonly preferTargetId?: number | undefined;
  /** Rewrite on the fragment's own disk (repair of a corrupt copy, defrag). */
  readonly inPlace?: boolean;
  /** Never read the old copy (it is known bad): rebuild from the others. */
  readonly rebuild?: boolean;
}

/**
 * Moves one fragment; 'skipped' when its version is no longer current or the fragment no longer lives where `move`
 * says (overwritten, removed or moved since it was listed). The version is pinned for the whole move, so its
 * collector cannot delete fragments under it; maintenance runs one at a time, so nothing else moves this fragment.
 */
export async function relocateFragment(pool: Pool, move: FragmentToMove, options: RelocateOptions = {}): Promise<'copied' | 'rebuilt' | 'skipped'> {
  const unpin = await pool.pinCurrent(move.object);
  if (!unpin) return 'skipped';
  try {
    const row = await pool.catalog.fragmentRow(move.fragment);
    const extent = await pool.catalog.extentOf(move.fragment.versionId, move.fragment.extentIndex);
    if (!row || !extent || row.diskId !== move.fragment.diskId || row.locationBytes !== move.fragment.locationBytes) return 'skipped';
    return await relocatePinned(pool, { object: move.object, extent, fragment: row }, options);
  } finally {
    unpin();
  }
}

async function relocatePinned(pool: Pool, move: FragmentToMove, options: RelocateOptions): Promise<'copied' | 'rebuilt'> {
  const { object, extent, fragment } = move;
  const codec = createCodec(parsePolicy(object.policy));
  const source = pool.readableDisk(fragment.diskId);
  let data: Buffer | undefined;
  if (source && !options.rebuild) {
    data = await source
      .readFragment(fragment)
      .then((read) => read.data)
      .catch(() => undefined);
  }
  const how = data ? 'copied' : 'rebuilt';
  if (!data && isManifestExtent(extent.extentIndex)) {
    // A manifest is not erasure coded: every copy is the whole of it. Any other copy that verifies will do.
    data = await anotherManifestCopy(pool, extent, fragment.fragmentIndex);
  } else if (!data) {
    const stats: ReadStats = { extentsRead: 0, extentsDegraded: 0, fragmentFailures: [] };
    const gathered = await gatherFragments(pool, object, extent, codec, stats, new Set([fragment.fragmentIndex]));
    const rebuiltFragments = await codec.reconstruct(gathered.fragments, extent.lengthBytes, [fragment.fragmentIndex]);
    data = rebuiltFragments.get(fragment.fragmentIndex);
    assert(data !== undefined, 'reconstruct returns the fragment it was asked for');
  }
  const storedBytes = fragmentHeaderLengthBytes(object.key) + data.length;
  const targetId = options.inPlace ? fragment.diskId : await chooseTarget(pool, move, storedBytes, options.preferTargetId);
  const target = pool.member(targetId).disk;
  assert(target !== undefined && target.acceptsFragments, 'targets are writable members');
  const address = { versionId: fragment.versionId, extentIndex: fragment.extentIndex, fragmentIndex: fragment.fragmentIndex };
  // Catalog changes go through the group commit: concurrent moves share their transactions.
  await pool.catalog.inBatch((tx) => tx.beginMove(fragment, targetId));
  const { locationBytes } = await target.writeFragment(
    {
      versionId: object.versionId,
      key: object.key,
      policy: codec.policy,
      extentIndex: extent.extentIndex,
      extentLengthBytes: extent.lengthBytes,
      extentChecksum: extent.checksum,
      fragmentIndex: fragment.fragmentIndex,
      dataLengthBytes: data.length,
      dataChecksum: checksum128(data),
    },
    data,
  );
  await target.flush();
  killPoint('drain.fragment-copied');
  const repointed = await pool.catalog.inBatch((tx) =>
    tx.moveFragment(fragment, { diskId: fragment.diskId }, { diskId: targetId, storedBytes, locationBytes }),
  );
  assert(repointed, 'a pinned version\'s fragment is moved by one maintenance at a time, so its row is as read');
  target.settle([address]);
  killPoint('drain.fragment-moved');
  await finishMove(pool, { ...address, sourceDiskId: fragment.diskId, targetDiskId: targetId, sourceLocationBytes: fragment.locationBytes });
  return how;
}

async function anotherManifestCopy(pool: Pool, extent: FragmentToMove['extent'], fragmentIndex: number): Promise<Buffer> {
  for (const other of extent.fragments) {
    if (other.fragmentIndex === fragmentIndex) continue;
    const data = await pool.readableDisk(other.diskId)?.readFragment(other).then((read) => read.data, () => undefined);
    if (data && checksumEquals(checksum128(data), extent.checksum)) return data;
  }
  throw new ShardpoolError(
    'EXTENT_UNRECOVERABLE',
    `no copy of the manifest of version ${extent.versionId} can be read to re-create copy ${fragmentIndex}`,
    { versionId: extent.versionId },
  );
}

async function chooseTarget(pool: Pool, move: FragmentToMove, storedBytes: number, preferTargetId: number | undefined): Promise<number> {
  const { object, extent } = move;
  const extentDisks = new Set(extent.fragments.map((other) => other.diskId));
  const candidates = [];
  for (const member of pool.writableMembers()) {
    if (extentDisks.has(member.row.id)) continue;
    const space = await member.disk!.space().catch(() => undefined);
    if (space && space.freeBytes >= storedBytes) candidates.push({ diskId: member.row.id, freeBytes: space.freeBytes });
  }
  if (candidates.length === 0) {
    throw new ShardpoolError(
      'DISK_FULL',
      `no healthy disk without a fragment of extent ${extent.extentIndex} of ${JSON.stringify(object.key)} has ` +
        `${storedBytes} bytes free for it`,
      { key: object.key, extentIndex: extent.extentIndex },
    );
  }
  if (preferTargetId !== undefined && candidates.some((candidate) => candidate.diskId === preferTargetId)) return preferTargetId;
  const [targetId] = chooseDisks(candidates, 1);
  assert(targetId !== undefined, 'chooseDisks returns one disk or throws');
  return targetId;
}
