// The Disk interface: what the pool needs of one member disk, whatever backs it (a directory now, a raw block device
// later). The pool never knows which; the disk knows nothing of objects beyond the identity in a fragment header.
import type { FragmentHeader } from '../format/fragment-header.js';

export type DiskKind = 'directory' | 'block-device';

export interface FragmentAddress {
  readonly versionId: string;
  readonly extentIndex: number;
  readonly fragmentIndex: number;
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

export interface Disk {
  readonly kind: DiskKind;
  readonly path: string;
  readonly poolUuid: string;
  readonly diskUuid: string;
  /** False for disks that may be members but cannot take new fragments yet (block devices in this version). */
  readonly acceptsFragments: boolean;

  /**
   * Stores one fragment. When the promise resolves the fragment's bytes are on stable storage but may not yet be
   * reachable after a crash: only flush() makes every fragment written before it durable.
   */
  writeFragment(fragment: FragmentToWrite, data: Buffer): Promise<void>;

  /** Makes every fragment written so far durable. Nothing may be acknowledged before this resolves. */
  flush(): Promise<void>;

  /**
   * Reads one fragment and verifies its header checksum, its identity (pool, disk, version, extent, fragment index)
   * and its data checksum. Throws FRAGMENT_MISSING, FRAGMENT_HEADER_INVALID, FRAGMENT_IDENTITY_MISMATCH,
   * FRAGMENT_CHECKSUM_MISMATCH or DISK_IO_FAILED.
   */
  readFragment(address: FragmentAddress): Promise<{ header: FragmentHeader; data: Buffer }>;

  /** Deletes one fragment; deleting a fragment that is not there is not an error. */
  deleteFragment(address: FragmentAddress): Promise<void>;

  /** Deletes every fragment of one object version (cleanup after a put that never committed). Returns the count. */
  deleteVersion(versionId: string): Promise<number>;

  /** Every fragment address present on the disk (for scrub and recovery). */
  listFragments(): AsyncIterable<FragmentAddress>;

  space(): Promise<DiskSpace>;

  /** Removes the disk's label so the disk no longer belongs to the pool (after it was drained). */
  release(): Promise<void>;

  /** Lets go of the disk (file descriptors, locks). The pool calls it when it closes. */
  close(): Promise<void>;
}
