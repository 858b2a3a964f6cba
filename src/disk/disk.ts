// The Disk interface: what the pool needs of one member disk, whatever backs it (a directory, a raw block device, or
// either on another node of the cluster, reached through its fragment service: src/disk/remote/). The pool never knows which; the disk knows nothing of objects beyond the identity in a fragment header.
import type { ShardpoolError } from '../errors.js';
import type { FragmentHeader } from '../format/fragment-header.js';

export type DiskKind = 'directory' | 'block-device';

/** The reason given (in an error's details) when the device at a path is not the disk that was expected there. */
export const NOT_THIS_DISK = 'not-this-disk';

export interface FragmentAddress {
  readonly versionId: string;
  readonly extentIndex: number;
  readonly fragmentIndex: number;
}

/** A fragment as the catalog knows it: where it is (block devices) and how long its record is. */
export interface FragmentLocation extends FragmentAddress {
  /** Byte offset of the fragment record on a block device; 0 (unused) on directory disks. */
  readonly locationBytes: number;
  /** Header plus data bytes. */
  readonly storedBytes: number;
}

/** What a disk found on itself by scanning (recover, scrub): a fragment whose header verified. */
export interface FoundFragment extends FragmentLocation {
  readonly key: string;
  readonly policy: FragmentHeader['policy'];
  readonly extentLengthBytes: number;
  readonly extentChecksum: Buffer;
}

/** What the pool hands a disk to store: the header fields the disk does not fill in itself, and the data. */
export type FragmentToWrite = Omit<FragmentHeader, 'poolUuid' | 'diskUuid' | 'locationBytes' | 'dataChecksum'> & {
  readonly dataChecksum: Buffer;
};

export interface DiskSpace {
  readonly capacityBytes: number;
  /** Bytes still free for new fragments. */
  readonly freeBytes: number;
}

export interface Stray {
  readonly what: string;
  readonly bytes: number;
  /** Gives the space back (durable with the next flush). */
  release(): Promise<void>;
}

/** How a block device is laid out and accessed (undefined for directory disks). */
export interface DiskGeometry {
  readonly logicalSectorBytes: number;
  readonly physicalSectorBytes: number;
  readonly allocationUnitBytes: number;
  /** True with O_DIRECT; false when O_SYNC stands in for it. */
  readonly directIo: boolean;
}

export interface Disk {
  readonly kind: DiskKind;
  readonly path: string;
  readonly poolUuid: string;
  readonly diskUuid: string;
  /** False when the disk cannot take new fragments now (a device opened read-only, or one that failed a flush). */
  readonly acceptsFragments: boolean;
  /**
   * Why the disk refuses writes since a flush failed (latched until the pool reopens it), else undefined. Reads may
   * still work; list-disks, /health and the metrics show it.
   */
  readonly latchedFailure: ShardpoolError | undefined;
  readonly geometry: DiskGeometry | undefined;

  /**
   * Stores one fragment. When the promise resolves the fragment's bytes are on stable storage but may not yet be
   * reachable after a crash: only flush() makes every fragment written before it durable.
   */
  writeFragment(fragment: FragmentToWrite, data: Buffer): Promise<{ readonly locationBytes: number }>;

  /** Makes every fragment written so far durable. Nothing may be acknowledged before this resolves. */
  flush(): Promise<void>;

  /**
   * Reads one fragment and verifies its header checksum, its identity (pool, disk, version, extent, fragment index)
   * and its data checksum. Throws FRAGMENT_MISSING, FRAGMENT_HEADER_INVALID, FRAGMENT_IDENTITY_MISMATCH,
   * FRAGMENT_CHECKSUM_MISMATCH or DISK_IO_FAILED. The caller owns the returned data. With a `destination` of the
   * data's exact length, the verified data is placed there and `data` is `destination` (a caller assembling an
   * extent reads each data fragment straight into its slot); otherwise, or when the length differs, `data` is new.
   */
  readFragment(fragment: FragmentLocation, destination?: Buffer): Promise<{ header: FragmentHeader; data: Buffer }>;

  /**
   * Reads and verifies one fragment like readFragment, for a caller that only needs to know it is intact (scrub):
   * the data is not handed out, so a device reads it into reused memory.
   */
  verifyFragment(fragment: FragmentLocation): Promise<FragmentHeader>;

  /**
   * Deletes one fragment (a block device frees its units; the free is durable with the next flush). Deleting a
   * fragment that is not there is not an error. Without a location, a device looks among its pending allocations.
   */
  deleteFragment(fragment: FragmentAddress & { readonly locationBytes?: number }): Promise<void>;

  /** Deletes every fragment of one object version (cleanup after a put that never committed). Returns the count. */
  deleteVersion(versionId: string): Promise<number>;

  /**
   * Every fragment on the disk whose header verifies, found by scanning the disk itself (for recover and scrub).
   * `expectedLocations` (where the catalog says records start) lets a device read those headers ahead, several at
   * once, instead of one after another; every header is still read from the device and verified.
   */
  scanFragments(expectedLocations?: ReadonlyArray<number>): AsyncIterable<FoundFragment>;

  /**
   * Whether a record a scan found is still on the disk, as the live content of its place (checked again after the
   * catalog is read: a collection deletes the record before its rows, so a record found earlier and unreferenced
   * now is an orphan only if it is still here).
   */
  holdsRecord(fragment: FoundFragment): Promise<boolean>;

  /**
   * Allocations the catalog has not yet been seen to reference (block devices; always empty for directories).
   * After a crash they are reconciled against the catalog on the next write-open. Always empty for a remote disk
   * (src/disk/remote/): the owning node's write-open reconciles its own disks' allocations.
   */
  pendingAllocations(): FragmentLocation[];

  /**
   * Space the disk holds that belongs to no verified fragment: allocated device units without a record, temp files
   * of interrupted writes, unreadable fragment files. For recover, which reports them and can release them.
   * `inFlight` says whether a version still has a write running (a put's intent, a move), whose traces are not strays.
   * A remote disk yields none: recover's stray handling runs on the node that owns the disk.
   */
  strays(scanned?: ReadonlyArray<FoundFragment>, inFlight?: (versionId: string) => Promise<boolean>): AsyncIterable<Stray>;

  /**
   * The catalog now references these fragments: their allocations are permanent. A remote disk sends them to the
   * owner in a batch, later; losing it is safe (the owner's next write-open keeps the allocations the catalog references).
   */
  settle(fragments: ReadonlyArray<FragmentAddress>): void;

  space(): Promise<DiskSpace>;

  /** Removes the disk's label so the disk no longer belongs to the pool (after it was drained). Only on the owning node: a remote disk refuses (NOT_ON_OWNING_NODE). */
  release(): Promise<void>;

  /** Lets go of the disk (file descriptors, locks). The pool calls it when it closes. */
  close(): Promise<void>;
}
