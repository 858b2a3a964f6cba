// Read-only reports: the pool's status (disks, capacity, redundancy) and one object's layout and health.
// Health is judged from the catalog and disk states without reading fragments (scrub reads them).
import type { DiskGeometry } from '../disk/disk.js';
import { formatPolicy } from '../redundancy/policy.js';
import type { ObjectRow } from './catalog/catalog.js';
import type { Pool } from './pool.js';

export type Health = 'healthy' | 'degraded' | 'unreadable';

export interface DiskDescription {
  readonly id: number;
  readonly uuid: string;
  readonly kind: string;
  readonly path: string;
  readonly state: string;
  readonly online: boolean;
  readonly acceptsFragments: boolean;
  /** Block devices: sector sizes, allocation unit and whether O_DIRECT is in use. */
  readonly geometry: DiskGeometry | undefined;
  readonly offlineReason: string | undefined;
  /** Why the disk refuses writes since a failed flush (until the pool is reopened), else undefined. */
  readonly latchedFailure: string | undefined;
  readonly capacityBytes: number | undefined;
  readonly freeBytes: number | undefined;
  /** Bytes of fragments (headers included) the catalog places on this disk. */
  readonly usedBytes: number;
  readonly fragmentCount: number;
}

export interface PoolDescription {
  readonly directory: string;
  readonly poolUuid: string;
  readonly formatVersion: number;
  readonly defaultPolicy: string;
  readonly extentSizeBytes: number;
  readonly createdAt: string;
  readonly health: Health;
  readonly disks: DiskDescription[];
  readonly objectCount: number;
  readonly logicalBytes: number;
  readonly storedBytes: number;
  /** Extents with at least one fragment on a failed or unreachable disk. */
  readonly extentsBelowFullRedundancy: number;
  /** Extents with fewer readable fragments than their policy needs. */
  readonly extentsUnreadable: number;
  readonly counters: Record<string, number>;
}

export interface FragmentDescription {
  readonly index: number;
  readonly diskId: number;
  readonly diskPath: string;
  readonly diskState: string;
  readonly available: boolean;
}

export interface ExtentDescription {
  readonly index: number;
  readonly lengthBytes: number;
  readonly checksum: string;
  readonly health: Health;
  readonly fragments: FragmentDescription[];
}

export interface ObjectDescription {
  readonly key: string;
  readonly versionId: string;
  readonly sizeBytes: number;
  readonly policy: string;
  readonly extentSizeBytes: number;
  readonly extentCount: number;
  readonly createdAt: string;
  readonly health: Health;
  readonly extentsBelowFullRedundancy: number;
  readonly extentsUnreadable: number;
  readonly extents: ExtentDescription[];
}

export async function describePool(pool: Pool): Promise<PoolDescription> {
  const usage = await pool.catalog.diskUsage();
  const disks: DiskDescription[] = [];
  for (const member of pool.listMembers()) {
    const space = member.disk ? await member.disk.space().catch(() => undefined) : undefined;
    const used = usage.get(member.row.id);
    disks.push({
      id: member.row.id,
      uuid: member.row.uuid,
      kind: member.row.kind,
      path: member.row.path,
      state: member.row.state,
      online: member.disk !== undefined,
      acceptsFragments: member.disk?.acceptsFragments ?? false,
      geometry: member.disk?.geometry,
      offlineReason: member.offlineReason,
      latchedFailure: member.disk?.latchedFailure?.message,
      capacityBytes: space?.capacityBytes,
      freeBytes: space?.freeBytes,
      usedBytes: used?.storedBytes ?? 0,
      fragmentCount: used?.fragmentCount ?? 0,
    });
  }
  const totals = await pool.catalog.objectTotals();
  const redundancy = await pool.catalog.redundancyReport(pool.unavailableDiskIds());
  return {
    directory: pool.directory,
    poolUuid: pool.config.poolUuid,
    formatVersion: pool.config.formatVersion,
    defaultPolicy: formatPolicy(pool.config.defaultPolicy),
    extentSizeBytes: pool.config.extentSizeBytes,
    createdAt: pool.config.createdAt,
    health: healthOf(redundancy.degradedExtents, redundancy.unreadableExtents),
    disks,
    objectCount: totals.objectCount,
    logicalBytes: totals.logicalBytes,
    storedBytes: disks.reduce((sum, disk) => sum + disk.usedBytes, 0),
    extentsBelowFullRedundancy: redundancy.degradedExtents,
    extentsUnreadable: redundancy.unreadableExtents,
    counters: await pool.catalog.counters(),
  };
}

export async function describeObject(pool: Pool, object: ObjectRow): Promise<ObjectDescription> {
  const unavailable = new Set(pool.unavailableDiskIds());
  const extents = (await pool.catalog.extentsOf(object.versionId)).map((extent): ExtentDescription => {
    const fragments = extent.fragments.map((fragment): FragmentDescription => {
      const member = pool.member(fragment.diskId);
      return {
        index: fragment.fragmentIndex,
        diskId: fragment.diskId,
        diskPath: member.row.path,
        diskState: member.disk || member.row.state === 'failed' ? member.row.state : 'offline',
        available: !unavailable.has(fragment.diskId),
      };
    });
    const available = fragments.filter((fragment) => fragment.available).length;
    const health: Health =
      available < object.fragmentsNeeded ? 'unreadable' : available < object.fragmentCount ? 'degraded' : 'healthy';
    return { index: extent.extentIndex, lengthBytes: extent.lengthBytes, checksum: extent.checksum.toString('hex'), health, fragments };
  });
  const degraded = extents.filter((extent) => extent.health !== 'healthy').length;
  const unreadable = extents.filter((extent) => extent.health === 'unreadable').length;
  return {
    key: object.key,
    versionId: object.versionId,
    sizeBytes: object.sizeBytes,
    policy: object.policy,
    extentSizeBytes: object.extentSizeBytes,
    extentCount: object.extentCount,
    createdAt: new Date(object.createdAtMs).toISOString(),
    health: healthOf(degraded, unreadable),
    extentsBelowFullRedundancy: degraded,
    extentsUnreadable: unreadable,
    extents,
  };
}

function healthOf(degraded: number, unreadable: number): Health {
  return unreadable > 0 ? 'unreadable' : degraded > 0 ? 'degraded' : 'healthy';
}
