// `shardpool import`: a pool rebuilt from its disks alone, when its catalog is lost. Every disk is scanned for the
// fragment records it holds (directory disks: fragment files; block devices: records by their self-describing
// headers); the version manifests among them (format/version-manifest.ts) say which versions and removals were
// committed, with their sequence numbers, extents, checksums and S3 metadata. Per key, the versions and removals are
// replayed into a new catalog in sequence order, so the newest committed state is current and everything older is
// garbage that the next write-open collects, exactly as the lost catalog would have had it.
//
// What counts as committed: a version whose manifest is found and whose every extent has enough fragments with the
// extent checksum the manifest names. One that lacks fragments while every disk it was written to is here was torn
// by a crash before its put was acknowledged: it is left to the next write-open to delete (as an interrupted put).
// One that lacks fragments because disks are missing is 'degraded' when every extent still has enough (its missing
// fragments are placed on failed stand-ins for the missing disks, so `rebuild` restores full redundancy), and
// 'unreadable' otherwise: reported, not restored, and its fragments left where they are.
//
// Runs alone: the disks are opened read-only for the scan (nothing runs on a pool whose catalog is lost), the new
// pool directory must not exist yet, and the new catalog is written before any process can open the pool.
import { assert } from '../assert.js';
import { MANIFEST_EXTENT_INDEX } from '../constants.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import type { Disk, DiskKind, FoundFragment } from '../disk/disk.js';
import { openDiskForScan } from '../disk/open-for-scan.js';
import { decodeManifest, manifestExtentLength, type Manifest, type VersionManifest } from '../format/version-manifest.js';
import type { CatalogLocation } from '../format/pool-config.js';
import { fragmentHeaderLengthBytes } from '../format/fragment-header.js';
import { newUuid } from '../format/uuid.js';
import type { DirectIoMode } from '../io/block-io.js';
import { realPath } from '../io/durable-files.js';
import { blockDeviceNames } from '../io/system-info.js';
import { checksumEquals } from '../redundancy/checksum.js';
import { createCodec } from '../redundancy/create-codec.js';
import { formatPolicy, parsePolicy, type Policy } from '../redundancy/policy.js';
import type { CannedAcl, Catalog, ExtentRow, FragmentRow, ObjectMetadata, ObjectRow } from '../pool/catalog/catalog.js';
import { openCatalog } from '../pool/catalog/open-catalog.js';
import { isReservedKey } from '../pool/keys.js';
import { manifestCopies } from '../pool/manifests.js';
import { Pool } from '../pool/pool.js';

export interface ImportOptions {
  /** Disk paths to import (directories, devices, image files); none: every block device of the machine. */
  readonly disks: ReadonlyArray<string>;
  /** Which pool to import when the disks found hold several. */
  readonly poolUuid?: string | undefined;
  readonly catalog?: CatalogLocation | undefined;
  /** The new pool's defaults; by default those most of the imported versions were written with. */
  readonly policy?: Policy | undefined;
  readonly extentSizeBytes?: number | undefined;
  readonly directIo: DirectIoMode;
  readonly onProgress?: ((progress: { disksScanned: number; disks: number; recordsFound: number }) => void) | undefined;
}

export interface ImportReport {
  readonly directory: string;
  readonly poolUuid: string;
  readonly disks: ReadonlyArray<{ readonly id: number; readonly uuid: string; readonly kind: DiskKind; readonly path: string }>;
  /** Disk uuids the manifests name that were not among the disks imported (recorded as failed disks). */
  readonly missingDisks: ReadonlyArray<string>;
  readonly objects: number;
  readonly logicalBytes: number;
  /** Keys restored with fragments or manifest copies missing (on failed stand-ins): readable; run `shardpool rebuild`. */
  readonly degraded: ReadonlyArray<string>;
  /** Keys whose newest committed version lacks too many fragments to be read, with why; not restored. */
  readonly unreadable: ReadonlyArray<{ readonly key: string; readonly why: string }>;
  /** Keys whose newest state is a removal. */
  readonly removed: number;
  /** Versions torn by a crash before they were acknowledged, left for the next write-open to delete. */
  readonly torn: number;
  /** Older versions and removal markers restored as garbage (collected by the next write-open). */
  readonly garbage: number;
  /** Fragment records of versions with no manifest (written before manifests, or whose manifest is lost). */
  readonly recordsWithoutManifest: number;
  readonly buckets: ReadonlyArray<string>;
}

export interface ScannedDisk {
  readonly disk: Disk;
  readonly path: string;
}

export interface FoundRecord {
  readonly diskIndex: number;
  readonly found: FoundFragment;
}

export async function importPool(directory: string, options: ImportOptions): Promise<ImportReport> {
  const opened = await openCandidates(options);
  try {
    const disks = choosePool(opened, options.poolUuid);
    const poolUuid = disks[0]!.disk.poolUuid;
    const { manifests, fragments } = await scanDisks(disks, options.onProgress);
    const plan = planImport(manifests, fragments, disks);
    const policy = options.policy ?? mostCommon(plan.versions.map((version) => parsePolicy(version.manifest.policy)), (p) => formatPolicy(p)) ?? parsePolicy('ec:4+2');
    const extentSizeBytes = options.extentSizeBytes ?? mostCommon(plan.versions.map((version) => version.manifest.extentSizeBytes), String) ?? 1024 * 1024;
    const config = await Pool.create(directory, { policy, extentSizeBytes, catalog: options.catalog, poolUuid });
    const catalog = await openCatalog(directory, config.catalog, { create: false });
    let report: Omit<ImportReport, 'directory' | 'poolUuid'>;
    try {
      report = await writeCatalog(catalog, disks, plan);
    } finally {
      await catalog.close();
    }
    // The first write-open deletes torn versions and collects the garbage, as after any crash.
    await (await Pool.open(directory, { access: 'write', lockWaitMs: 0, directIo: options.directIo })).close();
    return { directory, poolUuid, ...report };
  } finally {
    await Promise.all(opened.map((candidate) => candidate.disk.close().catch(() => undefined)));
  }
}

// ── finding the disks ─────────────────────────────────────────────────────────────────────────────────────────

async function openCandidates(options: ImportOptions): Promise<ScannedDisk[]> {
  const opened: ScannedDisk[] = [];
  try {
    if (options.disks.length > 0) {
      for (const given of options.disks) {
        const resolved = await realPath(given).catch(() => given);
        opened.push({ disk: await openDiskForScan(resolved, options.directIo), path: resolved });
      }
    } else {
      for (const name of await blockDeviceNames()) {
        try {
          opened.push({ disk: await openDiskForScan(name.devicePath, options.directIo), path: name.path });
        } catch (error) {
          if (!isShardpoolError(error)) throw error; // not a pool disk (no label), or unreadable: not ours to import
        }
      }
    }
  } catch (error) {
    await Promise.all(opened.map((candidate) => candidate.disk.close().catch(() => undefined)));
    throw error;
  }
  if (opened.length === 0) {
    throw new ShardpoolError('DISK_NOT_FOUND', options.disks.length > 0 ? 'none of the disks given carries a shardpool label' : 'no block device of this machine carries a shardpool label; name directory disks with --disk');
  }
  return opened;
}

function choosePool(opened: ReadonlyArray<ScannedDisk>, poolUuid: string | undefined): ScannedDisk[] {
  const byPool = new Map<string, ScannedDisk[]>();
  for (const candidate of opened) byPool.set(candidate.disk.poolUuid, [...(byPool.get(candidate.disk.poolUuid) ?? []), candidate]);
  let chosen: ScannedDisk[] | undefined;
  if (poolUuid !== undefined) {
    chosen = byPool.get(poolUuid);
    if (!chosen) throw new ShardpoolError('DISK_NOT_FOUND', `no disk found belongs to pool ${poolUuid} (found: ${[...byPool.keys()].join(', ')})`);
  } else if (byPool.size > 1) {
    const pools = [...byPool].map(([uuid, disks]) => `pool ${uuid} (${disks.map((disk) => disk.path).join(', ')})`).join('; ');
    throw new ShardpoolError('IMPORT_POOLS_MIXED', `the disks belong to ${byPool.size} pools: ${pools}; import one pool at a time (--pool-uuid, or only its --disk paths)`);
  } else {
    chosen = [...byPool.values()][0];
  }
  assert(chosen !== undefined && chosen.length > 0, 'a pool has at least one disk');
  const seen = new Map<string, string>();
  for (const candidate of chosen) {
    const other = seen.get(candidate.disk.diskUuid);
    if (other !== undefined) {
      throw new ShardpoolError(
        'IMPORT_POOLS_MIXED',
        `${other} and ${candidate.path} both carry the label of disk ${candidate.disk.diskUuid}: the same disk given twice, or a copy of it; import it once`,
      );
    }
    seen.set(candidate.disk.diskUuid, candidate.path);
  }
  return chosen;
}

// ── reading what the disks hold ───────────────────────────────────────────────────────────────────────────────

export async function scanDisks(
  disks: ReadonlyArray<ScannedDisk>,
  onProgress: ImportOptions['onProgress'],
): Promise<{ manifests: Map<string, { manifest: Manifest; copies: FoundRecord[] }>; fragments: Map<string, FoundRecord[]>; recordsFound: number }> {
  const manifests = new Map<string, { manifest: Manifest; copies: FoundRecord[] }>();
  const fragments = new Map<string, FoundRecord[]>();
  let recordsFound = 0;
  for (const [diskIndex, { disk, path }] of disks.entries()) {
    for await (const found of disk.scanFragments()) {
      recordsFound += 1;
      if (recordsFound % 1000 === 0) onProgress?.({ disksScanned: diskIndex, disks: disks.length, recordsFound });
      if (found.extentIndex !== MANIFEST_EXTENT_INDEX) {
        fragments.set(found.versionId, [...(fragments.get(found.versionId) ?? []), { diskIndex, found }]);
        continue;
      }
      let manifest: Manifest;
      try {
        manifest = decodeManifest((await disk.readFragment(found)).data, `${path} (version ${found.versionId})`);
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
        continue; // a damaged copy: another copy may be whole
      }
      if (manifest.versionId !== found.versionId || manifest.key !== found.key) continue;
      const known = manifests.get(found.versionId);
      if (known) known.copies.push({ diskIndex, found });
      else manifests.set(found.versionId, { manifest, copies: [{ diskIndex, found }] });
    }
    onProgress?.({ disksScanned: diskIndex + 1, disks: disks.length, recordsFound });
  }
  return { manifests, fragments, recordsFound };
}

// ── deciding, key by key ──────────────────────────────────────────────────────────────────────────────────────

export type VersionFate = 'complete' | 'degraded' | 'torn' | 'unreadable';

export interface PlannedVersion {
  readonly manifest: VersionManifest;
  readonly copies: FoundRecord[];
  readonly fate: VersionFate;
  /** Per extent index: the fragments found, one per fragment index. */
  readonly extents: ReadonlyArray<ReadonlyMap<number, FoundRecord>>;
  readonly why: string;
}

export interface PlannedRemoval {
  readonly manifest: Manifest & { kind: 'removal' };
  readonly copies: FoundRecord[];
}

export interface ImportPlan {
  /** Per key, in sequence order. */
  readonly keys: ReadonlyMap<string, ReadonlyArray<PlannedVersion | PlannedRemoval>>;
  readonly versions: ReadonlyArray<PlannedVersion>;
  readonly missingDisks: ReadonlyArray<string>;
  readonly fragments: ReadonlyMap<string, FoundRecord[]>;
}

export function planImport(
  manifests: ReadonlyMap<string, { manifest: Manifest; copies: FoundRecord[] }>,
  fragments: ReadonlyMap<string, FoundRecord[]>,
  disks: ReadonlyArray<ScannedDisk>,
): ImportPlan {
  const present = new Set(disks.map((candidate) => candidate.disk.diskUuid));
  const missing = new Set<string>();
  const keys = new Map<string, Array<PlannedVersion | PlannedRemoval>>();
  const versions: PlannedVersion[] = [];
  for (const { manifest, copies } of manifests.values()) {
    if (isReservedKey(manifest.key)) continue;
    let planned: PlannedVersion | PlannedRemoval;
    if (manifest.kind === 'removal') {
      planned = { manifest, copies };
    } else {
      const absent = manifest.diskUuids.filter((uuid) => !present.has(uuid));
      for (const uuid of absent) missing.add(uuid);
      planned = planVersion(manifest, copies, fragments.get(manifest.versionId) ?? [], absent);
      versions.push(planned);
    }
    keys.set(manifest.key, [...(keys.get(manifest.key) ?? []), planned]);
  }
  for (const list of keys.values()) list.sort((a, b) => a.manifest.sequence - b.manifest.sequence);
  return { keys, versions, missingDisks: [...missing].sort(), fragments };
}

function planVersion(manifest: VersionManifest, copies: FoundRecord[], found: ReadonlyArray<FoundRecord>, absentDisks: ReadonlyArray<string>): PlannedVersion {
  const codec = createCodec(parsePolicy(manifest.policy));
  const extents = manifest.extentChecksums.map(() => new Map<number, FoundRecord>());
  for (const record of found) {
    const extent = extents[record.found.extentIndex];
    const expected = manifest.extentChecksums[record.found.extentIndex];
    // Only fragments of the very extent the manifest names (a record of another write of the version is not it).
    if (!extent || !expected || !checksumEquals(record.found.extentChecksum, expected)) continue;
    if (!extent.has(record.found.fragmentIndex)) extent.set(record.found.fragmentIndex, record);
  }
  const short = extents.findIndex((extent) => extent.size < codec.fragmentsNeeded);
  const whole = extents.every((extent) => extent.size === codec.fragmentCount);
  if (whole) return { manifest, copies, extents, fate: 'complete', why: '' };
  if (short < 0) return { manifest, copies, extents, fate: 'degraded', why: '' };
  const why = `extent ${short} has ${extents[short]!.size} of the ${codec.fragmentsNeeded} fragments it needs`;
  if (absentDisks.length === 0) return { manifest, copies, extents, fate: 'torn', why };
  return { manifest, copies, extents, fate: 'unreadable', why: `${why}; disks missing: ${absentDisks.join(', ')}` };
}

// ── writing the catalog ───────────────────────────────────────────────────────────────────────────────────────

async function writeCatalog(catalog: Catalog, disks: ReadonlyArray<ScannedDisk>, plan: ImportPlan): Promise<Omit<ImportReport, 'directory' | 'poolUuid'>> {
  const diskIds: number[] = [];
  const rows: ImportReport['disks'][number][] = [];
  for (const { disk, path } of disks) {
    const row = await catalog.addDisk({ uuid: disk.diskUuid, kind: disk.kind, path });
    diskIds.push(row.id);
    rows.push({ id: row.id, uuid: row.uuid, kind: row.kind, path: row.path });
  }
  // Stand-ins for the disks the manifests name but nobody gave: failed members, so reads go around them and
  // `rebuild` re-creates their fragments; more are added when a version lacks more fragments than they can hold.
  const standIns: number[] = [];
  const addStandIn = async (uuid: string) => {
    const row = await catalog.addDisk({ uuid, kind: 'directory', path: `missing:${uuid}` });
    await catalog.setDiskState(row.id, 'failed');
    standIns.push(row.id);
  };
  for (const uuid of plan.missingDisks) await addStandIn(uuid);

  const locate = (record: FoundRecord): FragmentRow => ({
    versionId: record.found.versionId,
    extentIndex: record.found.extentIndex,
    fragmentIndex: record.found.fragmentIndex,
    diskId: diskIds[record.diskIndex] as number,
    storedBytes: record.found.storedBytes,
    locationBytes: record.found.locationBytes,
  });
  /** The manifest's copies found, and stand-ins for those lost (so that rebuild writes them again). */
  const manifestExtent = async (manifest: Manifest, copies: ReadonlyArray<FoundRecord>): Promise<{ extent: ExtentRow; short: boolean }> => {
    const byIndex = new Map<number, FoundRecord>();
    for (const copy of copies) if (!byIndex.has(copy.found.fragmentIndex) && ![...byIndex.values()].some((other) => other.diskIndex === copy.diskIndex)) byIndex.set(copy.found.fragmentIndex, copy);
    const first = copies[0]!.found;
    const fragments = [...byIndex.values()].map(locate);
    const codec = createCodec(first.policy);
    const wanted = manifestCopies(codec.fragmentCount, codec.fragmentsNeeded);
    const used = new Set(fragments.map((fragment) => fragment.diskId));
    for (let fragmentIndex = 0; fragmentIndex < wanted; fragmentIndex += 1) {
      if (byIndex.has(fragmentIndex)) continue;
      let standIn = standIns.find((diskId) => !used.has(diskId));
      if (standIn === undefined) {
        await addStandIn(newUuid());
        standIn = standIns[standIns.length - 1] as number;
      }
      used.add(standIn);
      fragments.push({ versionId: manifest.versionId, extentIndex: MANIFEST_EXTENT_INDEX, fragmentIndex, diskId: standIn, storedBytes: first.storedBytes, locationBytes: 0 });
    }
    fragments.sort((a, b) => a.fragmentIndex - b.fragmentIndex);
    return {
      extent: { versionId: manifest.versionId, extentIndex: MANIFEST_EXTENT_INDEX, lengthBytes: first.extentLengthBytes, checksum: first.extentChecksum, fragments },
      short: byIndex.size < wanted,
    };
  };

  const degraded: string[] = [];
  const unreadable: Array<{ key: string; why: string }> = [];
  const buckets = new Set<string>();
  const bucketAccess = new Map<string, { sequence: number; access: { owner: string | undefined; acl: CannedAcl } }>();
  let objects = 0;
  let logicalBytes = 0;
  let removed = 0;
  let torn = 0;
  let garbage = 0;
  let maxSequence = 0;
  const importedVersions = new Set<string>();
  for (const [key, history] of [...plan.keys].sort(([a], [b]) => (Buffer.compare(Buffer.from(a), Buffer.from(b))))) {
    let current: { version: PlannedVersion; short: boolean } | undefined;
    let applied = 0;
    let unreadableLast: PlannedVersion | undefined;
    for (const step of history) {
      maxSequence = Math.max(maxSequence, step.manifest.sequence);
      importedVersions.add(step.manifest.versionId);
      if (step.manifest.kind === 'removal') {
        await catalog.removeWithMarker(key, { versionId: step.manifest.versionId, sequence: step.manifest.sequence, extent: (await manifestExtent(step.manifest, step.copies)).extent });
        current = undefined;
        unreadableLast = undefined;
        applied += 1;
        continue;
      }
      const version = step as PlannedVersion;
      if (version.fate === 'torn') {
        // Left as an interrupted put: the next write-open deletes every record of it.
        await catalog.beginIntent(version.manifest.versionId, key);
        await catalog.recordIntentExtents(version.manifest.versionId, foundExtents(version, locate));
        torn += 1;
        continue;
      }
      if (version.fate === 'unreadable') {
        unreadableLast = version;
        continue;
      }
      const extents = await fillExtents(version, locate, standIns, addStandIn);
      const object: ObjectRow = {
        key,
        versionId: version.manifest.versionId,
        sizeBytes: version.manifest.sizeBytes,
        policy: version.manifest.policy,
        fragmentCount: createCodec(parsePolicy(version.manifest.policy)).fragmentCount,
        fragmentsNeeded: createCodec(parsePolicy(version.manifest.policy)).fragmentsNeeded,
        extentSizeBytes: version.manifest.extentSizeBytes,
        extentCount: version.manifest.extentChecksums.length,
        createdAtMs: version.manifest.createdAtMs,
        sequence: version.manifest.sequence,
      };
      const manifest = await manifestExtent(version.manifest, version.copies);
      await catalog.commitObject({ object, extents: [...extents, manifest.extent], metadata: objectMetadata(version.manifest) });
      current = { version, short: manifest.short };
      unreadableLast = undefined;
      applied += 1;
    }
    garbage += Math.max(0, applied - (current ? 1 : 0));
    if (unreadableLast !== undefined) {
      // The newest committed version cannot be read: the key is not given an older one instead.
      if (current) await catalog.takeObject(key);
      unreadable.push({ key, why: unreadableLast.why });
      continue;
    }
    if (!current) {
      if (applied > 0) removed += 1;
      continue;
    }
    objects += 1;
    logicalBytes += current.version.manifest.sizeBytes;
    if (current.version.fate === 'degraded' || current.short) degraded.push(key);
    if (current.version.manifest.metadata !== undefined && key.includes('/')) {
      const bucket = key.slice(0, key.indexOf('/'));
      buckets.add(bucket);
      noteBucketAccess(bucketAccess, bucket, current.version.manifest);
    }
  }
  // A bucket's owner and ACL as its newest object recorded them; a bucket whose objects recorded none (written before
  // tenants) is owned by no one: admins only, until granted (docs/operations.md § Access control).
  for (const bucket of [...buckets].sort()) await catalog.s3.createBucket(bucket, bucketAccess.get(bucket)?.access ?? { owner: undefined, acl: 'private' });
  await catalog.raiseSequence(maxSequence);
  let recordsWithoutManifest = 0;
  for (const [versionId, records] of plan.fragments) if (!importedVersions.has(versionId)) recordsWithoutManifest += records.length;
  return {
    disks: rows,
    missingDisks: plan.missingDisks,
    objects,
    logicalBytes,
    degraded,
    unreadable,
    removed,
    torn,
    garbage,
    recordsWithoutManifest,
    buckets: [...buckets].sort(),
  };
}

/** The extents of a restorable version, each fragment index present once: found, or placed on a failed stand-in. */
async function fillExtents(
  version: PlannedVersion,
  locate: (record: FoundRecord) => FragmentRow,
  standIns: number[],
  addStandIn: (uuid: string) => Promise<void>,
): Promise<ExtentRow[]> {
  const codec = createCodec(parsePolicy(version.manifest.policy));
  const rows: ExtentRow[] = [];
  for (const [extentIndex, found] of version.extents.entries()) {
    const lengthBytes = manifestExtentLength(version.manifest, extentIndex);
    const fragments: FragmentRow[] = [];
    const used = new Set<number>();
    for (const record of found.values()) {
      const row = locate(record);
      fragments.push(row);
      used.add(row.diskId);
    }
    for (let fragmentIndex = 0; fragmentIndex < codec.fragmentCount; fragmentIndex += 1) {
      if (found.has(fragmentIndex)) continue;
      let standIn = standIns.find((diskId) => !used.has(diskId));
      if (standIn === undefined) {
        await addStandIn(newUuid());
        standIn = standIns[standIns.length - 1] as number;
      }
      used.add(standIn);
      fragments.push({
        versionId: version.manifest.versionId,
        extentIndex,
        fragmentIndex,
        diskId: standIn,
        storedBytes: fragmentHeaderLengthBytes(version.manifest.key) + codec.fragmentLengthBytes(lengthBytes),
        locationBytes: 0,
      });
    }
    fragments.sort((a, b) => a.fragmentIndex - b.fragmentIndex);
    rows.push({ versionId: version.manifest.versionId, extentIndex, lengthBytes, checksum: version.manifest.extentChecksums[extentIndex] as Buffer, fragments });
  }
  return rows;
}

/** The records found of a torn version, as extent rows (so that its cleanup deletes each by location). */
function foundExtents(version: PlannedVersion, locate: (record: FoundRecord) => FragmentRow): ExtentRow[] {
  const rows: ExtentRow[] = [];
  for (const [extentIndex, found] of version.extents.entries()) {
    if (found.size === 0) continue;
    rows.push({
      versionId: version.manifest.versionId,
      extentIndex,
      lengthBytes: manifestExtentLength(version.manifest, extentIndex),
      checksum: version.manifest.extentChecksums[extentIndex] as Buffer,
      fragments: [...found.values()].map(locate).sort((a, b) => a.fragmentIndex - b.fragmentIndex),
    });
  }
  const manifestCopiesFound = new Map<number, FoundRecord>();
  for (const copy of version.copies) if (!manifestCopiesFound.has(copy.found.fragmentIndex)) manifestCopiesFound.set(copy.found.fragmentIndex, copy);
  const first = version.copies[0]!.found;
  rows.push({
    versionId: version.manifest.versionId,
    extentIndex: MANIFEST_EXTENT_INDEX,
    lengthBytes: first.extentLengthBytes,
    checksum: first.extentChecksum,
    fragments: [...manifestCopiesFound.values()].map(locate).sort((a, b) => a.fragmentIndex - b.fragmentIndex),
  });
  return rows;
}

/** Keeps the bucket access recorded by the newest version (highest sequence) of the bucket's current objects. */
function noteBucketAccess(
  found: Map<string, { sequence: number; access: { owner: string | undefined; acl: CannedAcl } }>,
  bucket: string,
  manifest: VersionManifest,
): void {
  const recorded = manifest.metadata?.bucketAccess as { owner?: unknown; acl?: unknown } | undefined;
  if (typeof recorded !== 'object' || recorded === null) return;
  const owner = typeof recorded.owner === 'string' ? recorded.owner : undefined;
  const acl: CannedAcl = recorded.acl === 'public-read' ? 'public-read' : 'private';
  const known = found.get(bucket);
  if (known === undefined || known.sequence < manifest.sequence) found.set(bucket, { sequence: manifest.sequence, access: { owner, acl } });
}

function objectMetadata(manifest: VersionManifest): ObjectMetadata | undefined {
  const metadata = manifest.metadata;
  if (metadata === undefined) return undefined;
  const contentType = metadata.contentType;
  const userMetadata = metadata.userMetadata;
  const encryption = metadata.encryption;
  return {
    ...metadata,
    etag: metadata.etag,
    // What an encrypted version needs to decrypt travels in its manifest (never a key in the clear): kept as written,
    // and verified by the S3 layer whenever it reads it.
    encryption: typeof encryption === 'object' && encryption !== null && !Array.isArray(encryption) ? (encryption as Record<string, unknown>) : undefined,
    contentType: typeof contentType === 'string' ? contentType : undefined,
    userMetadata: typeof userMetadata === 'object' && userMetadata !== null ? (userMetadata as Record<string, string>) : {},
    // The version's own ACL comes back with it (a manifest from before tenants has none: private).
    acl: metadata.acl === 'public-read' ? 'public-read' : undefined,
  };
}

function mostCommon<T>(values: ReadonlyArray<T>, name: (value: T) => string): T | undefined {
  const counts = new Map<string, { value: T; count: number }>();
  for (const value of values) {
    const entry = counts.get(name(value)) ?? { value, count: 0 };
    entry.count += 1;
    counts.set(name(value), entry);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count)[0]?.value;
}
