// The Pool: lifecycle (opening → open → closing → closed, or failed), membership of disks, and the object
// operations, which live in their own modules (object-writer, object-reader, garbage, status, maintain/drain).
//
// A pool directory holds pool.json (identity and defaults), catalog.sqlite (objects, extents, fragment placements,
// disks) and pool.lock. Commands that change the pool open it with access 'write', which takes the pool lock and
// first finishes what an interrupted process left behind (uncommitted puts, undeleted garbage).
//
// Opening costs what the access needs, not what the pool holds: a read-open (ls, stat, get) loads neither the writer,
// the collector nor the code of a disk kind the pool does not have, and replays no device journal.
import * as path from 'node:path';
import { assert } from '../assert.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { NOT_THIS_DISK, type Disk } from '../disk/disk.js';
import { DISCARD_MODES, type DiscardMode } from '../disk/discard-mode.js';
import { trackDiskUse, type TrackedDisk } from '../disk/disk-users.js';
import { meterDisk } from '../disk/metered-disk.js';
import type { DirectIoMode } from '../io/block-io.js';
import type { AddDeviceOptions } from './add-device.js';
import { POOL_CONFIG_FILE_NAME, encodePoolConfig, poolConfigVersionFor, redactPassword, type CatalogLocation, type PoolConfig } from '../format/pool-config.js';
import { newUuid } from '../format/uuid.js';
import {
  ensureDirectory,
  filesystemId,
  fsyncDirectory,
  listDirectory,
  pathKind,
  realPath,
  writeFileDurable,
} from '../io/durable-files.js';
import type { Policy } from '../redundancy/policy.js';
import { CATALOG_FILE_NAME, type Catalog, type DiskRow, type InCommit, type ObjectMetadata, type ObjectRow } from './catalog/catalog.js';
import { openCatalog, readPoolConfig } from './catalog/open-catalog.js';
import type * as Garbage from './garbage.js';
import { isReservedKey, validateKey, validatePrefix, validateUserKey } from './keys.js';
import type * as ObjectReaderModule from './object-reader.js';
import type { ByteRange, ObjectReader } from './object-reader.js';
import type * as ObjectWriter from './object-writer.js';
import type { ObjectSource, PutResult } from './object-writer.js';
import { POOL_LOCK_FILE_NAME, PoolLock } from './pool-lock.js';
import { describeObject, describePool, type ObjectDescription, type PoolDescription } from './status.js';

export type PoolAccess = 'read' | 'write';

const DISCARD_SETTING = 'discard';
/** The pool a catalog belongs to (set by init; catalogs made before it have none and are not checked). */
const POOL_UUID_SETTING = 'pool-uuid';

function describeCatalog(location: CatalogLocation): string {
  return location.engine === 'sqlite' ? CATALOG_FILE_NAME : redactPassword(location.url);
}
export type PoolState = 'opening' | 'open' | 'closing' | 'closed' | 'failed';

/** A disk of the pool as the catalog knows it, with its open handle when it could be reached. */
export interface Member {
  readonly row: DiskRow;
  readonly disk: Disk | undefined;
  /** Why the disk could not be opened (only when disk is undefined). */
  readonly offlineReason: string | undefined;
}

export interface OpenOptions {
  readonly access: PoolAccess;
  /** For write access: how long to wait for another process's lock. */
  readonly lockWaitMs: number;
  /** How block devices are opened (O_DIRECT with O_SYNC fallback by default). */
  readonly directIo?: DirectIoMode;
  /**
   * 'none': open no disk at all, for a reader of the catalog alone (ls): nothing is read from any device, and asking
   * the pool for a member is a bug. Only with access 'read'. Default 'all'.
   */
  readonly disks?: 'all' | 'none';
  /** The pool lock, already taken by this process for `directory` (a CLI hand-off); the pool releases it at close. */
  readonly lock?: PoolLock;
}

export class Pool {
  private lifecycle: PoolState = 'opening';
  private members = new Map<number, Member>();
  private readonly openNotices: string[] = [];
  /** False for a pool opened with disks 'none' (a catalog reader): no member may be asked for. */
  private membersOpened = false;
  private readonly versionPins = new Map<string, number>();
  /** Garbage collections in flight, one per version (single-flight): only its collector frees a version's fragments. */
  private readonly collections = new Map<string, Promise<boolean>>();
  /** Work the pool started on its own (a collection when the last reader of a version lets go); close awaits it. */
  private readonly backgroundWork = new Set<Promise<unknown>>();
  /** Puts in flight: a disk that stops taking fragments waits for these (waitForWritesInFlight). */
  private readonly putsInFlight = new Set<Promise<unknown>>();
  /** Each open member's use counter, by the disk handed out. */
  private readonly diskUse = new WeakMap<Disk, TrackedDisk<Disk>>();
  private discard: DiscardMode = 'batch';
  /** Disks forgetMember is taking out of the pool right now. */
  private readonly leaving = new Set<number>();
  /** What only a write-open needs, loaded by it (a put and a collection start synchronously from it). */
  private writing: { readonly writer: typeof ObjectWriter; readonly garbage: typeof Garbage } | undefined;
  /** The reader, loaded with the disks (a catalog reader reads no object). */
  private reading: typeof ObjectReaderModule | undefined;

  private constructor(
    readonly directory: string,
    readonly config: PoolConfig,
    readonly catalog: Catalog,
    readonly access: PoolAccess,
    private readonly lock: PoolLock | undefined,
    readonly directIo: DirectIoMode,
  ) {}

  /**
   * Creates a new, empty pool in `directory` (which must not exist or be empty). `poolUuid` is given only by import,
   * which gives a pool back the identity its disks carry.
   */
  static async create(directory: string, options: { policy: Policy; extentSizeBytes: number; catalog?: CatalogLocation; poolUuid?: string }): Promise<PoolConfig> {
    const kind = await pathKind(directory);
    if (kind !== 'missing' && kind !== 'directory') {
      throw new ShardpoolError('POOL_ALREADY_EXISTS', `${directory} exists and is not a directory`, { pool: directory });
    }
    if (kind === 'directory') {
      const entries = await listDirectory(directory);
      if (entries.includes(POOL_CONFIG_FILE_NAME)) {
        throw new ShardpoolError('POOL_ALREADY_EXISTS', `${directory} already holds a pool`, { pool: directory });
      }
      if (entries.length > 0) {
        throw new ShardpoolError('POOL_ALREADY_EXISTS', `${directory} is not empty; a pool needs a directory of its own`, {
          pool: directory,
        });
      }
    }
    const created = await ensureDirectory(directory);
    if (created !== undefined) await fsyncDirectory(path.dirname(created));
    const catalogLocation = options.catalog ?? { engine: 'sqlite' as const };
    const config: PoolConfig = {
      formatVersion: poolConfigVersionFor(catalogLocation),
      catalog: catalogLocation,
      poolUuid: options.poolUuid ?? newUuid(),
      defaultPolicy: options.policy,
      extentSizeBytes: options.extentSizeBytes,
      createdAt: new Date().toISOString(),
    };
    // The catalog first: a crash before pool.json is written leaves a directory that is not yet a pool. A catalog
    // that already names a pool (a PostgreSQL database another pool uses) is never taken over.
    const catalog = await openCatalog(directory, config.catalog, { create: true });
    try {
      const owner = await catalog.getSetting(POOL_UUID_SETTING);
      if (owner !== undefined || (await catalog.listDisks()).length > 0) {
        throw new ShardpoolError(
          'CATALOG_NOT_EMPTY',
          `the catalog ${describeCatalog(config.catalog)} already belongs to pool ${owner ?? '(unknown)'}; a new pool needs an empty catalog of its own`,
          { pool: directory },
        );
      }
      await catalog.setSetting(POOL_UUID_SETTING, config.poolUuid);
    } finally {
      await catalog.close();
    }
    await writeFileDurable(path.join(directory, POOL_CONFIG_FILE_NAME), encodePoolConfig(config));
    return config;
  }

  static async open(directory: string, options: OpenOptions): Promise<Pool> {
    assert(options.disks !== 'none' || options.access === 'read', 'only a read-open may leave the disks closed');
    const config = await readPoolConfig(directory);
    assert(options.lock === undefined || options.access === 'write', 'a lock is taken for writing');
    const lock = options.lock ?? (options.access === 'write' ? await PoolLock.acquire(directory, options.lockWaitMs) : undefined);
    let catalog: Catalog | undefined;
    let pool: Pool | undefined;
    try {
      catalog = await openCatalog(directory, config.catalog, { create: false });
      const owner = await catalog.getSetting(POOL_UUID_SETTING);
      if (owner !== undefined && owner !== config.poolUuid) {
        throw new ShardpoolError(
          'CATALOG_FAILED',
          `the catalog ${describeCatalog(config.catalog)} belongs to pool ${owner}, not to ${config.poolUuid} (${directory}): pool.json points at another pool's catalog`,
          { pool: directory },
        );
      }
      pool = new Pool(directory, config, catalog, options.access, lock, options.directIo ?? 'auto');
      await pool.loadSettings();
      if (options.disks !== 'none') await pool.openMembers();
      if (options.access === 'write') {
        const [writer, garbage] = await Promise.all([import('./object-writer.js'), import('./garbage.js')]);
        pool.writing = { writer, garbage };
        await garbage.cleanUpInterruptedPuts(pool);
        await garbage.cleanUpInterruptedMoves(pool);
        await garbage.reconcilePendingAllocations(pool);
        await pool.collectAllGarbage();
      }
      pool.lifecycle = 'open';
      return pool;
    } catch (error) {
      await pool?.closeMembers();
      await catalog?.close().catch(() => undefined);
      await lock?.unlock();
      throw error;
    }
  }

  get state(): PoolState {
    return this.lifecycle;
  }

  async close(): Promise<void> {
    if (this.lifecycle === 'closed') return;
    this.lifecycle = 'closing';
    // Nothing new starts once closing; what already runs finishes before the disks (and their checkpoints) close.
    await this.settleBackgroundWork();
    await this.closeMembers();
    await this.catalog.close();
    await this.lock?.unlock();
    this.lifecycle = 'closed';
  }

  // ── membership ────────────────────────────────────────────────────────────────────────────────────────────────

  listMembers(): Member[] {
    this.assertMembersOpened();
    return [...this.members.values()];
  }

  member(diskId: number): Member {
    this.assertMembersOpened();
    const member = this.members.get(diskId);
    assert(member !== undefined, 'every disk id in the catalog has a member');
    return member;
  }

  /** Disks that may be read: not failed, and reachable. */
  readableDisk(diskId: number): Disk | undefined {
    this.assertMembersOpened();
    const member = this.members.get(diskId);
    return member && member.row.state !== 'failed' ? member.disk : undefined;
  }

  /** Disks that may receive new fragments: healthy (not failed or draining), reachable, and able to take them. */
  writableMembers(): Member[] {
    return this.listMembers().filter(
      (member) => member.row.state === 'healthy' && member.disk !== undefined && member.disk.acceptsFragments,
    );
  }

  /** Disks whose fragments cannot be read now: failed or unreachable. */
  unavailableDiskIds(): number[] {
    return this.listMembers()
      .filter((member) => member.row.state === 'failed' || member.disk === undefined)
      .map((member) => member.row.id);
  }

  /** Finds a disk by catalog id, uuid or path. */
  async findMember(reference: string): Promise<Member> {
    this.assertMembersOpened();
    const byId = /^\d+$/.test(reference) ? this.members.get(Number(reference)) : undefined;
    if (byId) return byId;
    const resolved = await realPath(reference).catch(() => path.resolve(reference));
    for (const member of this.members.values()) {
      if (member.row.uuid === reference || member.row.path === resolved || member.row.path === reference) return member;
    }
    throw new ShardpoolError('DISK_NOT_FOUND', `no disk "${reference}" in pool ${this.directory} (see list-disks)`, {
      disk: reference,
    });
  }

  /**
   * Adds a disk. A directory is added as is; a block device or an image file only with `device` (the operator's
   * statement that the whole device may be formatted), after admission checks and confirmation.
   */
  async addDisk(diskPath: string, options: { device: boolean } & Partial<AddDeviceOptions> = { device: false }): Promise<DiskRow> {
    this.assertWritable();
    const kind = await pathKind(diskPath);
    if (kind === 'missing') throw new ShardpoolError('DISK_NOT_FOUND', `${diskPath} does not exist`, { path: diskPath });
    if (kind === 'directory') {
      if (options.device) {
        throw new ShardpoolError(
          'DEVICE_FLAG_MISUSED',
          `${diskPath} is a directory; --device is only for block devices and device image files. Drop --device to add ` +
            'the directory as a directory disk',
          { path: diskPath },
        );
      }
      return this.addDirectoryDisk(diskPath);
    }
    if (kind === 'other') {
      throw new ShardpoolError('DISK_NOT_A_DIRECTORY', `${diskPath} is neither a directory, a block device nor a file`, {
        path: diskPath,
      });
    }
    if (!options.device) {
      const what = kind === 'block-device' ? 'a block device' : 'a regular file';
      throw new ShardpoolError(
        'DEVICE_FLAG_REQUIRED',
        `${diskPath} is ${what}. Adding it makes shardpool format the whole ${kind === 'block-device' ? 'device' : 'file as a device image'} ` +
          'and DESTROYS ALL DATA ON IT; pass --device to say that is what you mean (after checking the path twice)',
        { path: diskPath },
      );
    }
    return this.addDeviceDisk(diskPath, {
      force: options.force ?? false,
      directIo: options.directIo ?? this.directIo,
      confirm: options.confirm ?? (async () => false),
    });
  }

  private async addDeviceDisk(diskPath: string, options: AddDeviceOptions): Promise<DiskRow> {
    const resolved = await realPath(diskPath);
    for (const member of this.members.values()) {
      if (member.row.path === resolved) {
        throw new ShardpoolError('DISK_ALREADY_IN_POOL', `${diskPath} is already disk ${member.row.id} of this pool`, {
          path: diskPath,
        });
      }
    }
    const diskUuid = newUuid();
    const { admitAndFormatDevice } = await import('./add-device.js');
    const probe = await admitAndFormatDevice(resolved, { poolUuid: this.config.poolUuid, diskUuid }, options);
    const row = await this.catalog.addDisk({ uuid: diskUuid, kind: 'block-device', path: probe.realPath });
    await this.openMember(row);
    return row;
  }

  private async addDirectoryDisk(diskPath: string): Promise<DiskRow> {
    const resolved = await realPath(diskPath);
    if (resolved === (await realPath(this.directory)) || resolved.startsWith(`${await realPath(this.directory)}/`)) {
      throw new ShardpoolError('DISK_NOT_EMPTY', `${diskPath} is inside the pool directory; use a separate directory`, {
        path: diskPath,
      });
    }
    for (const member of this.members.values()) {
      if (member.row.path === resolved) {
        throw new ShardpoolError('DISK_ALREADY_IN_POOL', `${diskPath} is already disk ${member.row.id} of this pool`, {
          path: diskPath,
        });
      }
    }
    const diskUuid = newUuid();
    const { formatDirectoryDisk, openDirectoryDisk } = await import('../disk/directory/directory-disk.js');
    await formatDirectoryDisk(resolved, { poolUuid: this.config.poolUuid, diskUuid });
    const row = await this.catalog.addDisk({ uuid: diskUuid, kind: 'directory', path: resolved });
    const disk = await openDirectoryDisk(resolved, { poolUuid: this.config.poolUuid, diskUuid });
    this.members.set(row.id, { row, disk: this.tracked(disk), offlineReason: undefined });
    return row;
  }

  /**
   * Other disks on the same filesystem as this one. Fragments of an extent on two such disks are lost together
   * when that filesystem fails, so the CLI warns; tests and demos do it on purpose.
   */
  async disksSharingFilesystem(diskId: number): Promise<DiskRow[]> {
    const member = this.member(diskId);
    const id = await filesystemId(member.row.path).catch(() => undefined);
    if (id === undefined) return [];
    const sharing: DiskRow[] = [];
    for (const other of this.members.values()) {
      if (other.row.id === diskId || !other.disk) continue;
      if ((await filesystemId(other.row.path).catch(() => undefined)) === id) sharing.push(other.row);
    }
    return sharing;
  }

  /** Marks a disk failed: it is never read or written again; its fragments count as lost until rebuilt elsewhere. */
  async failDisk(reference: string): Promise<DiskRow> {
    this.assertWritable();
    const member = await this.findMember(reference);
    if (member.row.state === 'failed') return member.row;
    await this.catalog.setDiskState(member.row.id, 'failed');
    const row = await this.refreshMember(member.row.id);
    // Puts that chose the disk before it failed may still write there; once they ended, a rebuild sees all of it.
    await this.waitForWritesInFlight();
    return row;
  }

  /** When freed device units are discarded: 'online', 'batch' (by `shardpool trim`, the default) or 'off'. */
  get discardMode(): DiscardMode {
    return this.discard;
  }

  async setDiscardMode(mode: DiscardMode): Promise<void> {
    this.assertWritable();
    await this.catalog.setSetting(DISCARD_SETTING, mode);
    this.discard = mode;
    const { DeviceDisk } = await import('../disk/device/device-disk.js');
    for (const member of this.members.values()) {
      if (member.disk instanceof DeviceDisk) member.disk.discardMode = mode;
    }
  }

  /**
   * Takes a drained disk out of the pool. Its handle refuses new calls at once (DISK_OFFLINE) and every call already
   * made on it (a GET's read, a scrub's verify, a collection's delete) finishes first; then `release` clears its
   * label (a failed disk is never written), it is closed, and only then forgotten by the catalog: a crash in between
   * leaves a released disk the catalog still lists as draining, and rerunning remove-disk finishes the job.
   */
  async forgetMember(diskId: number, options: { release: boolean }): Promise<void> {
    const member = this.member(diskId);
    this.leaving.add(diskId);
    if (member.disk) {
      const tracked = this.diskUse.get(member.disk);
      assert(tracked !== undefined, 'every open member is tracked');
      const disk = await tracked.retire('was removed from the pool');
      if (options.release) await disk.release().catch(() => undefined);
      await disk.close();
    }
    await this.catalog.deleteDisk(diskId);
    this.members.delete(diskId);
    this.leaving.delete(diskId);
  }

  /** True once a drain has begun taking the disk out of the pool (forgetMember), or it is gone: its calls fail. */
  isLeaving(diskId: number): boolean {
    return this.leaving.has(diskId) || !this.members.has(diskId);
  }

  /** Re-reads one disk's catalog row after a state change. */
  async refreshMember(diskId: number): Promise<DiskRow> {
    const row = (await this.catalog.listDisks()).find((candidate) => candidate.id === diskId);
    const member = this.members.get(diskId);
    assert(member !== undefined, 'the refreshed disk is a member');
    if (!row) {
      this.members.delete(diskId);
      return member.row;
    }
    this.members.set(diskId, { ...member, row });
    return row;
  }

  // ── objects ───────────────────────────────────────────────────────────────────────────────────────────────────

  async put(key: string, source: ObjectSource, options: PutOptions = {}): Promise<PutResult> {
    this.assertWritable();
    const put = this.writeModules().writer.writeObject(this, options.internal ? validateKey(key) : validateUserKey(key), source, {
      policy: options.policy ?? this.config.defaultPolicy,
      onProgress: options.onProgress,
      metadata: options.metadata,
      inCommit: options.inCommit,
    });
    const tracked = put.catch(() => undefined).finally(() => this.putsInFlight.delete(tracked));
    this.putsInFlight.add(tracked);
    return put;
  }

  /**
   * Resolves once every put in flight at the call has ended (later ones do not count). A put chooses its disks when
   * it starts, so after a disk stops being writable (draining, failed) this is the moment from which no put can still
   * place a fragment on it.
   */
  async waitForWritesInFlight(): Promise<void> {
    await Promise.allSettled([...this.putsInFlight]);
  }

  /**
   * Keeps a version's fragments from being garbage collected while it is read or maintained: in a long-running
   * process (the daemon) an overwrite or delete may commit while a GET of the old version is still streaming.
   * Pin before checking that the version is current (see pinCurrent): a version that is already garbage may be under
   * collection, and a pin cannot stop a collection in flight, but a collection never starts on a pinned version.
   */
  pinVersion(versionId: string): () => void {
    this.versionPins.set(versionId, (this.versionPins.get(versionId) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.versionPins.get(versionId) ?? 1) - 1;
      if (left > 0) {
        this.versionPins.set(versionId, left);
        return;
      }
      this.versionPins.delete(versionId);
      if (this.access === 'write' && this.lifecycle === 'open') {
        // collectVersion declines a version pinned again meanwhile (its last reader collects it then).
        this.inBackground(async () => (await this.catalog.isGarbage(versionId)) && this.collectVersion(versionId));
      }
    };
  }

  /**
   * Pins a version only while it is the key's current one. Pinned first, then checked: a collection runs only on a
   * garbage version (never current again) and never starts on a pinned one, so a version still current after the pin
   * is one no collection can be deleting.
   */
  async pinCurrent(object: { key: string; versionId: string }): Promise<(() => void) | undefined> {
    const unpin = this.pinVersion(object.versionId);
    if (await this.catalog.isCurrentVersion(object.key, object.versionId)) return unpin;
    unpin();
    return undefined;
  }

  isVersionPinned(versionId: string): boolean {
    return this.versionPins.has(versionId);
  }

  /**
   * Collects one garbage version. Single-flight: a second call while one runs waits for the same collection, so two
   * collectors never free the same fragments (a device would free units that a newer put was given meanwhile).
   */
  collectVersion(versionId: string): Promise<boolean> {
    const running = this.collections.get(versionId);
    if (running) return running;
    // Decided here, not inside the collection: a caller must never join a collection that skipped the version because
    // a reader held it, or the reader's release (which starts the real collection) could join that skip instead.
    if (this.isVersionPinned(versionId)) return Promise.resolve(false); // the last reader to let go collects it
    const collection = this.writeModules().garbage.collectGarbageVersion(this, versionId).finally(() => {
      assert(this.collections.get(versionId) === collection, 'one collection per version at a time');
      this.collections.delete(versionId);
    });
    this.collections.set(versionId, collection);
    return collection;
  }

  /** True while a collection of this version runs (nobody may start reading or moving its fragments then). */
  isBeingCollected(versionId: string): boolean {
    return this.collections.has(versionId);
  }

  /** Collects every garbage version (each through collectVersion, so never twice at once). */
  async collectAllGarbage(): Promise<void> {
    for (const versionId of await this.catalog.listGarbage()) await this.collectVersion(versionId);
  }

  /** Background work in flight (tests and shutdown wait for it). */
  async settleBackgroundWork(): Promise<void> {
    while (this.backgroundWork.size > 0) await Promise.allSettled([...this.backgroundWork]);
  }

  private inBackground(work: () => Promise<unknown>): void {
    const task: Promise<unknown> = work()
      .catch(() => undefined) // a collection that fails is retried by the next one (or the next write-open)
      .finally(() => this.backgroundWork.delete(task));
    this.backgroundWork.add(task);
  }

  /**
   * Opens an object for reading; the reader streams it extent by extent, verified. The version is pinned at once
   * (not when the first byte is pulled): a copy that starts reading later still reads what it looked up. The reader
   * lets go when its chunks end, or at close() for a reader that is never read to its end.
   */
  async openObject(key: string, range?: ByteRange): Promise<ObjectReader> {
    const { object, unpin } = await this.lookUpPinned(key);
    return this.openPinned(object, unpin, range);
  }

  /**
   * The key's current object, its version pinned: looked up, pinned, then checked still current (pinCurrent). An
   * overwrite that committed in between made the version garbage, maybe already collected, so the new current one is
   * looked up instead. The caller reads it with openPinned or lets go with unpin.
   */
  async lookUpPinned(key: string): Promise<{ object: ObjectRow; unpin: () => void }> {
    this.assertOpen();
    validateKey(key);
    for (;;) {
      const object = await this.requireObject(key);
      const unpin = await this.pinCurrent(object);
      if (unpin) return { object, unpin };
    }
  }

  /** A reader of an object lookUpPinned returned; the reader lets go of the pin. */
  openPinned(object: ObjectRow, unpin: () => void, range?: ByteRange): ObjectReader {
    this.assertOpen();
    assert(this.reading !== undefined, 'objects are read from a pool opened with its disks');
    return this.reading.openObjectReader(this, object, unpin, range);
  }

  async statObject(key: string): Promise<ObjectDescription> {
    this.assertOpen();
    return describeObject(this, await this.requireObject(validateKey(key)));
  }

  /** Objects whose key starts with `prefix`; shardpool's own reserved keys only when the prefix asks for them. */
  async *listObjects(prefix = ''): AsyncGenerator<ObjectRow> {
    this.assertOpen();
    const showReserved = isReservedKey(validatePrefix(prefix));
    for await (const object of this.catalog.listObjects(prefix)) {
      if (showReserved || !isReservedKey(object.key)) yield object;
    }
  }

  async removeObject(key: string): Promise<ObjectRow> {
    this.assertWritable();
    validateKey(key);
    const notFound = () => new ShardpoolError('OBJECT_NOT_FOUND', `no object with key ${JSON.stringify(key)}`, { key });
    if (isReservedKey(key)) {
      // shardpool's own keys (multipart parts) have no manifests, so their removal needs no marker.
      const removed = await this.catalog.takeObject(key);
      if (!removed) throw notFound();
      await this.collectVersion(removed.versionId);
      return removed;
    }
    const current = await this.catalog.getObject(key);
    if (!current) throw notFound();
    const removed = await this.writeModules().writer.removeWithMarker(this, current);
    if (!removed) throw notFound();
    await this.collectVersion(removed.versionId);
    return removed;
  }

  async describe(): Promise<PoolDescription> {
    this.assertOpen();
    return describePool(this);
  }

  async requireObject(key: string): Promise<ObjectRow> {
    const object = await this.catalog.getObject(key);
    if (!object) throw new ShardpoolError('OBJECT_NOT_FOUND', `no object with key ${JSON.stringify(key)}`, { key });
    return object;
  }

  assertWritable(): void {
    this.assertOpen();
    assert(this.access === 'write', 'changes need a pool opened for writing (holding the pool lock)');
  }

  private writeModules(): NonNullable<Pool['writing']> {
    assert(this.writing !== undefined, 'writes and collections need a pool opened for writing');
    return this.writing;
  }

  private assertOpen(): void {
    assert(this.lifecycle === 'open' || this.lifecycle === 'opening', `pool is ${this.lifecycle}`);
  }

  private assertMembersOpened(): void {
    assert(this.membersOpened, 'this pool was opened without its disks (a catalog reader): it has no members to give');
  }

  private async openMembers(): Promise<void> {
    this.reading = await import('./object-reader.js');
    this.membersOpened = true;
    this.members = new Map();
    // All at once (each is its own device or directory): an open waits for the slowest disk, not for their sum.
    // Every open that succeeded is kept before a failure is thrown, so Pool.open's clean-up closes it.
    const rows = await this.catalog.listDisks();
    const opened = await Promise.allSettled(rows.map((row) => this.openedMember(row)));
    for (const outcome of opened) if (outcome.status === 'fulfilled') this.members.set(outcome.value.member.row.id, outcome.value.member);
    const failed = opened.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    const misplaced = opened.flatMap((outcome) => (outcome.status === 'fulfilled' && outcome.value.notAtPath ? [outcome.value.member.row] : []));
    if (misplaced.length > 0) await this.findMisplacedDevices(misplaced);
  }

  /** Opens one member and records it. */
  private async openMember(row: DiskRow): Promise<void> {
    const { member } = await this.openedMember(row);
    this.members.set(member.row.id, member);
  }

  /**
   * One member opened; a disk that cannot be opened is offline with the reason, never fatal. `notAtPath` when a
   * block device's recorded path holds another device or nothing (it may be elsewhere: findMisplacedDevices).
   */
  private async openedMember(row: DiskRow): Promise<{ member: Member; notAtPath: boolean }> {
    if (row.state === 'failed') return { member: { row, disk: undefined, offlineReason: 'marked failed' }, notAtPath: false };
    try {
      return { member: { row, disk: this.tracked(await this.openDisk(row, row.path)), offlineReason: undefined }, notAtPath: false };
    } catch (error) {
      if (!isShardpoolError(error)) throw error;
      const elsewhere = error.code === 'DISK_NOT_FOUND' || error.details.reason === NOT_THIS_DISK;
      return { member: { row, disk: undefined, offlineReason: error.message }, notAtPath: row.kind === 'block-device' && elsewhere };
    }
  }

  private async openDisk(row: DiskRow, diskPath: string): Promise<Disk> {
    const identity = { poolUuid: this.config.poolUuid, diskUuid: row.uuid };
    return row.kind === 'directory'
      ? (await import('../disk/directory/directory-disk.js')).openDirectoryDisk(diskPath, identity)
      : (await import('../disk/device/device-disk.js')).openDeviceDisk(diskPath, identity, { directIo: this.directIo, access: this.access, discard: this.discardMode });
  }

  /**
   * Block devices whose recorded path holds another device or nothing are looked for by label among every block
   * device of the machine (device-finder.ts). One found exactly once is opened where it is; a write-open records its
   * new path (a /dev/disk/by-id name when it has one). Two devices carrying one disk's label (a cloned device) are
   * both left alone: which is the disk cannot be told, and writing the wrong one would lose data.
   */
  private async findMisplacedDevices(misplaced: ReadonlyArray<DiskRow>): Promise<void> {
    const held = new Set<string>();
    for (const member of this.members.values()) {
      if (member.disk) held.add(await realPath(member.row.path).catch(() => member.row.path));
    }
    const { findPoolDevices } = await import('../disk/device/device-finder.js');
    const devices = (await findPoolDevices(this.config.poolUuid, this.directIo)).filter((device) => !held.has(device.devicePath));
    const moved: Array<{ diskId: number; path: string }> = [];
    for (const row of misplaced) {
      const matches = devices.filter((device) => device.diskUuid === row.uuid);
      const member = this.member(row.id);
      if (matches.length !== 1) {
        const why = matches.length === 0
          ? 'no block device on this machine carries its label'
          : `${matches.map((device) => device.path).join(' and ')} all carry its label (a copy of the device?); detach all but one`;
        this.members.set(row.id, { ...member, offlineReason: `${member.offlineReason ?? ''}; ${why}` });
        continue;
      }
      const found = matches[0] as (typeof matches)[number];
      try {
        const disk = await this.openDisk(row, found.path);
        this.members.set(row.id, { row: { ...row, path: found.path }, disk: this.tracked(disk), offlineReason: undefined });
        moved.push({ diskId: row.id, path: found.path });
        this.openNotices.push(`disk ${row.id} (${row.uuid}) was not at ${row.path}; found it by its label at ${found.path}`);
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
        this.members.set(row.id, { ...member, offlineReason: `found by its label at ${found.path} but: ${error.message}` });
      }
    }
    if (moved.length === 0 || this.access !== 'write') return;
    // A new path still recorded for a disk that was not found (it was at that path before) cannot be recorded yet.
    const recorded = new Set([...this.members.values()].filter((member) => !moved.some((move) => move.diskId === member.row.id)).map((member) => member.row.path));
    const recordable = moved.filter((move) => !recorded.has(move.path));
    await this.catalog.setDiskPaths(recordable);
    for (const move of moved) {
      if (!recordable.includes(move)) {
        this.openNotices.push(`disk ${move.diskId}'s new path ${move.path} is not recorded: another disk of the pool is recorded there`);
      }
    }
  }

  /**
   * Points a disk that cannot be found at its recorded path at where it is now (a directory whose filesystem is
   * mounted elsewhere, a device image that was moved). The label there must name this pool and this very disk.
   * Runs as maintenance: the disk is offline, so no call is using it.
   */
  async relocateDisk(reference: string, newPath: string): Promise<DiskRow> {
    this.assertWritable();
    const member = await this.findMember(reference);
    const row = member.row;
    if (member.disk) {
      throw new ShardpoolError('DISK_ONLINE', `disk ${row.id} is online at ${row.path}; relocate is for a disk that is not at its recorded path`, {
        path: row.path,
      });
    }
    if (row.state === 'failed') {
      throw new ShardpoolError('DISK_OFFLINE', `disk ${row.id} is marked failed; rebuild or remove it instead of relocating it`, { path: row.path });
    }
    const resolved = await realPath(newPath).catch(() => newPath);
    for (const other of this.members.values()) {
      if (other.row.id !== row.id && (other.row.path === resolved || other.row.path === newPath)) {
        throw new ShardpoolError('DISK_ALREADY_IN_POOL', `${newPath} is already disk ${other.row.id} of this pool`, { path: newPath });
      }
    }
    const disk = await this.openDisk(row, resolved);
    try {
      await this.catalog.setDiskPaths([{ diskId: row.id, path: resolved }]);
    } catch (error) {
      await disk.close();
      throw error;
    }
    const relocated = { ...row, path: resolved };
    this.members.set(row.id, { row: relocated, disk: this.tracked(disk), offlineReason: undefined });
    return relocated;
  }

  /** What opening the pool noticed and changed (disks found elsewhere by their labels), for the caller to log. */
  get notices(): ReadonlyArray<string> {
    return this.openNotices;
  }

  /** Settings the pool keeps in memory while open (only a write-open changes them, and it holds the pool lock). */
  private async loadSettings(): Promise<void> {
    const mode = await this.catalog.getSetting(DISCARD_SETTING);
    this.discard = (DISCARD_MODES as ReadonlyArray<string>).includes(mode ?? '') ? (mode as DiscardMode) : 'batch';
  }

  /** A member as the pool hands it out: metered, and counted while in use (forgetMember waits for its users). */
  private tracked(disk: Disk): Disk {
    const tracked = trackDiskUse(meterDisk(disk));
    this.diskUse.set(tracked.disk, tracked);
    return tracked.disk;
  }

  private async closeMembers(): Promise<void> {
    await Promise.all([...this.members.values()].map((member) => member.disk?.close().catch(() => undefined)));
  }
}

export interface PutOptions {
  readonly policy?: Policy;
  readonly onProgress?: (bytesWritten: number) => void;
  /** The version's S3 metadata, asked for once the source has been read to its end. */
  readonly metadata?: () => ObjectMetadata;
  /** Allows keys under the reserved prefix (multipart upload parts). */
  readonly internal?: boolean;
  /**
   * Runs inside the catalog transaction that commits the new version, after the key points at it: the caller's own
   * rows change atomically with the object (an S3 part row, a finished upload), and a throw refuses the commit (the
   * put is abandoned and nothing of it remains: a put into a bucket deleted meanwhile). Catalog work only, through
   * the transaction handle it is given. It is told the version the put replaces, with the key held for the commit: a
   * precondition on what the key held is decided atomically with the commit (see InCommit).
   * Returns versions the same transaction queued as garbage (keys it removed), which the put then collects.
   */
  readonly inCommit?: InCommit | undefined;
}

export { POOL_LOCK_FILE_NAME };
