// A raw block device (or a device image file) as a member disk: fragment records stored by offset, no filesystem.
//
// Write path, per fragment: allocate whole units → write header + data (O_DIRECT, aligned, padded to 4 KiB) →
// queue an "allocate" journal entry. flush() is a group commit in rounds: each round is one fdatasync (making the
// data written so far durable, and the journal record of the previous round) followed by one journal record with
// every allocation and free queued since. Concurrent flushes join the round in progress, so N fragments written
// together cost one or two flushes, not 2N; a lone writer pays two.
// Only after flush() returned does the pool commit its catalog transaction that references the fragments.
import { assert } from '../../assert.js';
import { FRAGMENT_HEADER_FIXED_BYTES, KEY_LENGTH_MAX_BYTES } from '../../constants.js';
import { ShardpoolError, isShardpoolError } from '../../errors.js';
import type { PendingAllocation } from '../../format/allocator-checkpoint.js';
import {
  decodeFragmentHeader,
  encodeFragmentHeader,
  fragmentHeaderLengthBytes,
  verifyFragmentData,
  verifyFragmentIdentity,
  type FragmentHeader,
} from '../../format/fragment-header.js';
import { checkpointLengthBytes } from '../../format/allocator-checkpoint.js';
import { PENDING_ALLOCATIONS_MAX_COUNT, roundUp } from '../../format/device-layout.js';
import type { JournalEntry } from '../../format/journal-record.js';
import { isAligned } from '../../io/aligned-buffer.js';
import { dataBuffers, withLentBuffer } from '../../io/buffer-pool.js';
import { BlockFile, type DirectIoMode } from '../../io/block-io.js';
import { lockFile } from '../../io/file-lock.js';
import { killPoint } from '../../pool/kill-points.js';
import { NOT_THIS_DISK, type Disk, type DiskGeometry, type DiskSpace, type FoundFragment, type Stray, type FragmentAddress, type FragmentLocation, type FragmentToWrite } from '../disk.js';
import type { BlockStorage } from './block-storage.js';
import { eraseDeviceLabel, readDeviceLabel } from './device-label-store.js';
import { DeviceMetadata, pendingKey } from './device-metadata.js';
import type { UnitAllocator } from './unit-allocator.js';

/** A closing writer checkpoints once the journal is this full. */
const CHECKPOINT_AT_CLOSE_JOURNAL_FILL = 0.25;
/** Fragment records are padded to this, so every record starts and ends on a 4 KiB boundary. */
const RECORD_ALIGNMENT_BYTES = 4096;
/** A fragment header (with the longest key) fits in this many bytes: what a scan reads to identify a record. */
const HEADER_PROBE_BYTES = roundUp(FRAGMENT_HEADER_FIXED_BYTES + KEY_LENGTH_MAX_BYTES, RECORD_ALIGNMENT_BYTES);

/** The owner of units held allocated only while a free run is discarded (no fragment's). */
const DISCARD_HOLD = 'discard-hold';

/** When freed units are discarded (TRIM): at once after their free is durable, by `shardpool trim`, or never. */
import type { DiscardMode } from '../discard-mode.js';
export { DISCARD_MODES, type DiscardMode } from '../discard-mode.js';

export interface DeviceOpenOptions {
  readonly directIo: DirectIoMode;
  readonly discard?: DiscardMode;
  /** Writers hold the device with O_EXCL and an exclusive flock and load the allocator; readers only read. */
  readonly access: 'read' | 'write';
}

/** Lays out a device that admission has cleared and the operator confirmed. */
export async function formatDeviceDisk(
  devicePath: string,
  identity: { poolUuid: string; diskUuid: string },
  directIo: DirectIoMode,
): Promise<void> {
  const file = await BlockFile.open(devicePath, { directIo, exclusive: true, readOnly: false });
  try {
    await holdLock(file);
    await formatDeviceStorage(file, identity);
  } finally {
    await file.close();
  }
}

export async function formatDeviceStorage(storage: BlockStorage, identity: { poolUuid: string; diskUuid: string }): Promise<void> {
  const previous = await readDeviceLabel(storage);
  // Continue the old sequence (a re-used device): a stale surviving copy can never outrank the new label.
  const previousSequence = previous.state === 'labelled' ? previous.label.sequence : 0;
  await DeviceMetadata.format(storage, { poolUuid: identity.poolUuid, deviceUuid: identity.diskUuid, previousSequence });
}

export async function openDeviceDisk(
  devicePath: string,
  expected: { poolUuid: string; diskUuid: string },
  options: DeviceOpenOptions,
): Promise<DeviceDisk> {
  const file = await BlockFile.open(devicePath, {
    directIo: options.directIo,
    exclusive: options.access === 'write',
    readOnly: options.access === 'read',
  });
  try {
    if (options.access === 'write') await holdLock(file);
    const disk = await openDeviceStorage(file, expected, options.access);
    disk.discardMode = options.discard ?? 'batch';
    return disk;
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** Opens a device disk on any storage (tests pass a simulated one). */
export async function openDeviceStorage(
  storage: BlockStorage,
  expected: { poolUuid: string; diskUuid: string },
  access: 'read' | 'write',
): Promise<DeviceDisk> {
  const metadata = await DeviceMetadata.openLabel(storage);
  const label = metadata.deviceLabel;
  if (label.poolUuid !== expected.poolUuid || label.deviceUuid !== expected.diskUuid) {
    throw new ShardpoolError(
      'DISK_OFFLINE',
      `${storage.path} is labelled as device ${label.deviceUuid} of pool ${label.poolUuid}, not the expected device ` +
        `${expected.diskUuid}: a different device is at this path`,
      { path: storage.path, reason: NOT_THIS_DISK },
    );
  }
  if (storage.info.sizeBytes < label.deviceSizeBytes) {
    throw new ShardpoolError(
      'DISK_OFFLINE',
      `${storage.path} has ${storage.info.sizeBytes} bytes but was labelled with ${label.deviceSizeBytes}: it was truncated or ` +
        'replaced by a smaller device; its fragments are read from redundancy until it is removed',
      { path: storage.path },
    );
  }
  const state = access === 'write' ? await metadata.load() : undefined;
  return new DeviceDisk(storage, metadata, state?.allocator, state?.pending ?? new Map());
}

/** Both a shardpool process holding the pool and a probing one see the same flock, device or image file alike. */
async function holdLock(file: BlockFile): Promise<void> {
  if (!(await lockFile(file.fd, 'exclusive'))) {
    throw new ShardpoolError('DEVICE_BUSY', `${file.path} is held by another shardpool process`, { path: file.path });
  }
}

export interface GroupCommitStats {
  /** fdatasync calls issued by flush(). */
  flushes: number;
  discardedBytes: number;
  /** Group commits (each: data flush, journal record, journal flush). */
  batches: number;
  journalRecords: number;
  checkpoints: number;
}

export class DeviceDisk implements Disk {
  readonly kind = 'block-device' as const;
  readonly poolUuid: string;
  readonly diskUuid: string;
  readonly stats: GroupCommitStats = { flushes: 0, discardedBytes: 0, batches: 0, journalRecords: 0, checkpoints: 0 };
  discardMode: DiscardMode = 'batch';
  private queued: JournalEntry[] = [];
  /** Generations: every write or free bumps `changed`; a finished group commit raises `durable` to what it covered. */
  private changed = 0;
  private durable = 0;
  private batch: Promise<void> | undefined;
  /** A failed write or flush latches the device failed: a flush is never retried and trusted. */
  private failure: ShardpoolError | undefined;
  /**
   * The device's own record of whose units are whose, for every run allocated since it was opened (and every
   * pending allocation it opened with): start unit → owner. A delete frees a run only when this record (or, for a
   * run allocated before this open, the record's verified header with no in-process owner) says it is that
   * fragment's; units that merely look allocated are never freed (a second collector of the same version would
   * otherwise free a newer put's units that first fit handed out again).
   */
  private readonly owners = new Map<number, { owner: string; unitCount: number }>();
  /** One bit per data unit: set while the unit lies in a run of `owners`. */
  private readonly ownedUnits: Uint8Array;
  /**
   * Runs allocated in memory whose journal entry is not queued yet, by start unit: a fragment write in flight (its
   * allocate entry is queued when the write completes, so a flush counts only completed writes) and a discard hold.
   * A checkpoint records them free, so their entries, journaled after it, replay onto free units.
   */
  private readonly unjournaled = new Map<number, number>();
  /** Deletes of records allocated before this open, in flight by location (single-flight). */
  private readonly deletesInFlight = new Map<number, Promise<void>>();

  constructor(
    private readonly storage: BlockStorage,
    private readonly metadata: DeviceMetadata,
    /** Undefined when opened for reading only. */
    private readonly allocator: UnitAllocator | undefined,
    private readonly pending: Map<string, PendingAllocation>,
  ) {
    this.poolUuid = metadata.deviceLabel.poolUuid;
    this.diskUuid = metadata.deviceLabel.deviceUuid;
    this.ownedUnits = new Uint8Array(allocator ? Math.ceil(metadata.regions.dataUnits / 8) : 0);
    for (const [key, allocation] of pending) this.own(allocation.startUnit, allocation.unitCount, key);
  }

  get path(): string {
    return this.storage.path;
  }

  get acceptsFragments(): boolean {
    return this.allocator !== undefined && this.failure === undefined;
  }

  get latchedFailure(): ShardpoolError | undefined {
    return this.failure;
  }

  /** Where fragment records live on the device (everything before is labels, journal and allocator checkpoints). */
  get dataRegion(): { offsetBytes: number; lengthBytes: number } {
    const { regions } = this.metadata;
    return { offsetBytes: regions.dataOffsetBytes, lengthBytes: regions.dataUnits * regions.allocationUnitBytes };
  }

  /** Sector sizes, allocation unit and whether O_DIRECT is in use, for list-disks. */
  get geometry(): DiskGeometry {
    return {
      logicalSectorBytes: this.storage.info.logicalSectorBytes,
      physicalSectorBytes: this.storage.info.physicalSectorBytes,
      allocationUnitBytes: this.metadata.regions.allocationUnitBytes,
      directIo: this.storage.direct,
    };
  }

  async writeFragment(fragment: FragmentToWrite, data: Buffer): Promise<{ locationBytes: number }> {
    const allocator = this.writable();
    const headerBytes = fragmentHeaderLengthBytes(fragment.key);
    const recordBytes = roundUp(headerBytes + data.length, RECORD_ALIGNMENT_BYTES);
    const unitBytes = this.metadata.regions.allocationUnitBytes;
    const unitCount = Math.ceil(recordBytes / unitBytes);
    if (this.pending.size >= PENDING_ALLOCATIONS_MAX_COUNT) {
      // A checkpoint carries every pending allocation; one more could not be recorded. Refused, never latched: it
      // clears as the puts in flight commit (each records its progress, so none holds more than a few hundred).
      throw new ShardpoolError(
        'DEVICE_ALLOCATIONS_LIMIT',
        `${this.path} has ${this.pending.size} allocations not yet committed, as many as its checkpoint can carry; retry when puts in flight finish`,
        { path: this.path },
      );
    }
    const startUnit = allocator.allocate(unitCount);
    if (startUnit === undefined) {
      throw new ShardpoolError('DISK_FULL', `${this.path} has no run of ${unitCount} free units for a fragment`, { path: this.path });
    }
    const locationBytes = this.metadata.regions.dataOffsetBytes + startUnit * unitBytes;
    const allocation: PendingAllocation = { type: 'allocate', startUnit, unitCount, versionId: fragment.versionId, extentIndex: fragment.extentIndex, fragmentIndex: fragment.fragmentIndex };
    this.own(startUnit, unitCount, pendingKey(fragment));
    this.unjournaled.set(startUnit, unitCount);
    try {
      assert(locationBytes + recordBytes <= this.metadata.regions.dataOffsetBytes + allocator.unitCount * unitBytes, 'records stay inside the data region');
      const header = encodeFragmentHeader({ ...fragment, poolUuid: this.poolUuid, diskUuid: this.diskUuid, locationBytes });
      await this.writeRecord(header, data, recordBytes, locationBytes);
    } catch (error) {
      // Give the units back through the journal like any free (a checkpoint recorded them free meanwhile, and the
      // allocate entry queued here replays onto free units before its free).
      this.unjournaled.delete(startUnit);
      this.disown(startUnit, unitCount);
      allocator.free(startUnit, unitCount);
      this.queued.push(allocation, { type: 'free', startUnit, unitCount });
      this.changed += 1;
      throw this.latch('write', error);
    }
    this.unjournaled.delete(startUnit);
    this.pending.set(pendingKey(fragment), allocation);
    this.queued.push(allocation);
    this.changed += 1;
    return { locationBytes };
  }

  /**
   * Writes header + data + zero padding as one record. When the data's memory is page-aligned where the record's
   * second page begins (a writer that knows the header length lays its extents out so), the record goes out in one
   * gathered write straight from that memory, with only its first and last page assembled in lent buffers; otherwise
   * the whole record is assembled in a lent buffer. Either way the device sees the same bytes.
   */
  private async writeRecord(header: Buffer, data: Buffer, recordBytes: number, locationBytes: number): Promise<void> {
    const headerBytes = header.length;
    const inHead = (RECORD_ALIGNMENT_BYTES - (headerBytes % RECORD_ALIGNMENT_BYTES)) % RECORD_ALIGNMENT_BYTES;
    const middleBytes = Math.floor((data.length - inHead) / RECORD_ALIGNMENT_BYTES) * RECORD_ALIGNMENT_BYTES;
    if (middleBytes <= 0 || !isAligned(data.subarray(inHead), RECORD_ALIGNMENT_BYTES)) {
      await withLentBuffer(dataBuffers, recordBytes, async (buffer) => {
        header.copy(buffer);
        data.copy(buffer, headerBytes);
        buffer.fill(0, headerBytes + data.length); // the padding: a lent buffer holds earlier records' bytes
        await this.storage.write(buffer, 0, recordBytes, locationBytes);
      });
      return;
    }
    const head = dataBuffers.lend(headerBytes + inHead);
    const tailBytes = recordBytes - head.length - middleBytes;
    const tail = tailBytes > 0 ? dataBuffers.lend(tailBytes) : undefined;
    try {
      header.copy(head);
      data.copy(head, headerBytes, 0, inHead);
      const parts = [head, data.subarray(inHead, inHead + middleBytes)];
      if (tail) {
        const tailData = data.copy(tail, 0, inHead + middleBytes);
        tail.fill(0, tailData);
        parts.push(tail);
      }
      await this.storage.writeParts(parts, locationBytes);
    } finally {
      dataBuffers.giveBack(head);
      if (tail) dataBuffers.giveBack(tail);
    }
  }

  async flush(): Promise<void> {
    const target = this.changed;
    while (this.durable < target) {
      if (this.failure) throw this.failure;
      if (this.batch) {
        await this.batch.catch(() => undefined);
        continue;
      }
      this.batch = this.commitBatch().finally(() => {
        this.batch = undefined;
      });
      await this.batch;
    }
    if (this.failure) throw this.failure;
  }

  /** Runs `work` as a group-commit round of its own: after the round in flight, before the next. */
  private async runAlone(work: () => Promise<void>): Promise<void> {
    while (this.batch) await this.batch.catch(() => undefined);
    this.batch = work().finally(() => {
      this.batch = undefined;
    });
    await this.batch;
  }

  async readFragment(fragment: FragmentLocation, destination?: Buffer): Promise<{ header: FragmentHeader; data: Buffer }> {
    return this.readRecord(fragment, (header, data) => {
      // Out of the lent buffer before it goes back: into the caller's slot when it fits, else into new memory.
      const owned = destination?.length === data.length ? destination : Buffer.allocUnsafe(data.length);
      data.copy(owned);
      return { header, data: owned };
    });
  }

  async verifyFragment(fragment: FragmentLocation): Promise<FragmentHeader> {
    return this.readRecord(fragment, (header) => header);
  }

  /** Reads a record into a lent buffer, verifies it, and lets `use` take what it needs before the buffer goes back. */
  private async readRecord<T>(fragment: FragmentLocation, use: (header: FragmentHeader, data: Buffer) => T): Promise<T> {
    const { regions } = this.metadata;
    const source = `${this.path} at ${fragment.locationBytes}`;
    const recordBytes = roundUp(fragment.storedBytes, RECORD_ALIGNMENT_BYTES);
    const end = regions.dataOffsetBytes + regions.dataUnits * regions.allocationUnitBytes;
    if (fragment.locationBytes < regions.dataOffsetBytes || fragment.locationBytes + recordBytes > end || fragment.locationBytes % RECORD_ALIGNMENT_BYTES !== 0) {
      throw new ShardpoolError('FRAGMENT_MISSING', `${source}: the catalog's location is outside the data region`, { path: this.path });
    }
    return withLentBuffer(dataBuffers, recordBytes, async (buffer) => {
      try {
        await this.storage.read(buffer, 0, recordBytes, fragment.locationBytes);
      } catch (error) {
        throw isShardpoolError(error) ? error : new ShardpoolError('DISK_IO_FAILED', `read failed on ${source}: ${(error as Error).message}`, { path: this.path });
      }
      const header = decodeFragmentHeader(buffer, source);
      if (header.locationBytes !== fragment.locationBytes) {
        throw new ShardpoolError('FRAGMENT_IDENTITY_MISMATCH', `${source} holds a record written for offset ${header.locationBytes}`, { path: this.path });
      }
      verifyFragmentIdentity(header, { ...fragment, poolUuid: this.poolUuid, diskUuid: this.diskUuid }, source);
      const headerBytes = fragmentHeaderLengthBytes(header.key);
      const data = buffer.subarray(headerBytes, headerBytes + header.dataLengthBytes);
      verifyFragmentData(header, data, source);
      return use(header, data);
    });
  }

  async deleteFragment(fragment: FragmentAddress & { readonly locationBytes?: number }): Promise<void> {
    this.writable();
    const key = pendingKey(fragment);
    if (fragment.locationBytes === undefined || fragment.locationBytes <= 0) {
      // By address: only an allocation this device knows as pending (an uncommitted put's, or a drain copy's).
      const pending = this.pending.get(key);
      if (pending) this.freeOwnedRun(pending.startUnit, key);
      return;
    }
    const startUnit = this.unitAt(fragment.locationBytes);
    if (startUnit === undefined) return; // not a record start of this device
    const known = this.owners.get(startUnit);
    if (known) {
      if (known.owner === key) this.freeOwnedRun(startUnit, key);
      return; // else: the units were freed and given to another fragment; nothing of this one is left here
    }
    if (this.isOwned(startUnit, 1)) return; // inside a run allocated since the open: not a record of this fragment
    // Allocated before this open (or free): the verified header is the only record of whose the units are.
    const running = this.deletesInFlight.get(startUnit);
    if (running) return running;
    const deletion = this.deleteRecordFromBefore(fragment, startUnit).finally(() => this.deletesInFlight.delete(startUnit));
    this.deletesInFlight.set(startUnit, deletion);
    return deletion;
  }

  /** Frees the run of a record allocated before this open, once its header says it is this fragment's. */
  private async deleteRecordFromBefore(fragment: FragmentAddress & { readonly locationBytes?: number }, startUnit: number): Promise<void> {
    const run = await this.runOfRecordAt(fragment.locationBytes as number, fragment);
    if (!run) return;
    assert(run.startUnit === startUnit, 'a record run starts where its record does');
    // Checked again after the read: while it ran, its units may have been freed (by nobody but this single-flight
    // delete) or taken by a new allocation, which `owners` would show.
    if (this.owners.has(startUnit) || this.isOwned(run.startUnit, run.unitCount) || !this.allocator?.isRangeAllocated(run.startUnit, run.unitCount)) return;
    this.forgetPending(pendingKey(fragment), run.startUnit);
    this.allocator.free(run.startUnit, run.unitCount);
    this.queued.push({ type: 'free', startUnit: run.startUnit, unitCount: run.unitCount });
    this.changed += 1;
  }

  /** Frees a run this device allocated (or opened as pending) for `owner`, with its journal entry. */
  private freeOwnedRun(startUnit: number, owner: string): void {
    const allocator = this.writable();
    const run = this.owners.get(startUnit);
    assert(run !== undefined && run.owner === owner, 'only the owner of a run frees it');
    this.disown(startUnit, run.unitCount);
    this.forgetPending(owner, startUnit);
    allocator.free(startUnit, run.unitCount);
    this.queued.push({ type: 'free', startUnit, unitCount: run.unitCount });
    this.changed += 1;
  }

  /** Drops a pending allocation once its run is freed (only that run's: a move within the device has two). */
  private forgetPending(key: string, startUnit: number): void {
    if (this.pending.get(key)?.startUnit === startUnit) this.pending.delete(key);
  }

  /** The data unit a record location starts at, or undefined when it is not a unit start inside the data region. */
  private unitAt(locationBytes: number): number | undefined {
    const { regions } = this.metadata;
    const offset = locationBytes - regions.dataOffsetBytes;
    if (offset < 0 || offset % regions.allocationUnitBytes !== 0) return undefined;
    const unit = offset / regions.allocationUnitBytes;
    return unit < regions.dataUnits ? unit : undefined;
  }

  private own(startUnit: number, unitCount: number, owner: string): void {
    assert(!this.owners.has(startUnit) && !this.isOwned(startUnit, unitCount), 'a unit has one owner at a time');
    this.owners.set(startUnit, { owner, unitCount });
    for (let unit = startUnit; unit < startUnit + unitCount; unit += 1) this.ownedUnits[unit >> 3] = (this.ownedUnits[unit >> 3] as number) | (1 << (unit & 7));
  }

  private disown(startUnit: number, unitCount: number): void {
    const run = this.owners.get(startUnit);
    assert(run !== undefined && run.unitCount === unitCount, 'a run is disowned as it was owned');
    this.owners.delete(startUnit);
    for (let unit = startUnit; unit < startUnit + unitCount; unit += 1) this.ownedUnits[unit >> 3] = (this.ownedUnits[unit >> 3] as number) & ~(1 << (unit & 7));
  }

  /** True when any of the units lies in a run allocated since the open. */
  private isOwned(startUnit: number, unitCount: number): boolean {
    for (let unit = startUnit; unit < startUnit + unitCount; unit += 1) {
      if (((this.ownedUnits[unit >> 3] ?? 0) & (1 << (unit & 7))) !== 0) return true;
    }
    return false;
  }

  async deleteVersion(versionId: string): Promise<number> {
    const victims = [...this.pending.values()].filter((allocation) => allocation.versionId === versionId);
    for (const allocation of victims) await this.deleteFragment(allocation);
    return victims.length;
  }

  async *scanFragments(expectedLocations: ReadonlyArray<number> = []): AsyncIterable<FoundFragment> {
    const { regions } = this.metadata;
    const unitBytes = regions.allocationUnitBytes;
    // Only allocated units can hold live records (freed ones keep stale bytes). Without a trustworthy allocator
    // (damaged metadata) every unit is probed, and stale records may be listed too.
    const allocator = this.allocator ?? (await this.readOnlyAllocator());
    const runs = allocator ? [...allocator.allocatedRuns()] : [{ start: 0, unitCount: regions.dataUnits }];
    const ahead = new ProbesAhead((locationBytes) => this.probeRecordAt(locationBytes), expectedLocations);
    for (const run of runs) {
      let unit = run.start;
      while (unit < run.start + run.unitCount) {
        const locationBytes = regions.dataOffsetBytes + unit * unitBytes;
        const found = await ahead.probe(locationBytes);
        if (found && this.isLiveRecord(found)) {
          yield found;
          unit += Math.ceil(roundUp(found.storedBytes, RECORD_ALIGNMENT_BYTES) / unitBytes);
        } else {
          // Stale bytes: a freed record, or one in a run since handed to another fragment whose write is in flight.
          const owned = this.owners.get(unit);
          unit += owned && (!found || owned.owner !== pendingKey(found)) ? owned.unitCount : 1;
        }
      }
    }
  }

  async holdsRecord(fragment: FoundFragment): Promise<boolean> {
    const found = await this.probeRecordAt(fragment.locationBytes);
    return found !== undefined && pendingKey(found) === pendingKey(fragment) && this.isLiveRecord(found);
  }

  /**
   * True when a record just read is the live content of its units, checked after the read: they are allocated
   * and, when allocated since the open, to this very fragment. Otherwise the bytes are stale: the record was freed
   * (a collection), or first fit gave its units to another fragment whose write has not landed yet.
   */
  private isLiveRecord(found: FoundFragment): boolean {
    if (!this.allocator) return true; // damaged metadata: nothing trustworthy to check against
    const { regions } = this.metadata;
    const startUnit = this.unitAt(found.locationBytes);
    if (startUnit === undefined) return false;
    const unitCount = Math.ceil(roundUp(found.storedBytes, RECORD_ALIGNMENT_BYTES) / regions.allocationUnitBytes);
    if (startUnit + unitCount > regions.dataUnits || !this.allocator.isRangeAllocated(startUnit, unitCount)) return false;
    const owned = this.owners.get(startUnit);
    if (owned) return owned.owner === pendingKey(found) && owned.unitCount >= unitCount;
    return !this.isOwned(startUnit, unitCount);
  }

  /** `scanned`: what scanFragments just found, when the caller has it (saves a second scan). */
  /** Runs owned since the open (a write in flight among them) are never strays, so `inFlight` is not needed here. */
  async *strays(scanned?: ReadonlyArray<FoundFragment>): AsyncIterable<Stray> {
    const unitBytes = this.metadata.regions.allocationUnitBytes;
    for await (const run of this.unaccountedRuns(scanned)) {
      yield {
        what: `units ${run.startUnit}–${run.startUnit + run.unitCount - 1} allocated but holding no fragment record`,
        bytes: run.unitCount * unitBytes,
        release: async () => this.freeUnits(run.startUnit, run.unitCount),
      };
    }
  }

  /** Units allocated but holding no verified record's start or body (found by recover). */
  private async *unaccountedRuns(scanned?: ReadonlyArray<FoundFragment>): AsyncIterable<{ startUnit: number; unitCount: number }> {
    const allocator = this.allocator ?? (await this.readOnlyAllocator());
    if (!allocator) return; // damaged metadata: nothing trustworthy to compare against
    const { regions } = this.metadata;
    const unitBytes = regions.allocationUnitBytes;
    const covered = new Uint8Array(regions.dataUnits);
    for await (const found of scanned ?? this.scanFragments()) {
      const start = (found.locationBytes - regions.dataOffsetBytes) / unitBytes;
      const count = Math.ceil(roundUp(found.storedBytes, RECORD_ALIGNMENT_BYTES) / unitBytes);
      covered.fill(1, start, start + count);
    }
    // A run allocated since the open has an owner even before its record is written (a put in flight): not a stray.
    for (const [start, run] of this.owners) covered.fill(1, start, start + run.unitCount);
    for (const run of allocator.allocatedRuns()) {
      let start = -1;
      for (let unit = run.start; unit <= run.start + run.unitCount; unit += 1) {
        const loose = unit < run.start + run.unitCount && covered[unit] === 0;
        if (loose && start < 0) start = unit;
        if (!loose && start >= 0) {
          yield { startUnit: start, unitCount: unit - start };
          start = -1;
        }
      }
    }
  }

  /** Frees units that hold nothing (recover --cleanup); durable with the next flush. */
  private freeUnits(startUnit: number, unitCount: number): void {
    // Re-checked at release: a stray found by a scan is still unowned and allocated (nothing else frees it).
    if (this.isOwned(startUnit, unitCount) || !this.allocator?.isRangeAllocated(startUnit, unitCount)) return;
    this.writable().free(startUnit, unitCount);
    this.queued.push({ type: 'free', startUnit, unitCount });
    this.changed += 1;
  }

  /** How many of the three label copies fail their checks (scrub reports them, repair rewrites them). */
  async damagedLabelCopies(): Promise<number> {
    const verdict = await readDeviceLabel(this.storage);
    return verdict.state === 'labelled' ? verdict.damagedCopies : 3;
  }

  /** Rewrites every label copy from the current label (with the next sequence number). */
  async rewriteLabels(): Promise<void> {
    this.writable();
    await this.metadata.rewriteLabel();
  }

  /** Discards every free unit (batch TRIM). Allocated units are never touched. Returns the bytes discarded. */
  async trimFreeSpace(): Promise<number> {
    const allocator = this.writable();
    await this.flush();
    const before = this.stats.discardedBytes;
    for (const run of [...allocator.freeRuns()]) await this.discardIfFree(run.start, run.unitCount);
    return this.stats.discardedBytes - before;
  }

  get largestFreeRunBytes(): number {
    return (this.allocator?.largestFreeRun ?? 0) * this.metadata.regions.allocationUnitBytes;
  }

  /** True when first fit would place a record of `storedBytes` below `locationBytes` (defrag's test). */
  wouldPlaceBelow(locationBytes: number, storedBytes: number): boolean {
    const allocator = this.writable();
    const { regions } = this.metadata;
    const units = Math.ceil(roundUp(storedBytes, RECORD_ALIGNMENT_BYTES) / regions.allocationUnitBytes);
    const start = allocator.firstFit(units);
    return start !== undefined && regions.dataOffsetBytes + start * regions.allocationUnitBytes < locationBytes;
  }

  /**
   * Discards a run that is free, holding it allocated in memory meanwhile so no concurrent write can land in it
   * between the check and the discard (the discard runs on another thread and could overtake the write).
   */
  private async discardIfFree(startUnit: number, unitCount: number): Promise<void> {
    const allocator = this.writable();
    if (!allocator.isRangeFree(startUnit, unitCount)) return;
    const { regions } = this.metadata;
    allocator.markAllocated(startUnit, unitCount);
    this.own(startUnit, unitCount, DISCARD_HOLD);
    this.unjournaled.set(startUnit, unitCount);
    try {
      await this.storage.discard(regions.dataOffsetBytes + startUnit * regions.allocationUnitBytes, unitCount * regions.allocationUnitBytes);
      this.stats.discardedBytes += unitCount * regions.allocationUnitBytes;
    } catch {
      // A device without discard support simply keeps the bytes; nothing depends on it.
    } finally {
      this.unjournaled.delete(startUnit);
      this.disown(startUnit, unitCount);
      allocator.free(startUnit, unitCount);
    }
  }

  pendingAllocations(): FragmentLocation[] {
    const { regions } = this.metadata;
    return [...this.pending.values()].map((allocation) => ({
      versionId: allocation.versionId,
      extentIndex: allocation.extentIndex,
      fragmentIndex: allocation.fragmentIndex,
      locationBytes: regions.dataOffsetBytes + allocation.startUnit * regions.allocationUnitBytes,
      storedBytes: allocation.unitCount * regions.allocationUnitBytes,
    }));
  }

  /** The catalog references these now: they stop being pending; the device still knows they are theirs (`owners`). */
  settle(fragments: ReadonlyArray<FragmentAddress>): void {
    for (const fragment of fragments) this.pending.delete(pendingKey(fragment));
  }

  async space(): Promise<DiskSpace> {
    const { regions } = this.metadata;
    const capacityBytes = regions.dataUnits * regions.allocationUnitBytes;
    const allocator = this.allocator ?? (await this.readOnlyAllocator());
    return { capacityBytes, freeBytes: (allocator?.freeUnits ?? 0) * regions.allocationUnitBytes };
  }

  private readOnlyView: UnitAllocator | undefined;

  /** A reader has no allocator of its own; it reads the persisted state (never writing) when one is needed. */
  private async readOnlyAllocator(): Promise<UnitAllocator | undefined> {
    if (!this.readOnlyView) {
      try {
        this.readOnlyView = (await this.metadata.load()).allocator;
      } catch (error) {
        if (!isShardpoolError(error, 'DEVICE_METADATA_INVALID')) throw error;
      }
    }
    return this.readOnlyView;
  }

  /** Erases the labels; the device belongs to no pool afterwards, so nothing more is written to it, not even at close. */
  async release(): Promise<void> {
    await this.flush();
    this.released = true;
    await eraseDeviceLabel(this.storage);
  }

  private released = false;

  /**
   * A writer flushes; it also checkpoints past a quarter-full journal, or once the journal is longer than a
   * checkpoint would be, so an open never replays much. The next write-open replays the journal and looks every
   * allocation in it up in the catalog (its pending allocations); a checkpoint records the settled ones as what they
   * are. Not at every close: a checkpoint rewrites the whole bitmap, 8 MiB per TiB, too much to pay for every small
   * command on a large device — but on a small one it costs less than the next open's replay would.
   */
  async close(): Promise<void> {
    try {
      if (this.allocator && !this.failure && !this.released) {
        await this.flush();
        const checkpointBytes = checkpointLengthBytes(this.metadata.regions.dataUnits, this.pending.size);
        if (this.metadata.journalFill >= CHECKPOINT_AT_CLOSE_JOURNAL_FILL || this.metadata.journalUsedBytes >= checkpointBytes) {
          await this.runAlone(() => this.checkpoint());
        }
      }
    } finally {
      await this.storage.close();
    }
  }

  /**
   * One group commit round: fdatasync, then append one journal record with every change queued so far. The record
   * becomes durable with the next round's fdatasync, which also makes that round's data durable: under load each
   * round costs one flush, and a lone writer's flush() simply runs two rounds. Changes count as durable only when
   * the record that carries them was flushed, and a record is written only after the data it allocates was.
   */
  private async commitBatch(): Promise<void> {
    const coveredGeneration = this.changed;
    try {
      await this.storage.flush();
      this.stats.flushes += 1;
      killPoint('device.data-flushed');
      if (this.unsyncedJournalGeneration !== undefined) {
        this.durable = Math.max(this.durable, this.unsyncedJournalGeneration);
        this.unsyncedJournalGeneration = undefined;
        killPoint('device.journal-flushed');
        // Frees are durable now: with online discard, their units are TRIMmed (if nothing took them meanwhile).
        const frees = this.unsyncedFrees;
        this.unsyncedFrees = [];
        if (this.discardMode === 'online') for (const free of frees) await this.discardIfFree(free.startUnit, free.unitCount);
      }
      if (this.queued.length === 0) {
        // Every change up to here is in a record that is now durable.
        this.durable = Math.max(this.durable, coveredGeneration);
      } else if (this.metadata.fits(this.queued.length)) {
        const entries = this.queued;
        this.queued = [];
        await this.metadata.append(entries);
        this.stats.journalRecords += 1;
        killPoint('device.journal-written');
        this.unsyncedJournalGeneration = coveredGeneration;
        this.unsyncedFrees = entries.filter((entry) => entry.type === 'free');
      } else {
        // The journal is full: a checkpoint records the allocator as it is, queued changes included.
        await this.checkpoint();
        this.durable = Math.max(this.durable, coveredGeneration);
      }
      this.stats.batches += 1;
    } catch (error) {
      throw this.latch('flush', error);
    }
  }

  /** The generation covered by the last journal record written but not yet flushed, and the frees it carries. */
  private unsyncedJournalGeneration: number | undefined;
  private unsyncedFrees: JournalEntry[] = [];

  /**
   * Every in-memory change but the unjournaled runs is also a queued entry, so the allocator equals the journaled
   * state plus the queue plus those runs. The checkpoint snapshots the allocator (unjournaled runs shown free) before
   * its first await; the entries queued up to that instant are reflected in it and dropped, later ones stay queued
   * for the next record. It runs inside a group-commit round (or alone, as one: runAlone), never beside one, since a
   * round takes the queue.
   */
  private async checkpoint(): Promise<void> {
    const allocator = this.writable();
    const reflected = this.queued.length;
    const unjournaled = [...this.unjournaled].map(([start, unitCount]) => ({ start, unitCount }));
    await this.metadata.checkpoint(allocator, [...this.pending.values()], unjournaled);
    this.queued.splice(0, reflected);
    this.stats.checkpoints += 1;
  }

  /** Reads the header at a location to learn how many units the record there spans; undefined if none is there. */
  private async runOfRecordAt(locationBytes: number, expected: FragmentAddress): Promise<{ startUnit: number; unitCount: number } | undefined> {
    const found = await this.probeRecordAt(locationBytes);
    if (!found || pendingKey(found) !== pendingKey(expected)) return undefined;
    const { regions } = this.metadata;
    const startUnit = (locationBytes - regions.dataOffsetBytes) / regions.allocationUnitBytes;
    const unitCount = Math.ceil(roundUp(found.storedBytes, RECORD_ALIGNMENT_BYTES) / regions.allocationUnitBytes);
    for (let unit = startUnit; unit < startUnit + unitCount; unit += 1) {
      if (!this.allocator?.isAllocated(unit)) return undefined; // already freed
    }
    return { startUnit, unitCount };
  }

  /** Reads and decodes the record header at a location, in lent memory; undefined if no record of ours starts there. */
  private async probeRecordAt(locationBytes: number): Promise<FoundFragment | undefined> {
    const { regions } = this.metadata;
    const end = regions.dataOffsetBytes + regions.dataUnits * regions.allocationUnitBytes;
    const length = Math.min(HEADER_PROBE_BYTES, regions.allocationUnitBytes, end - locationBytes);
    if (length < RECORD_ALIGNMENT_BYTES) return undefined;
    return withLentBuffer(dataBuffers, length, (probe) => this.probeRecord(probe, locationBytes));
  }

  private async probeRecord(probe: Buffer, locationBytes: number): Promise<FoundFragment | undefined> {
    const length = probe.length;
    await this.storage.read(probe, 0, length, locationBytes);
    try {
      const header = decodeFragmentHeader(probe.subarray(0, length), `${this.path} at ${locationBytes}`);
      if (header.locationBytes !== locationBytes || header.poolUuid !== this.poolUuid || header.diskUuid !== this.diskUuid) return undefined;
      return {
        versionId: header.versionId,
        extentIndex: header.extentIndex,
        fragmentIndex: header.fragmentIndex,
        locationBytes,
        storedBytes: fragmentHeaderLengthBytes(header.key) + header.dataLengthBytes,
        key: header.key,
        policy: header.policy,
        extentLengthBytes: header.extentLengthBytes,
        extentChecksum: header.extentChecksum,
      };
    } catch (error) {
      if (isShardpoolError(error)) return undefined;
      throw error;
    }
  }

  private writable(): UnitAllocator {
    if (this.failure) throw this.failure;
    assert(this.allocator !== undefined, 'only a device opened for writing changes its allocation');
    return this.allocator;
  }

  /**
   * A failed flush latches the device: the writes it was to make durable may be lost, so the device takes no more
   * (and every later flush fails) until it is reopened. Only I/O failures latch; a refusal by a logical limit (a
   * typed error other than DISK_IO_FAILED) fails that call alone and leaves the device as it was.
   */
  private latch(what: string, error: unknown): ShardpoolError {
    if (isShardpoolError(error) && error.code !== 'DISK_IO_FAILED') return error;
    const failure = isShardpoolError(error)
      ? error
      : new ShardpoolError(
          'DISK_IO_FAILED',
          `${what} failed on ${this.path}: ${(error as Error).message}; the device is treated as failed until reopened`,
          { path: this.path },
          { cause: error },
        );
    if (what === 'flush') this.failure = failure;
    return failure;
  }
}

/** Header probes kept in flight ahead of a scan, at the locations the catalog expects records. */
const PROBES_IN_FLIGHT = 16;

/**
 * Reads record headers ahead of a sequential scan. A scan learns where the next record starts only from the current
 * one's header, so alone it waits for one read at a time; the catalog's locations let it start the next reads early.
 * A probe at a location the scan never reaches (the catalog was wrong) is simply dropped; its failure, if any, is
 * reported only if the scan asks for that location.
 */
class ProbesAhead {
  private readonly expected: number[];
  private next = 0;
  private readonly inFlight = new Map<number, Promise<{ found: FoundFragment | undefined } | { error: unknown }>>();

  constructor(
    private readonly probeAt: (locationBytes: number) => Promise<FoundFragment | undefined>,
    expectedLocations: ReadonlyArray<number>,
  ) {
    this.expected = [...new Set(expectedLocations)].sort((a, b) => a - b);
  }

  async probe(locationBytes: number): Promise<FoundFragment | undefined> {
    for (const location of this.inFlight.keys()) if (location < locationBytes) this.inFlight.delete(location);
    while (this.next < this.expected.length && (this.expected[this.next] as number) < locationBytes) this.next += 1;
    const early = this.inFlight.get(locationBytes);
    this.inFlight.delete(locationBytes);
    this.startAhead(locationBytes);
    if (!early) return this.probeAt(locationBytes);
    const result = await early;
    if ('error' in result) throw result.error;
    return result.found;
  }

  private startAhead(after: number): void {
    while (this.inFlight.size < PROBES_IN_FLIGHT && this.next < this.expected.length) {
      const location = this.expected[this.next] as number;
      this.next += 1;
      if (location <= after) continue;
      // Settled, so a probe the scan never asks for cannot become an unhandled rejection.
      this.inFlight.set(location, this.probeAt(location).then((found) => ({ found }), (error: unknown) => ({ error })));
    }
  }
}
