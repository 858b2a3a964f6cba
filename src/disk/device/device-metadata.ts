// The persistent allocation state of a block device: label → checkpoint → journal.
//
// The allocator's truth on the device is the active checkpoint (a bitmap plus the pending allocations) followed by
// the journal records written since it. Every group commit appends one record (cost O(changes)); when the journal
// is full, or a writer closes the device, a checkpoint is written to the inactive slot, flushed, and made active by
// rewriting the label copies one by one, each flushed. The journal then restarts at its first block with the
// sequence the label names, so a record left over from before can never be mistaken for a new one.
import { assert } from '../../assert.js';
import { DEVICE_FORMAT_VERSION } from '../../constants.js';
import { ShardpoolError, isShardpoolError } from '../../errors.js';
import {
  checkpointLengthBytes,
  decodeAllocatorCheckpoint,
  encodeAllocatorCheckpoint,
  peekCheckpointPendingCount,
  type PendingAllocation,
} from '../../format/allocator-checkpoint.js';
import { NO_CHECKPOINT_SLOT, type DeviceLabel, type DeviceRegions } from '../../format/device-label.js';
import { checkpointBitmapBytes, checkpointHeaderBytes, planDeviceRegions } from '../../format/device-layout.js';
import {
  decodeJournalRecord,
  encodeJournalRecord,
  journalRecordLengthBytes,
  peekJournalRecordLength,
  type JournalEntry,
} from '../../format/journal-record.js';
import { allocateAlignedBuffer } from '../../io/aligned-buffer.js';
import { killPoint } from '../../pool/kill-points.js';
import type { BlockStorage } from './block-storage.js';
import { readDeviceLabel, writeDeviceLabel } from './device-label-store.js';
import { UnitAllocator } from './unit-allocator.js';

/** The allocator state a device opens with, rebuilt from its checkpoint and journal. */
export interface LoadedState {
  readonly allocator: UnitAllocator;
  /** Allocations not yet settled, keyed by fragment address (versionId.extent.fragment). */
  readonly pending: Map<string, PendingAllocation>;
  readonly replayedRecords: number;
}

/** Journal bytes one replay request reads (records are cut out of it). */
const JOURNAL_REPLAY_WINDOW_BYTES = 256 * 1024;

/** The part of the journal replay read last. */
interface JournalWindow {
  offsetBytes: number;
  bytes: Buffer;
}

export function pendingKey(address: { versionId: string; extentIndex: number; fragmentIndex: number }): string {
  return `${address.versionId}.${address.extentIndex}.${address.fragmentIndex}`;
}

export class DeviceMetadata {
  private journalTailBytes = 0;
  private nextSequence: number;
  /** Journal writes are padded to this: the physical sector, at least 4 KiB, so no two records share a sector. */
  readonly journalBlockBytes: number;

  private constructor(
    private readonly storage: BlockStorage,
    private label: DeviceLabel,
  ) {
    this.nextSequence = label.journalSequence;
    this.journalBlockBytes = Math.max(4096, label.physicalSectorBytes);
  }

  get regions(): DeviceRegions {
    return this.label.regions;
  }

  get deviceLabel(): DeviceLabel {
    return this.label;
  }

  /** Lays out a fresh device: every unit free, no checkpoint yet, the journal starting at sequence 1. */
  static async format(storage: BlockStorage, identity: { poolUuid: string; deviceUuid: string; previousSequence: number }): Promise<void> {
    const regions = planDeviceRegions(storage.info.sizeBytes);
    if (regions.dataUnits < 16) {
      throw new ShardpoolError('DEVICE_TOO_SMALL', `${storage.path} leaves only ${regions.dataUnits} data units after its metadata`, {
        path: storage.path,
      });
    }
    // Zero the journal's first block so nothing left there is ever replayed (it would fail its checksum anyway).
    const zeros = allocateAlignedBuffer(Math.max(4096, storage.info.physicalSectorBytes));
    await storage.write(zeros, 0, zeros.length, regions.journalOffsetBytes);
    // TRIM the data region: a fresh device holds nothing worth keeping, and thin or flash storage gets the space back.
    await storage.discard(regions.dataOffsetBytes, regions.dataUnits * regions.allocationUnitBytes).catch(() => undefined);
    await storage.flush();
    await writeDeviceLabel(storage, {
      formatVersion: DEVICE_FORMAT_VERSION,
      sequence: identity.previousSequence + 1,
      deviceSizeBytes: storage.info.sizeBytes,
      logicalSectorBytes: storage.info.logicalSectorBytes,
      physicalSectorBytes: storage.info.physicalSectorBytes,
      createdAtMs: Date.now(),
      poolUuid: identity.poolUuid,
      deviceUuid: identity.deviceUuid,
      regions,
      activeCheckpointSlot: NO_CHECKPOINT_SLOT,
      journalSequence: 1,
    });
  }

  /** Reads the label only (readers need no allocator). */
  static async openLabel(storage: BlockStorage): Promise<DeviceMetadata> {
    const verdict = await readDeviceLabel(storage);
    if (verdict.state === 'unreadable') {
      throw new ShardpoolError('DEVICE_LABEL_INVALID', `every label copy on ${storage.path} is damaged (${verdict.why})`, {
        path: storage.path,
      });
    }
    if (verdict.state === 'unlabelled') {
      throw new ShardpoolError('DISK_OFFLINE', `${storage.path} carries no shardpool label (another device at this path?)`, {
        path: storage.path,
        reason: 'not-this-disk',
      });
    }
    return new DeviceMetadata(storage, verdict.label);
  }

  /** Rebuilds the allocator: the active checkpoint, then every journal record after it, in sequence order. */
  async load(): Promise<LoadedState> {
    const { regions } = this.label;
    let allocator = new UnitAllocator(regions.dataUnits);
    const pending = new Map<string, PendingAllocation>();
    if (this.label.activeCheckpointSlot !== NO_CHECKPOINT_SLOT) {
      const checkpoint = await this.readCheckpoint(this.label.activeCheckpointSlot);
      if (checkpoint.journalSequence !== this.label.journalSequence) {
        throw this.metadataError(`checkpoint covers the journal up to ${checkpoint.journalSequence}, the label says ${this.label.journalSequence}`);
      }
      allocator = new UnitAllocator(regions.dataUnits, checkpoint.bitmap);
      for (const entry of checkpoint.pending) pending.set(pendingKey(entry), entry);
    }
    // Which pending allocation starts at a unit: a free finds its allocation at once (a scan of every pending one
    // per free made replaying a journal of many small puts and deletes quadratic).
    const startingAt = new Map<number, string>();
    for (const [key, allocation] of pending) startingAt.set(allocation.startUnit, key);
    let replayedRecords = 0;
    const window: JournalWindow = { offsetBytes: 0, bytes: Buffer.alloc(0) };
    for (;;) {
      const record = await this.readRecordAt(this.journalTailBytes, window);
      if (!record || record.sequence !== this.nextSequence || record.deviceUuid !== this.label.deviceUuid) break;
      for (const entry of record.entries) this.apply(allocator, pending, startingAt, entry);
      this.journalTailBytes += record.lengthBytes;
      this.nextSequence += 1;
      replayedRecords += 1;
    }
    return { allocator, pending, replayedRecords };
  }

  /** True when a record of `entryCount` entries still fits after the tail. */
  fits(entryCount: number): boolean {
    return this.journalTailBytes + journalRecordLengthBytes(entryCount, this.journalBlockBytes) <= this.label.regions.journalLengthBytes;
  }

  get journalIsEmpty(): boolean {
    return this.journalTailBytes === 0;
  }

  /** Journal bytes written since the active checkpoint (what the next open replays). */
  get journalUsedBytes(): number {
    return this.journalTailBytes;
  }

  /** How much of the journal region is in use, 0 to 1. */
  get journalFill(): number {
    return this.journalTailBytes / this.label.regions.journalLengthBytes;
  }

  /** Appends one record at the tail. The caller flushes; the record counts only once that flush returned. */
  async append(entries: ReadonlyArray<JournalEntry>): Promise<void> {
    assert(this.fits(entries.length), 'the caller checkpoints before the journal overflows');
    const record = encodeJournalRecord({ sequence: this.nextSequence, deviceUuid: this.label.deviceUuid, entries: [...entries] }, this.journalBlockBytes);
    const buffer = allocateAlignedBuffer(record.length);
    record.copy(buffer);
    await this.storage.write(buffer, 0, record.length, this.label.regions.journalOffsetBytes + this.journalTailBytes);
    this.journalTailBytes += record.length;
    this.nextSequence += 1;
  }

  /**
   * Writes the allocator state to the inactive slot, flushes, then makes it active through the label. Every record
   * so far is reflected in it, so the journal starts over.
   */
  async checkpoint(
    allocator: UnitAllocator,
    pending: ReadonlyArray<PendingAllocation>,
    /** Runs allocated in memory whose journal entries are not queued yet: recorded free, see UnitAllocator.snapshot. */
    unjournaled: Iterable<{ start: number; unitCount: number }> = [],
  ): Promise<void> {
    const { regions } = this.label;
    const slot = this.label.activeCheckpointSlot === 0 ? 1 : 0;
    const bytes = encodeAllocatorCheckpoint({
      journalSequence: this.nextSequence,
      dataUnits: regions.dataUnits,
      deviceUuid: this.label.deviceUuid,
      bitmap: allocator.snapshot(unjournaled),
      pending: [...pending],
    });
    if (bytes.length > regions.checkpointSlotLengthBytes) {
      throw new ShardpoolError('DISK_FULL', `${this.storage.path}: ${pending.length} allocations in flight exceed what a checkpoint holds`, {
        path: this.storage.path,
      });
    }
    const buffer = allocateAlignedBuffer(bytes.length);
    bytes.copy(buffer);
    await this.storage.write(buffer, 0, bytes.length, regions.checkpointSlotOffsetsBytes[slot]);
    await this.storage.flush();
    killPoint('device.checkpoint-written');
    const next: DeviceLabel = {
      ...this.label,
      sequence: this.label.sequence + 1,
      activeCheckpointSlot: slot,
      journalSequence: this.nextSequence,
    };
    await writeDeviceLabel(this.storage, next, () => killPoint('device.label-written'));
    this.label = next;
    this.journalTailBytes = 0;
  }

  /** Rewrites all label copies, unchanged but for the next sequence number (repairs a damaged copy). */
  async rewriteLabel(): Promise<void> {
    const next: DeviceLabel = { ...this.label, sequence: this.label.sequence + 1 };
    await writeDeviceLabel(this.storage, next);
    this.label = next;
  }

  private apply(allocator: UnitAllocator, pending: Map<string, PendingAllocation>, startingAt: Map<number, string>, entry: JournalEntry): void {
    const inRange = entry.startUnit + entry.unitCount <= allocator.unitCount;
    if (!inRange) throw this.metadataError(`journal entry for units ${entry.startUnit}+${entry.unitCount} is outside the device`);
    if (entry.type === 'allocate') {
      for (let unit = entry.startUnit; unit < entry.startUnit + entry.unitCount; unit += 1) {
        if (allocator.isAllocated(unit)) throw this.metadataError(`journal allocates unit ${unit} twice`);
      }
      allocator.markAllocated(entry.startUnit, entry.unitCount);
      pending.set(pendingKey(entry), entry);
      startingAt.set(entry.startUnit, pendingKey(entry));
      return;
    }
    for (let unit = entry.startUnit; unit < entry.startUnit + entry.unitCount; unit += 1) {
      if (!allocator.isAllocated(unit)) throw this.metadataError(`journal frees unit ${unit}, which is free`);
    }
    allocator.free(entry.startUnit, entry.unitCount);
    const key = startingAt.get(entry.startUnit);
    startingAt.delete(entry.startUnit);
    // The key may name a newer allocation of the same fragment elsewhere (a move within the device): only the one
    // starting here is freed.
    if (key !== undefined && pending.get(key)?.startUnit === entry.startUnit) pending.delete(key);
  }

  private async readCheckpoint(slot: number): Promise<ReturnType<typeof decodeAllocatorCheckpoint>> {
    const { regions } = this.label;
    const offset = regions.checkpointSlotOffsetsBytes[slot === 0 ? 0 : 1];
    const headerBytes = checkpointHeaderBytes();
    const header = allocateAlignedBuffer(headerBytes);
    await this.storage.read(header, 0, headerBytes, offset);
    const pendingCount = peekCheckpointPendingCount(header);
    const length = checkpointLengthBytes(regions.dataUnits, pendingCount ?? 0);
    if (pendingCount === undefined || length > regions.checkpointSlotLengthBytes) {
      throw this.metadataError(`checkpoint slot ${slot} does not hold a checkpoint`);
    }
    const bytes = allocateAlignedBuffer(length);
    await this.storage.read(bytes, 0, length, offset);
    assert(checkpointBitmapBytes(regions.dataUnits) <= length, 'the bitmap fits the checkpoint');
    return decodeAllocatorCheckpoint(bytes, { dataUnits: regions.dataUnits, deviceUuid: this.label.deviceUuid }, `${this.storage.path} slot ${slot}`);
  }

  /**
   * The record at `offsetBytes` into the journal, or undefined at the end (nothing, torn, or corrupt). Replay reads
   * the journal a window at a time (one request per JOURNAL_REPLAY_WINDOW_BYTES, not two per record): the bytes
   * decoded are the same, only fewer requests fetch them.
   */
  private async readRecordAt(
    offsetBytes: number,
    window: JournalWindow,
  ): Promise<{ sequence: number; deviceUuid: string; entries: JournalEntry[]; lengthBytes: number } | undefined> {
    const { regions } = this.label;
    const room = regions.journalLengthBytes - offsetBytes;
    if (room < this.journalBlockBytes) return undefined;
    const first = await this.journalBytes(window, offsetBytes, this.journalBlockBytes);
    const length = peekJournalRecordLength(first, this.journalBlockBytes, room);
    if (length === undefined) return undefined;
    const bytes = await this.journalBytes(window, offsetBytes, length);
    try {
      const record = decodeJournalRecord(bytes, `${this.storage.path} journal +${offsetBytes}`);
      return { ...record, lengthBytes: length };
    } catch (error) {
      if (isShardpoolError(error, 'JOURNAL_RECORD_INVALID')) return undefined; // a torn tail: replay ends here
      throw error;
    }
  }

  /** `lengthBytes` of the journal from `offsetBytes` (both block-aligned and inside it), through the replay window. */
  private async journalBytes(window: JournalWindow, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const { regions } = this.label;
    assert(offsetBytes % this.journalBlockBytes === 0 && offsetBytes + lengthBytes <= regions.journalLengthBytes, 'journal reads stay block-aligned inside the journal');
    if (offsetBytes < window.offsetBytes || offsetBytes + lengthBytes > window.offsetBytes + window.bytes.length) {
      const room = regions.journalLengthBytes - offsetBytes;
      const windowBytes = Math.min(room - (room % this.journalBlockBytes), Math.max(lengthBytes, JOURNAL_REPLAY_WINDOW_BYTES));
      let bytes = allocateAlignedBuffer(windowBytes);
      try {
        await this.storage.read(bytes, 0, bytes.length, regions.journalOffsetBytes + offsetBytes);
      } catch {
        // The window reaches past the records into journal space no replay needs; a bad sector there must not
        // fail the open, so only the bytes asked for are read again (and a failure of those is the open's).
        bytes = allocateAlignedBuffer(lengthBytes);
        await this.storage.read(bytes, 0, bytes.length, regions.journalOffsetBytes + offsetBytes);
      }
      window.offsetBytes = offsetBytes;
      window.bytes = bytes;
    }
    const start = offsetBytes - window.offsetBytes;
    return window.bytes.subarray(start, start + lengthBytes);
  }

  private metadataError(why: string): ShardpoolError {
    return new ShardpoolError('DEVICE_METADATA_INVALID', `${this.storage.path}: ${why}`, { path: this.storage.path });
  }
}
