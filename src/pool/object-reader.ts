// The read path. An object is streamed out extent by extent, with up to extentsReadAhead() extents read
// ahead. Each extent is rebuilt from the fewest fragments its policy needs (the data fragments first, so the common
// case decodes nothing); every fragment is verified on read, and a missing, corrupt or unreachable fragment is
// replaced by another one transparently (a degraded read, counted). A rebuilt extent is checked against the
// extent checksum recorded at put time before a byte of it is returned.
import { assert } from '../assert.js';
import { extentsReadAhead } from '../constants.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { checksum128, checksumEquals } from '../redundancy/checksum.js';
import type { Codec } from '../redundancy/codec.js';
import { createCodec } from '../redundancy/create-codec.js';
import { parsePolicy } from '../redundancy/policy.js';
import type { ExtentRow, FragmentRow, ObjectRow } from './catalog/catalog.js';
import type { Pool } from './pool.js';

export const COUNTER_EXTENTS_READ_DEGRADED = 'extents_read_degraded';
export const COUNTER_FRAGMENT_READ_FAILURES = 'fragment_read_failures';

export interface FragmentFailure {
  readonly extentIndex: number;
  readonly fragmentIndex: number;
  readonly diskId: number;
  /** An error code, or UNAVAILABLE when the disk is failed or unreachable. */
  readonly reason: string;
}

export interface ReadStats {
  extentsRead: number;
  extentsDegraded: number;
  readonly fragmentFailures: FragmentFailure[];
}

export interface ObjectReader {
  readonly object: ObjectRow;
  readonly stats: ReadStats;
  /** The object's bytes in order (once). Rejects with EXTENT_UNRECOVERABLE or OBJECT_CHANGED_DURING_READ. */
  chunks(): AsyncGenerator<Buffer>;
  /** Lets go of the version (its pin); done by chunks() when it ends, needed only for a reader not read to its end. */
  close(): void;
}

/** Bytes [startByte, endByteExclusive) of an object. */
export interface ByteRange {
  readonly startByte: number;
  readonly endByteExclusive: number;
}

/** `unpin` releases the pin the caller took on the version in the same turn as it looked the object up. */
export function openObjectReader(pool: Pool, object: ObjectRow, unpin: () => void, range?: ByteRange): ObjectReader {
  assert(
    range === undefined || (range.startByte >= 0 && range.startByte <= range.endByteExclusive && range.endByteExclusive <= object.sizeBytes),
    'a read range lies within the object',
  );
  const stats: ReadStats = { extentsRead: 0, extentsDegraded: 0, fragmentFailures: [] };
  let started = false;
  return {
    object,
    stats,
    chunks: () => {
      assert(!started, 'an object reader is read once');
      started = true;
      return readChunks(pool, object, stats, range, unpin);
    },
    close: unpin,
  };
}

async function* readChunks(
  pool: Pool,
  object: ObjectRow,
  stats: ReadStats,
  range: ByteRange | undefined,
  unpin: () => void,
): AsyncGenerator<Buffer> {
  const codec = createCodec(parsePolicy(object.policy));
  const allExtents = await pool.catalog.extentsOf(object.versionId);
  if (allExtents.length !== object.extentCount) {
    unpin();
    throw await changedDuringRead(pool, object);
  }
  // A range read reads only the extents it overlaps and trims the first and last of them.
  const firstByte = range?.startByte ?? 0;
  const endByte = range ? range.endByteExclusive : object.sizeBytes;
  const extents = range
    ? allExtents.filter((_, index) => index * object.extentSizeBytes < endByte && (index + 1) * object.extentSizeBytes > firstByte)
    : allExtents;
  // Settled promises, so a read-ahead that fails while the consumer is slow is never an unhandled rejection.
  const ahead: Array<Promise<{ data: Buffer } | { error: unknown }>> = [];
  const readAhead = extentsReadAhead(object.extentSizeBytes);
  let next = 0;
  let consumed = 0;
  const schedule = () => {
    while (ahead.length < readAhead && next < extents.length) {
      const extent = extents[next] as ExtentRow;
      next += 1;
      ahead.push(
        readExtent(pool, object, extent, codec, stats).then(
          (data) => ({ data }),
          (error: unknown) => ({ error }),
        ),
      );
    }
  };
  try {
    schedule();
    while (ahead.length > 0) {
      const result = await (ahead.shift() as Promise<{ data: Buffer } | { error: unknown }>);
      const extent = extents[consumed] as ExtentRow;
      consumed += 1;
      if ('error' in result) throw result.error;
      schedule();
      if (!range) {
        yield result.data;
        continue;
      }
      const extentStart = extent.extentIndex * object.extentSizeBytes;
      const from = Math.max(firstByte - extentStart, 0);
      const to = Math.min(endByte - extentStart, result.data.length);
      if (to > from) yield result.data.subarray(from, to);
    }
  } finally {
    unpin();
    await recordCounters(pool, stats);
  }
}

/**
 * Reads and verifies one extent, degraded if it must be. Maintenance may move fragments of a version while it is
 * read (a drain, a repair, a defrag run beside reads and delete a moved fragment's old copy): when too few fragments
 * were found where the reader looked, it looks again where the catalog places them now.
 */
export async function readExtent(
  pool: Pool,
  object: ObjectRow,
  extent: ExtentRow,
  codec: Codec,
  stats: ReadStats,
): Promise<Buffer> {
  let current = extent;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await readExtentAt(pool, object, current, codec, stats);
    } catch (error) {
      const tooFewFound = isShardpoolError(error, 'EXTENT_UNRECOVERABLE') || isShardpoolError(error, 'OBJECT_CHANGED_DURING_READ');
      if (!tooFewFound || attempt >= EXTENT_READ_ATTEMPTS_MAX) throw error;
      const now = await pool.catalog.extentOf(object.versionId, extent.extentIndex);
      if (!now || !fragmentsMoved(current, now)) throw error;
      current = now;
    }
  }
}

const EXTENT_READ_ATTEMPTS_MAX = 3;

function fragmentsMoved(before: ExtentRow, after: ExtentRow): boolean {
  return after.fragments.some((fragment, index) => {
    const old = before.fragments[index];
    return old === undefined || old.diskId !== fragment.diskId || old.locationBytes !== fragment.locationBytes;
  });
}

async function readExtentAt(
  pool: Pool,
  object: ObjectRow,
  extent: ExtentRow,
  codec: Codec,
  stats: ReadStats,
): Promise<Buffer> {
  // Data fragments are read straight into their place in the extent, so an intact extent is decoded without a copy.
  const assembly = Buffer.allocUnsafe(codec.assemblyBytes(extent.lengthBytes));
  const slotOf = (fragmentIndex: number) => codec.slotOf(assembly, fragmentIndex, extent.lengthBytes);
  const gathered = await gatherFragments(pool, object, extent, codec, stats, new Set(), slotOf);
  const data = await codec.decode(gathered.fragments, extent.lengthBytes);
  // Without a failure, the extent is the verified data fragments laid end to end (ec) or one verified copy (replica):
  // every byte already passed its fragment checksum. A rebuilt extent went through the coder and is checked whole
  // against the checksum recorded at put time, so a coding error can never return wrong data.
  if (gathered.degraded && !checksumEquals(checksum128(data), extent.checksum)) {
    throw new ShardpoolError(
      'EXTENT_CHECKSUM_MISMATCH',
      `extent ${extent.extentIndex} of ${JSON.stringify(object.key)} does not match its checksum after decoding`,
      { key: object.key, extentIndex: extent.extentIndex },
    );
  }
  stats.extentsRead += 1;
  if (gathered.degraded) stats.extentsDegraded += 1;
  return data;
}

/**
 * Reads verified fragments of one extent until the codec has enough: `fragments[i]` is fragment i or undefined.
 * Data fragments are tried first, then parity; fragments on unavailable disks are skipped. `skip` leaves out
 * fragment indexes the caller knows are bad (e.g. the one being repaired).
 */
export async function gatherFragments(
  pool: Pool,
  object: ObjectRow,
  extent: ExtentRow,
  codec: Codec,
  stats: ReadStats,
  skip: ReadonlySet<number> = new Set(),
  /** Where to read fragment i's data, when the caller has a place for it (see Codec.slotOf). */
  slotOf: (fragmentIndex: number) => Buffer | undefined = () => undefined,
): Promise<{ fragments: Array<Buffer | undefined>; degraded: boolean }> {
  assert(extent.fragments.length === codec.fragmentCount, 'the catalog holds every fragment of an extent');
  const fragments: Array<Buffer | undefined> = new Array(codec.fragmentCount).fill(undefined);
  const queue: FragmentRow[] = [];
  const failures: FragmentFailure[] = [];
  for (const fragment of extent.fragments) {
    if (skip.has(fragment.fragmentIndex)) continue;
    if (pool.readableDisk(fragment.diskId)) queue.push(fragment);
    else failures.push({ ...position(fragment), reason: 'UNAVAILABLE' });
  }
  let readable = 0;
  let reading = 0;
  // Exactly as many reads in flight as fragments still needed: a worker whose read fails reads the next candidate,
  // and no worker starts a read that the reads in flight already cover (that read every parity fragment too).
  const worker = async (): Promise<void> => {
    while (readable + reading < codec.fragmentsNeeded) {
      const fragment = queue.shift();
      if (!fragment) return;
      reading += 1;
      try {
        const disk = pool.readableDisk(fragment.diskId);
        assert(disk !== undefined, 'queued fragments are on readable disks');
        const { data } = await disk.readFragment(fragment, slotOf(fragment.fragmentIndex));
        fragments[fragment.fragmentIndex] = data;
        readable += 1;
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
        failures.push({ ...position(fragment), reason: error.code });
      } finally {
        reading -= 1;
      }
    }
  };
  await Promise.all(Array.from({ length: codec.fragmentsNeeded }, worker));
  stats.fragmentFailures.push(...failures);
  if (readable < codec.fragmentsNeeded) throw await unrecoverable(pool, object, extent, codec, readable, failures);
  return { fragments, degraded: failures.length > 0 };
}

function position(fragment: FragmentRow): Omit<FragmentFailure, 'reason'> {
  return { extentIndex: fragment.extentIndex, fragmentIndex: fragment.fragmentIndex, diskId: fragment.diskId };
}

async function unrecoverable(
  pool: Pool,
  object: ObjectRow,
  extent: ExtentRow,
  codec: Codec,
  readable: number,
  failures: FragmentFailure[],
): Promise<ShardpoolError> {
  // A concurrent overwrite or rm deletes the old version's fragments: that is not data loss.
  if (!(await pool.catalog.isCurrentVersion(object.key, object.versionId))) return changedDuringRead(pool, object);
  const reasons = failures
    .map((failure) => `fragment ${failure.fragmentIndex} on disk ${failure.diskId}: ${failure.reason}`)
    .join('; ');
  const startBytes = extent.extentIndex * object.extentSizeBytes;
  return new ShardpoolError(
    'EXTENT_UNRECOVERABLE',
    `object ${JSON.stringify(object.key)} extent ${extent.extentIndex} (bytes ${startBytes}–` +
      `${startBytes + extent.lengthBytes - 1}) cannot be rebuilt: ${readable} of ${codec.fragmentCount} fragments ` +
      `readable, ${codec.fragmentsNeeded} needed (${reasons})`,
    { key: object.key, extentIndex: extent.extentIndex, readable, needed: codec.fragmentsNeeded },
  );
}

async function changedDuringRead(pool: Pool, object: ObjectRow): Promise<ShardpoolError> {
  const stillExists = (await pool.catalog.getObject(object.key)) !== undefined;
  return new ShardpoolError(
    'OBJECT_CHANGED_DURING_READ',
    `object ${JSON.stringify(object.key)} was ${stillExists ? 'overwritten' : 'removed'} while it was being read`,
    { key: object.key },
  );
}

async function recordCounters(pool: Pool, stats: ReadStats): Promise<void> {
  // Fragments on failed or unreachable disks were never tried; only real read failures count as such.
  const readFailures = stats.fragmentFailures.filter((failure) => failure.reason !== 'UNAVAILABLE').length;
  if (stats.extentsDegraded === 0 && readFailures === 0) return;
  try {
    await pool.catalog.addToCounter(COUNTER_EXTENTS_READ_DEGRADED, stats.extentsDegraded);
    await pool.catalog.addToCounter(COUNTER_FRAGMENT_READ_FAILURES, readFailures);
  } catch {
    // Counting is best effort: a read must not fail because the catalog was busy.
  }
}
