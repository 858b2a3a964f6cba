// The write path. An object is streamed in, cut into extents, each extent encoded by the policy's codec into
// fragments written to distinct disks; at most PUT_EXTENTS_IN_FLIGHT_MAX extents are in memory at once, and the
// input is not read further while that many are in flight (back-pressure).
//
// Commit protocol (docs/architecture.md § write path):
//   1. record an intent for the new version in the catalog      (a crash after this: the next writer deletes its fragments)
//   2. write every fragment: temp file → fsync → rename          (kill point put.fragment-written)
//      then the version's manifest copies (manifests.ts)          (kill point put.manifest-written)
//   3. flush every disk touched: fsync of each directory          (kill point put.fragments-flushed)
//   4. one catalog transaction: the key points at the new version, the old one is queued as garbage, the intent goes
//      (kill point put.committed) — only now is the put acknowledged
//   5. delete the old version's fragments (garbage collection)
// A large put records its progress every PUT_PROGRESS_EXTENTS extents (steps 3 and 4 for what is written so far,
// without making the key point anywhere): the disks are flushed, the extents' fragment rows are committed under the
// put's intent (kill point put.progress-recorded), and block devices settle them. So no put, whatever its size, holds
// more than a bounded number of allocations pending on a device (a checkpoint carries at most 16,384), and an
// interrupted put's recorded fragments are deleted by location like any other (abandonVersion).
import type { Readable } from 'node:stream';
import { assert } from '../assert.js';
import { PUT_EXTENTS_IN_FLIGHT_MAX, putProgressExtents } from '../constants.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import type { Disk } from '../disk/disk.js';
import { fragmentHeaderLengthBytes } from '../format/fragment-header.js';
import type { VersionManifest } from '../format/version-manifest.js';
import { PAGE_BYTES } from '../io/aligned-buffer.js';
import { dataBuffers } from '../io/buffer-pool.js';
import { newUuid } from '../format/uuid.js';
import { checksum128 } from '../redundancy/checksum.js';
import type { Codec } from '../redundancy/codec.js';
import { createCodec } from '../redundancy/create-codec.js';
import { formatPolicy, parsePolicy, type Policy } from '../redundancy/policy.js';
import type { ExtentRow, FragmentRow, InCommit, ObjectMetadata, ObjectRow } from './catalog/catalog.js';
import { Semaphore } from './concurrency.js';
import { abandonVersion } from './garbage.js';
import { isReservedKey } from './keys.js';
import { killPoint } from './kill-points.js';
import { manifestCopies, manifestMetadata, writeManifest } from './manifests.js';
import { chooseDisks } from './placement.js';
import type { Pool } from './pool.js';

/** What a put reads: a stream, or any (async) iterable of chunks. */
export type ObjectSource = AsyncIterable<Buffer | string> | Iterable<Buffer> | Readable;

export interface PutResult {
  readonly object: ObjectRow;
  /** The version this put replaced, if the key existed. */
  readonly replacedVersionId: string | undefined;
}

export async function writeObject(
  pool: Pool,
  key: string,
  source: ObjectSource,
  options: {
    policy: Policy;
    onProgress?: ((bytesWritten: number) => void) | undefined;
    /** Called once the source is read to its end, before the commit: the version's S3 metadata. */
    metadata?: (() => ObjectMetadata) | undefined;
    /** Runs inside the commit transaction (PutOptions.inCommit). */
    inCommit?: InCommit | undefined;
  },
): Promise<PutResult> {
  const codec = createCodec(options.policy);
  const writer = await ExtentWriter.start(pool, codec, key);
  const sequence = await pool.catalog.inBatch((tx) => tx.beginIntent(writer.versionId, key));
  killPoint('put.intent-recorded');
  let object: ObjectRow;
  let replacedVersionId: string | undefined;
  let alsoQueued: ReadonlyArray<string> = [];
  try {
    const { sizeBytes, extents } = await writer.writeAll(source, pool.config.extentSizeBytes, options.onProgress);
    const metadata = options.metadata?.();
    object = {
      key,
      versionId: writer.versionId,
      sizeBytes,
      policy: formatPolicy(options.policy),
      fragmentCount: codec.fragmentCount,
      fragmentsNeeded: codec.fragmentsNeeded,
      extentSizeBytes: pool.config.extentSizeBytes,
      extentCount: extents.length,
      createdAtMs: Date.now(),
      sequence,
    };
    // The commit record on the disks, in the same flush round as the fragments (multipart parts, which an import
    // leaves out, go without).
    const manifest = isReservedKey(key) ? [] : [await writer.writeManifest(versionManifestOf(object, extents, metadata, pool))];
    killPoint('put.manifest-written');
    await writer.flushTouchedDisks();
    killPoint('put.fragments-flushed');
    const unrecorded = [...(await writer.unrecordedExtents()), ...manifest];
    const committed = { object, extents: unrecorded, metadata };
    const result = await pool.catalog.inBatch((tx) => tx.commitObject(committed, options.inCommit));
    replacedVersionId = result.replacedVersionId;
    alsoQueued = result.alsoQueued;
    settleFragments(pool, unrecorded.flatMap((extent) => extent.fragments));
  } catch (error) {
    await writer.settleProgress();
    // A commit whose answer was lost (the catalog's server went away during COMMIT) may have committed: its fragments
    // are then the object's, and deleting them would break it. Asked again; if the catalog cannot say, the put's
    // intent and fragments stay for the next write-open to decide.
    const fate = await commitFate(pool, writer.versionId);
    if (fate === 'not-committed') await abandonVersion(pool, writer.versionId);
    throw error;
  }
  killPoint('put.committed');
  for (const versionId of [...(replacedVersionId === undefined ? [] : [replacedVersionId]), ...alsoQueued]) {
    await pool.collectVersion(versionId);
  }
  return { object, replacedVersionId };
}

/**
 * Removes a key so that the disks say so too: a removal marker (a manifest of kind 'removal', with a sequence of its
 * own) is written on as many disks as the object's manifest, flushed, and committed with the removal in one
 * transaction (Catalog.removeWithMarker). Without the marker, an import of the disks could bring back a removed
 * version whose fragments were not yet collected. Returns the object removed, or undefined when it was gone already.
 */
export async function removeWithMarker(pool: Pool, current: ObjectRow): Promise<ObjectRow | undefined> {
  const versionId = newUuid();
  const sequence = await pool.catalog.inBatch((tx) => tx.beginIntent(versionId, current.key));
  try {
    const extent = await writeManifest(
      pool,
      { kind: 'removal', key: current.key, versionId, sequence, createdAtMs: Date.now() },
      { policy: parsePolicy(current.policy), copies: manifestCopies(current.fragmentCount, current.fragmentsNeeded) },
    );
    killPoint('remove.marker-written');
    await Promise.all([...new Set(extent.fragments.map((fragment) => fragment.diskId))].map((diskId) => pool.member(diskId).disk?.flush()));
    const removed = await pool.catalog.inBatch((tx) => tx.removeWithMarker(current.key, { versionId, sequence, extent }));
    settleFragments(pool, extent.fragments);
    killPoint('remove.committed');
    // A marker that removed nothing (the key was gone, or put again later) hides nothing: it goes at once.
    if (!removed) await pool.collectVersion(versionId);
    return removed;
  } catch (error) {
    const fate = await commitFate(pool, versionId);
    if (fate === 'not-committed') await abandonVersion(pool, versionId);
    throw error;
  }
}

/**
 * Whether a put's version is in the catalog after its commit failed: 'committed' (no intent, and the version is an
 * object or already garbage), 'not-committed' (its intent is still there, or it never became anything), 'unknown'
 * when the catalog cannot be asked. The intent goes in the same transaction that makes the version visible.
 */
async function commitFate(pool: Pool, versionId: string): Promise<'committed' | 'not-committed' | 'unknown'> {
  try {
    if (await pool.catalog.hasIntent(versionId)) return 'not-committed';
    const visible = (await pool.catalog.objectOfVersion(versionId)) !== undefined || (await pool.catalog.isGarbage(versionId));
    return visible ? 'committed' : 'not-committed';
  } catch (error) {
    if (!isShardpoolError(error)) throw error;
    return 'unknown';
  }
}

/** The manifest of a version about to be committed: its rows, where its fragments went, its S3 metadata. */
export function versionManifestOf(object: ObjectRow, extents: ReadonlyArray<ExtentRow>, metadata: ObjectMetadata | undefined, pool: Pool): VersionManifest {
  const diskIds = new Set(extents.flatMap((extent) => extent.fragments.map((fragment) => fragment.diskId)));
  return {
    kind: 'version',
    key: object.key,
    versionId: object.versionId,
    sequence: object.sequence,
    createdAtMs: object.createdAtMs,
    sizeBytes: object.sizeBytes,
    policy: object.policy,
    extentSizeBytes: object.extentSizeBytes,
    extentChecksums: extents.map((extent) => extent.checksum),
    diskUuids: [...diskIds].sort((a, b) => a - b).map((diskId) => pool.member(diskId).row.uuid),
    metadata: manifestMetadata(metadata),
  };
}

/** Tells each disk that the catalog now references these fragments (block devices stop tracking them as pending). */
export function settleFragments(pool: Pool, fragments: ReadonlyArray<FragmentRow>): void {
  const byDisk = new Map<number, FragmentRow[]>();
  for (const fragment of fragments) byDisk.set(fragment.diskId, [...(byDisk.get(fragment.diskId) ?? []), fragment]);
  for (const [diskId, rows] of byDisk) pool.member(diskId).disk?.settle(rows);
}


/** Writes the extents of one new object version and remembers where every fragment went. */
class ExtentWriter {
  readonly versionId = newUuid();
  private readonly touchedDisks = new Set<number>();
  /** Disks that failed a write during this put; no further fragment of this put goes there. */
  private readonly excludedDisks = new Set<number>();
  /** Where this put's extents and parity live: laid out so that block devices write fragments without a copy. */
  private readonly memory: FragmentMemory;
  /** Written extents whose fragment rows are not yet in the catalog, by index. */
  private readonly unrecorded = new Map<number, ExtentRow>();
  /** The progress record being written (one at a time). */
  private progress: Promise<void> | undefined;
  private progressFailure: { error: unknown } | undefined;
  private readonly progressEvery = putProgressExtents();

  private constructor(
    private readonly pool: Pool,
    private readonly codec: Codec,
    private readonly key: string,
    /** Free bytes per writable disk, decremented as fragments are placed so one put spreads by what is left. */
    private readonly freeBytes: Map<number, number>,
  ) {
    this.memory = new FragmentMemory(fragmentHeaderLengthBytes(key));
  }

  static async start(pool: Pool, codec: Codec, key: string): Promise<ExtentWriter> {
    const writable = pool.writableMembers();
    if (writable.length < codec.fragmentCount) {
      throw new ShardpoolError(
        'POLICY_NEEDS_MORE_DISKS',
        `policy ${formatPolicy(codec.policy)} needs ${codec.fragmentCount} healthy disks, the pool has ` +
          `${writable.length} (add disks with add-disk, or choose a smaller policy)`,
        { policy: formatPolicy(codec.policy), needed: codec.fragmentCount, available: writable.length },
      );
    }
    const freeBytes = new Map<number, number>();
    for (const member of writable) {
      const space = await member.disk!.space().catch(() => undefined);
      if (space) freeBytes.set(member.row.id, space.freeBytes);
    }
    return new ExtentWriter(pool, codec, key, freeBytes);
  }

  async writeAll(
    source: ObjectSource,
    extentSizeBytes: number,
    onProgress: ((bytesWritten: number) => void) | undefined,
  ): Promise<{ sizeBytes: number; extents: ExtentRow[] }> {
    const extents: ExtentRow[] = [];
    const inFlight = new Semaphore(PUT_EXTENTS_IN_FLIGHT_MAX);
    const running = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    let sizeBytes = 0;
    let extentIndex = 0;
    try {
      for await (const extentData of cutIntoExtents(source, extentSizeBytes, this.memory.allocate)) {
        // Waiting here stops the for-await from pulling more input: that is the back-pressure.
        await inFlight.acquire();
        if (failure) {
          inFlight.release();
          break;
        }
        const index = extentIndex;
        extentIndex += 1;
        const task = this.writeExtent(index, extentData)
          .then((row) => {
            // Only after success: a failed extent's other fragment writes may still be reading its memory.
            this.memory.giveBack(extentData);
            extents[index] = row;
            this.unrecorded.set(index, row);
            sizeBytes += extentData.length;
            onProgress?.(sizeBytes);
            if (this.unrecorded.size >= this.progressEvery && !this.progress) this.recordProgress();
            if (this.progressFailure) throw this.progressFailure.error;
          })
          .catch((error: unknown) => {
            failure ??= { error };
          })
          .finally(() => {
            inFlight.release();
            running.delete(task);
          });
        running.add(task);
      }
    } finally {
      // Also when the source fails: the put is abandoned only after every fragment write in flight has ended, or a
      // write finishing after the cleanup would leave its fragment behind.
      await Promise.allSettled(running);
    }
    if (failure) throw failure.error;
    assert(extents.length === extentIndex, 'every extent was written');
    return { sizeBytes, extents };
  }

  /** Writes the version's manifest copies on disks this put may still use; they are flushed with its fragments. */
  async writeManifest(manifest: VersionManifest): Promise<ExtentRow> {
    const candidates = [...this.freeBytes]
      .filter(([diskId]) => !this.excludedDisks.has(diskId))
      .map(([diskId, freeBytes]) => ({ diskId, freeBytes }));
    const copies = manifestCopies(this.codec.fragmentCount, this.codec.fragmentsNeeded);
    const row = await writeManifest(this.pool, manifest, { policy: this.codec.policy, copies, candidates });
    for (const fragment of row.fragments) this.touchedDisks.add(fragment.diskId);
    return row;
  }

  async flushTouchedDisks(): Promise<void> {
    await Promise.all([...this.touchedDisks].map((diskId) => this.diskFor(diskId).flush()));
  }

  /** After the last write: waits for a progress record in flight; what it did not record goes into the commit. */
  async unrecordedExtents(): Promise<ExtentRow[]> {
    await this.settleProgress();
    if (this.progressFailure) throw this.progressFailure.error;
    return [...this.unrecorded.values()].sort((a, b) => a.extentIndex - b.extentIndex);
  }

  /** Waits for a progress record in flight (before the put commits or is abandoned), never rejecting. */
  async settleProgress(): Promise<void> {
    await this.progress?.catch(() => undefined);
  }

  /**
   * Records the extents written so far under the put's intent: flush their disks (a flush covers every write that
   * completed before it), commit their rows, then settle them on their devices. Runs beside further writes.
   */
  private recordProgress(): void {
    const batch = [...this.unrecorded.values()];
    const disks = new Set(batch.flatMap((extent) => extent.fragments.map((fragment) => fragment.diskId)));
    this.progress = (async () => {
      await Promise.all([...disks].map((diskId) => this.diskFor(diskId).flush()));
      await this.pool.catalog.inBatch((tx) => tx.recordIntentExtents(this.versionId, batch));
      killPoint('put.progress-recorded');
      for (const extent of batch) this.unrecorded.delete(extent.extentIndex);
      settleFragments(this.pool, batch.flatMap((extent) => extent.fragments));
    })()
      .catch((error: unknown) => {
        this.progressFailure ??= { error };
      })
      .finally(() => {
        this.progress = undefined;
      });
  }

  private async writeExtent(extentIndex: number, data: Buffer): Promise<ExtentRow> {
    const extentChecksum = checksum128(data);
    const created: Buffer[] = [];
    const fragments = await this.codec.encode(data, (lengthBytes) => {
      const parity = this.memory.allocate(lengthBytes);
      created.push(parity);
      return parity;
    });
    assert(fragments.length === this.codec.fragmentCount, 'the codec returns every fragment');
    const storedBytes = fragmentHeaderLengthBytes(this.key) + this.codec.fragmentLengthBytes(data.length);
    const diskIds = this.place(storedBytes, this.codec.fragmentCount, new Set());
    const rows = await Promise.all(
      fragments.map((fragmentData, fragmentIndex) =>
        this.writeFragment({
          extentIndex,
          extentLengthBytes: data.length,
          extentChecksum,
          fragmentIndex,
          fragmentData,
          storedBytes,
          diskId: diskIds[fragmentIndex] as number,
          extentDisks: diskIds,
        }),
      ),
    );
    for (const buffer of created) this.memory.giveBack(buffer);
    return { versionId: this.versionId, extentIndex, lengthBytes: data.length, checksum: extentChecksum, fragments: rows };
  }

  /**
   * Writes one fragment. If its disk fails the write, that disk is left out for the rest of the put and the fragment
   * goes to another disk that holds no fragment of this extent; only when none is left does the put fail.
   */
  private async writeFragment(fragment: {
    extentIndex: number;
    extentLengthBytes: number;
    extentChecksum: Buffer;
    fragmentIndex: number;
    fragmentData: Buffer;
    storedBytes: number;
    diskId: number;
    extentDisks: number[];
  }): Promise<FragmentRow> {
    let diskId = fragment.diskId;
    for (;;) {
      try {
        const { locationBytes } = await this.diskFor(diskId).writeFragment(
          {
            versionId: this.versionId,
            key: this.key,
            policy: this.codec.policy,
            extentIndex: fragment.extentIndex,
            extentLengthBytes: fragment.extentLengthBytes,
            extentChecksum: fragment.extentChecksum,
            fragmentIndex: fragment.fragmentIndex,
            dataLengthBytes: fragment.fragmentData.length,
            dataChecksum: checksum128(fragment.fragmentData),
          },
          fragment.fragmentData,
        );
        this.touchedDisks.add(diskId);
        killPoint('put.fragment-written');
        return {
          versionId: this.versionId,
          extentIndex: fragment.extentIndex,
          fragmentIndex: fragment.fragmentIndex,
          diskId,
          storedBytes: fragment.storedBytes,
          locationBytes,
        };
      } catch (error) {
        const replaceable = (['DISK_IO_FAILED', 'DISK_FULL', 'DEVICE_ALLOCATIONS_LIMIT', 'NODE_UNREACHABLE'] as const).some((code) => isShardpoolError(error, code));
        if (!replaceable) throw error;
        this.excludedDisks.add(diskId);
        const replacement = this.tryPlaceOne(fragment.storedBytes, new Set(fragment.extentDisks));
        if (replacement === undefined) throw error;
        fragment.extentDisks.push(replacement);
        diskId = replacement;
      }
    }
  }

  private place(storedBytes: number, count: number, avoid: ReadonlySet<number>): number[] {
    const candidates = [...this.freeBytes]
      .filter(([diskId, free]) => !this.excludedDisks.has(diskId) && !avoid.has(diskId) && free >= storedBytes)
      .map(([diskId, freeBytes]) => ({ diskId, freeBytes }));
    const chosen = chooseDisks(candidates, count);
    for (const diskId of chosen) this.freeBytes.set(diskId, (this.freeBytes.get(diskId) ?? 0) - storedBytes);
    return chosen;
  }

  private tryPlaceOne(storedBytes: number, avoid: ReadonlySet<number>): number | undefined {
    try {
      return this.place(storedBytes, 1, avoid)[0];
    } catch (error) {
      if (isShardpoolError(error, 'POLICY_NEEDS_MORE_DISKS')) return undefined;
      throw error;
    }
  }

  private diskFor(diskId: number): Disk {
    const disk = this.pool.member(diskId).disk;
    assert(disk !== undefined, 'fragments are only placed on reachable disks');
    return disk;
  }
}

/**
 * Memory for one put's extents and parity, lent from the data-path pool and given back once their fragments are
 * written. Each buffer starts `headerBytes` past a page boundary (mod the page size): a fragment that begins at a
 * page multiple inside it (every shard of a full extent, when the shard length is a page multiple) then has its
 * bytes page-aligned exactly where its record's second page begins on the device, and a block device writes the
 * record from this memory instead of copying it (DeviceDisk.writeRecord).
 */
class FragmentMemory {
  private readonly lent = new Map<Buffer, Buffer>();

  constructor(private readonly headerBytes: number) {}

  readonly allocate = (lengthBytes: number): Buffer => {
    const offset = this.headerBytes % PAGE_BYTES;
    const lent = dataBuffers.lend(lengthBytes + offset);
    const view = lent.subarray(offset, offset + lengthBytes);
    this.lent.set(view, lent);
    return view;
  };

  /** Gives back a buffer `allocate` returned (anything else, such as a view of one, is left to the collector). */
  giveBack(view: Buffer): void {
    const lent = this.lent.get(view);
    if (!lent) return;
    this.lent.delete(view);
    dataBuffers.giveBack(lent);
  }
}

/**
 * Cuts a byte stream into extents of exactly `extentSizeBytes` (the last one shorter, none when the stream is
 * empty). Each extent is a buffer from `allocate` (by default a fresh one) that the caller owns.
 */
export async function* cutIntoExtents(
  source: ObjectSource,
  extentSizeBytes: number,
  allocate: (lengthBytes: number) => Buffer = (lengthBytes) => Buffer.allocUnsafe(lengthBytes),
): AsyncGenerator<Buffer> {
  let extent = allocate(extentSizeBytes);
  let filledBytes = 0;
  for await (const chunk of source as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let offset = 0;
    while (offset < bytes.length) {
      const copied = bytes.copy(extent, filledBytes, offset, offset + (extentSizeBytes - filledBytes));
      filledBytes += copied;
      offset += copied;
      if (filledBytes === extentSizeBytes) {
        yield extent;
        extent = allocate(extentSizeBytes);
        filledBytes = 0;
      }
    }
  }
  if (filledBytes > 0) yield extent.subarray(0, filledBytes);
}
