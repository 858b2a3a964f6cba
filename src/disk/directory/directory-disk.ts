// A directory on a mounted filesystem used as a disk: each fragment is one file, header + data.
// File names come from the object version UUID and numeric indexes only, never from keys, so no key can name a path.
//   <disk>/disk.json                                   label (format/disk-label.ts)
//   <disk>/fragments/<vv>/<version>.<extent>.<frag>     fragment file (format/fragment-header.ts + data)
// where <vv> is the first two hex digits of the version UUID, to keep directories small.
import * as path from 'node:path';
import { assert } from '../../assert.js';
import { FORMAT_VERSION, FRAGMENT_HEADER_FIXED_BYTES, KEY_LENGTH_MAX_BYTES } from '../../constants.js';
import { ShardpoolError, isShardpoolError, systemErrorCode } from '../../errors.js';
import { DISK_LABEL_FILE_NAME, decodeDiskLabel, encodeDiskLabel, type DiskLabel } from '../../format/disk-label.js';
import {
  decodeFragmentHeader,
  encodeFragmentHeader,
  fragmentHeaderLengthBytes,
  verifyFragmentData,
  verifyFragmentIdentity,
  type FragmentHeader,
} from '../../format/fragment-header.js';
import { isUuid } from '../../format/uuid.js';
import {
  TEMP_FILE_MARKER,
  ensureDirectory,
  fileSizeBytes,
  filesystemSpace,
  fsyncDirectory,
  listDirectory,
  pathKind,
  readFileHead,
  readFileIfExists,
  removeFileIfExists,
  writeFileDurable,
  writeFileSynced,
} from '../../io/durable-files.js';
import type { Disk, DiskSpace, FoundFragment, FragmentAddress, FragmentLocation, FragmentToWrite, Stray } from '../disk.js';
import { DirectorySyncs } from './directory-syncs.js';

const FRAGMENTS_DIRECTORY = 'fragments';
const FRAGMENT_SUFFIX = '.frag';
/** Entries a fresh filesystem root may already hold; anything else makes a directory "not empty". */
const IGNORABLE_ENTRIES = new Set(['lost+found']);

/** Labels an empty directory as a disk of the pool. Refuses a directory that holds anything else. */
export async function formatDirectoryDisk(diskPath: string, identity: { poolUuid: string; diskUuid: string }): Promise<void> {
  await assertIsDirectory(diskPath);
  const existing = await readDirectoryLabel(diskPath);
  if (existing) {
    if (existing.poolUuid === identity.poolUuid) {
      throw new ShardpoolError('DISK_ALREADY_IN_POOL', `${diskPath} is already a disk of this pool`, { path: diskPath });
    }
    throw new ShardpoolError(
      'DISK_BELONGS_TO_OTHER_POOL',
      `${diskPath} belongs to pool ${existing.poolUuid}; remove it from that pool first`,
      { path: diskPath, otherPool: existing.poolUuid },
    );
  }
  const foreign = (await listDirectory(diskPath)).filter((name) => !IGNORABLE_ENTRIES.has(name));
  if (foreign.length > 0) {
    throw new ShardpoolError(
      'DISK_NOT_EMPTY',
      `${diskPath} is not empty (it holds ${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); ` +
        'shardpool only takes empty directories so it can never mix with or overwrite other data',
      { path: diskPath },
    );
  }
  await ensureDirectory(path.join(diskPath, FRAGMENTS_DIRECTORY));
  const label: DiskLabel = {
    formatVersion: FORMAT_VERSION,
    kind: 'directory',
    poolUuid: identity.poolUuid,
    diskUuid: identity.diskUuid,
    createdAt: new Date().toISOString(),
  };
  await writeFileDurable(path.join(diskPath, DISK_LABEL_FILE_NAME), encodeDiskLabel(label));
}

/** Opens a labelled directory disk, checking that its label names the expected pool and disk. */
export async function openDirectoryDisk(
  diskPath: string,
  expected: { poolUuid: string; diskUuid: string },
  /** Tests pass an fsync they control, to hold one in flight. */
  options: { fsyncDirectory?: (directory: string) => Promise<void> } = {},
): Promise<DirectoryDisk> {
  await assertIsDirectory(diskPath);
  const label = await readDirectoryLabel(diskPath);
  if (!label) {
    throw new ShardpoolError('DISK_OFFLINE', `${diskPath} has no shardpool label (${DISK_LABEL_FILE_NAME})`, {
      path: diskPath,
    });
  }
  if (label.poolUuid !== expected.poolUuid || label.diskUuid !== expected.diskUuid) {
    throw new ShardpoolError(
      'DISK_OFFLINE',
      `${diskPath} is labelled as disk ${label.diskUuid} of pool ${label.poolUuid}, expected disk ` +
        `${expected.diskUuid} of pool ${expected.poolUuid}`,
      { path: diskPath },
    );
  }
  return new DirectoryDisk(diskPath, label, options.fsyncDirectory ?? fsyncDirectory);
}

export class DirectoryDisk implements Disk {
  readonly kind = 'directory' as const;
  /** False once an fsync failed: what it was to persist may be lost, so nothing new is written here until reopened. */
  get acceptsFragments(): boolean {
    return this.latched === undefined;
  }

  get latchedFailure(): ShardpoolError | undefined {
    return this.latched;
  }

  private latched: ShardpoolError | undefined;
  readonly geometry = undefined;
  readonly poolUuid: string;
  readonly diskUuid: string;
  /** Directories whose renames and unlinks the next flush must make durable (and the fsyncs in flight). */
  private readonly syncs: DirectorySyncs;

  constructor(
    readonly path: string,
    label: DiskLabel,
    syncDirectory: (directory: string) => Promise<void> = fsyncDirectory,
  ) {
    this.syncs = new DirectorySyncs(syncDirectory);
    this.poolUuid = label.poolUuid;
    this.diskUuid = label.diskUuid;
  }

  async writeFragment(fragment: FragmentToWrite, data: Buffer): Promise<{ locationBytes: number }> {
    if (this.latched) throw this.latched;
    assert(data.length === fragment.dataLengthBytes, 'fragment data length matches its header');
    const header = encodeFragmentHeader({
      ...fragment,
      poolUuid: this.poolUuid,
      diskUuid: this.diskUuid,
      locationBytes: 0,
    });
    const filePath = this.fragmentPath(fragment);
    const directory = path.dirname(filePath);
    await this.io('write', filePath, async () => {
      const created = await ensureDirectory(directory);
      // A new bucket directory is itself an entry of fragments/, durable only once fragments/ is synced too.
      if (created !== undefined) this.syncs.changed(path.dirname(created));
      await writeFileSynced(filePath, [header, data]);
    });
    this.syncs.changed(directory);
    return { locationBytes: 0 };
  }

  async flush(): Promise<void> {
    try {
      await this.syncs.flush();
    } catch (error) {
      // A failed fsync may have dropped the dirty state: retrying it and trusting the second answer is how
      // databases lost data (fsyncgate). Report the failure; the caller must not acknowledge. Latched: every later
      // flush fails too (DirectorySyncs), and the disk takes no new fragments until the pool reopens it.
      this.latched ??= this.ioError('flush', this.path, this.syncs.failure ?? error);
      throw this.latched;
    }
  }

  async readFragment(address: FragmentLocation, destination?: Buffer): Promise<{ header: FragmentHeader; data: Buffer }> {
    const filePath = this.fragmentPath(address);
    const bytes = await this.io('read', filePath, () => readFileIfExists(filePath));
    if (!bytes) {
      throw new ShardpoolError('FRAGMENT_MISSING', `fragment file ${filePath} is missing`, {
        disk: this.path,
        path: filePath,
      });
    }
    const header = decodeFragmentHeader(bytes, filePath);
    verifyFragmentIdentity(header, { ...address, poolUuid: this.poolUuid, diskUuid: this.diskUuid }, filePath);
    const data = bytes.subarray(fragmentHeaderLengthBytes(header.key));
    verifyFragmentData(header, data, filePath);
    if (destination?.length === data.length) {
      data.copy(destination);
      return { header, data: destination };
    }
    return { header, data };
  }

  async verifyFragment(address: FragmentLocation): Promise<FragmentHeader> {
    return (await this.readFragment(address)).header;
  }

  async deleteFragment(address: FragmentAddress): Promise<void> {
    const filePath = this.fragmentPath(address);
    // The unlink becomes durable with the next flush, like a write's rename.
    if (await this.io('delete', filePath, () => removeFileIfExists(filePath))) {
      this.syncs.changed(path.dirname(filePath));
      return;
    }
    // No fragment file: the write may have been cut off before its rename (a crash during a move's copy), leaving
    // its temp file. Only this uncommon path pays for listing the directory.
    const directory = path.dirname(filePath);
    const tempPrefix = `${path.basename(filePath)}${TEMP_FILE_MARKER}`;
    let removed = false;
    for (const name of await this.io('list', directory, () => listDirectory(directory).catch(() => []))) {
      if (!name.startsWith(tempPrefix)) continue;
      const tempPath = path.join(directory, name);
      if (await this.io('delete', tempPath, () => removeFileIfExists(tempPath))) removed = true;
    }
    if (removed) this.syncs.changed(directory);
  }

  async deleteVersion(versionId: string): Promise<number> {
    assert(isUuid(versionId), 'version ids are UUIDs');
    const directory = this.bucketDirectory(versionId);
    let deleted = 0;
    for (const name of await this.io('list', directory, () => listDirectory(directory))) {
      // Temp files of the version (a crash between write and rename) start with the same prefix.
      if (!name.startsWith(`${versionId}.`)) continue;
      const filePath = path.join(directory, name);
      if (await this.io('delete', filePath, () => removeFileIfExists(filePath))) deleted += 1;
    }
    if (deleted > 0) this.syncs.changed(directory);
    return deleted;
  }

  async *scanFragments(): AsyncIterable<FoundFragment> {
    const root = path.join(this.path, FRAGMENTS_DIRECTORY);
    for (const bucket of (await listDirectory(root)).sort()) {
      for (const name of (await listDirectory(path.join(root, bucket))).sort()) {
        if (!parseFragmentFileName(name)) continue;
        const filePath = path.join(root, bucket, name);
        const head = await readFileHead(filePath, FRAGMENT_HEADER_FIXED_BYTES + KEY_LENGTH_MAX_BYTES).catch(() => undefined);
        if (!head) continue;
        try {
          const header = decodeFragmentHeader(head.bytes, filePath);
          yield {
            versionId: header.versionId,
            extentIndex: header.extentIndex,
            fragmentIndex: header.fragmentIndex,
            locationBytes: 0,
            storedBytes: head.sizeBytes,
            key: header.key,
            policy: header.policy,
            extentLengthBytes: header.extentLengthBytes,
            extentChecksum: header.extentChecksum,
          };
        } catch (error) {
          if (!isShardpoolError(error)) throw error;
          // A file whose header does not verify is not a fragment anyone can use; recover reports the name.
        }
      }
    }
  }

  async holdsRecord(fragment: FoundFragment): Promise<boolean> {
    const filePath = this.fragmentPath(fragment);
    return (await this.io('list', filePath, () => pathKind(filePath))) === 'file';
  }

  async *strays(_scanned?: ReadonlyArray<FoundFragment>, inFlight: (versionId: string) => Promise<boolean> = async () => false): AsyncIterable<Stray> {
    const root = path.join(this.path, FRAGMENTS_DIRECTORY);
    for (const bucket of (await listDirectory(root)).sort()) {
      for (const name of (await listDirectory(path.join(root, bucket))).sort()) {
        const filePath = path.join(root, bucket, name);
        const isTemp = name.includes(TEMP_FILE_MARKER);
        // The temp file of a write still running (a put's, a move's) is not a stray: its writer renames it.
        if (isTemp && (await inFlight(name.slice(0, name.indexOf('.'))))) continue;
        let unreadable = false;
        if (!isTemp) {
          const head = await readFileHead(filePath, FRAGMENT_HEADER_FIXED_BYTES + KEY_LENGTH_MAX_BYTES).catch(() => undefined);
          try {
            if (!head || !parseFragmentFileName(name)) unreadable = true;
            else decodeFragmentHeader(head.bytes, filePath);
          } catch (error) {
            if (!isShardpoolError(error)) throw error;
            unreadable = true;
          }
        }
        if (!isTemp && !unreadable) continue;
        // Gone since the listing (renamed by its writer, collected): nothing is left to report.
        if ((await this.io('list', filePath, () => pathKind(filePath))) !== 'file') continue;
        yield {
          what: isTemp ? `temp file of an interrupted write ${filePath}` : `unreadable fragment file ${filePath}`,
          bytes: await fileSizeBytes(filePath).catch(() => 0),
          release: async () => {
            if (await removeFileIfExists(filePath)) this.syncs.changed(path.dirname(filePath));
          },
        };
      }
    }
  }

  pendingAllocations(): FragmentLocation[] {
    return []; // a fragment file exists or not; nothing to reconcile
  }

  settle(): void {
    // Nothing to do: a renamed, synced file is permanent.
  }

  async space(): Promise<DiskSpace> {
    const space = await this.io('statfs', this.path, () => filesystemSpace(this.path));
    return { capacityBytes: space.capacityBytes, freeBytes: space.availableBytes };
  }

  async release(): Promise<void> {
    await removeFileIfExists(path.join(this.path, DISK_LABEL_FILE_NAME));
    await fsyncDirectory(this.path);
  }
  async close(): Promise<void> {
    // Nothing is held open between calls.
  }


  private fragmentPath(address: FragmentAddress): string {
    assert(isUuid(address.versionId), 'version ids are UUIDs, so file names never come from user input');
    assert(Number.isSafeInteger(address.extentIndex) && address.extentIndex >= 0, 'extent index');
    assert(Number.isSafeInteger(address.fragmentIndex) && address.fragmentIndex >= 0, 'fragment index');
    const name = `${address.versionId}.${address.extentIndex}.${address.fragmentIndex}${FRAGMENT_SUFFIX}`;
    return path.join(this.bucketDirectory(address.versionId), name);
  }

  private bucketDirectory(versionId: string): string {
    return path.join(this.path, FRAGMENTS_DIRECTORY, versionId.slice(0, 2));
  }

  private async io<T>(operation: string, target: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw this.ioError(operation, target, error);
    }
  }

  private ioError(operation: string, target: string, error: unknown): ShardpoolError {
    const code = systemErrorCode(error);
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new ShardpoolError('DISK_FULL', `disk ${this.path} is full (${operation} ${target})`, { disk: this.path }, {
        cause: error,
      });
    }
    return new ShardpoolError(
      'DISK_IO_FAILED',
      `${operation} failed on disk ${this.path} (${target}): ${code ?? String(error)}`,
      { disk: this.path, operation, errno: code },
      { cause: error },
    );
  }
}

/** Parses `<uuid>.<extent>.<frag>.frag`; temp files and anything else are not fragments. */
export function parseFragmentFileName(name: string): FragmentAddress | undefined {
  if (name.includes(TEMP_FILE_MARKER) || !name.endsWith(FRAGMENT_SUFFIX)) return undefined;
  const parts = name.slice(0, -FRAGMENT_SUFFIX.length).split('.');
  if (parts.length !== 3) return undefined;
  const [versionId, extentText, fragmentText] = parts as [string, string, string];
  if (!isUuid(versionId) || !/^\d{1,15}$/.test(extentText) || !/^\d{1,5}$/.test(fragmentText)) return undefined;
  return { versionId, extentIndex: Number(extentText), fragmentIndex: Number(fragmentText) };
}

export async function readDirectoryLabel(diskPath: string): Promise<DiskLabel | undefined> {
  const labelPath = path.join(diskPath, DISK_LABEL_FILE_NAME);
  const bytes = await readFileIfExists(labelPath);
  return bytes ? decodeDiskLabel(bytes, labelPath) : undefined;
}

async function assertIsDirectory(diskPath: string): Promise<void> {
  const kind = await pathKind(diskPath);
  if (kind === 'missing') {
    throw new ShardpoolError('DISK_NOT_FOUND', `${diskPath} does not exist`, { path: diskPath });
  }
  if (kind !== 'directory') {
    throw new ShardpoolError('DISK_NOT_A_DIRECTORY', `${diskPath} is a ${kind}, not a directory`, { path: diskPath });
  }
}
