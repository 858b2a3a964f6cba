// recover: cross-checks the catalog, each disk's allocation state and the fragments found by scanning the disks.
// Opening the pool for writing has already replayed every device journal and reconciled pending allocations; what
// recover then finds is what no protocol step could have decided alone:
//   orphans  fragments on a disk that no catalog row references (a crash between a copy and its commit, a lost
//            catalog update)                                        → --cleanup deletes them
//   strays   space holding no verified fragment (device units without a record, temp files) → --cleanup frees them
//   missing  catalog rows whose fragment is not on its disk         → reported; reads rebuild them from redundancy
// scanOnly lists what the disks hold without any catalog (a pool whose catalog directory was lost).
import type { Disk, FoundFragment } from '../disk/disk.js';
import { isShardpoolError } from '../errors.js';
import type { Pool } from '../pool/pool.js';

export interface DiskRecoverReport {
  readonly id: number;
  readonly path: string;
  readonly kind: string;
  readonly scannedFragments: number;
  readonly orphans: Array<{ key: string; versionId: string; extentIndex: number; fragmentIndex: number; locationBytes: number }>;
  readonly strays: Array<{ what: string; bytes: number }>;
  readonly missing: Array<{ versionId: string; extentIndex: number; fragmentIndex: number; reason: string }>;
  readonly skipped: string | undefined;
  cleaned: { orphansDeleted: number; straysReleased: number; bytesReleased: number } | undefined;
}

export interface RecoverReport {
  readonly disks: DiskRecoverReport[];
  readonly problems: number;
  readonly cleaned: boolean;
}

/** With cleanup the pool must be open for writing; a report alone works on a pool opened for reading. */
export async function recoverPool(pool: Pool, options: { cleanup: boolean }): Promise<RecoverReport> {
  if (options.cleanup) pool.assertWritable();
  const disks: DiskRecoverReport[] = [];
  const checks: Array<Promise<void>> = [];
  for (const member of pool.listMembers()) {
    const report: DiskRecoverReport = {
      id: member.row.id,
      path: member.row.path,
      kind: member.row.kind,
      scannedFragments: 0,
      orphans: [],
      strays: [],
      missing: [],
      skipped: undefined,
      cleaned: undefined,
    };
    disks.push(report);
    if (member.row.state === 'failed' || !member.disk) {
      Object.assign(report, { skipped: member.row.state === 'failed' ? 'marked failed' : `offline: ${member.offlineReason}` });
      continue;
    }
    checks.push(
      checkDisk(pool, member.row.id, member.disk, report, options.cleanup).catch((error: unknown) => {
        // A drain that finished meanwhile took the disk out of the pool (its handle refuses calls from then on):
        // nothing of the pool is left on it to report.
        if (!isShardpoolError(error, 'DISK_OFFLINE') || !pool.isLeaving(member.row.id)) throw error;
        Object.assign(report, { skipped: 'removed from the pool during the scan', orphans: [], strays: [], missing: [] });
      }),
    );
  }
  // Disks are scanned side by side: each scan waits on its own device.
  // Every scan finishes (a cleanup is never left running) before the first failure, if any, is reported.
  const failed = (await Promise.allSettled(checks)).find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  const problems = disks.reduce((sum, disk) => sum + disk.orphans.length + disk.strays.length + disk.missing.length, 0);
  return { disks, problems, cleaned: options.cleanup };
}

async function checkDisk(pool: Pool, diskId: number, disk: Disk, report: DiskRecoverReport, cleanup: boolean): Promise<void> {
  const referenced = new Map((await pool.catalog.fragmentsOnDisk(diskId)).map((row) => [nameOf(row), row]));
  const found = new Map<string, FoundFragment>();
  for await (const fragment of disk.scanFragments([...referenced.values()].map((row) => row.locationBytes))) found.set(nameOf(fragment), fragment);
  (report as { scannedFragments: number }).scannedFragments = found.size;
  // Every decision reads the catalog as it is now, not as it was before the scan: in the daemon, puts commit and
  // moves finish while a disk is scanned, and a fragment committed meanwhile is not an orphan.
  const inFlight = async (versionId: string) => (await pool.catalog.hasIntent(versionId)) || (await pool.catalog.isMoving({ versionId }));
  // A put or a move in flight (in this process, or another when this pool is open for reading) is not an orphan; on
  // a device the location must match too: a stale copy elsewhere is an orphan even if the address is known. Read in
  // one transaction, so a put committing meanwhile is seen either in flight or referenced.
  const isUnreferenced = async (fragment: FoundFragment): Promise<boolean> =>
    (await pool.catalog.fragmentStatus(fragment, { diskId, locationBytes: disk.kind === 'block-device' ? fragment.locationBytes : undefined })) === 'unreferenced';
  // Unreferenced now, and still on the disk after that was read: a collection deletes a record before its rows, so
  // a record the scan found before its collection began is not an orphan once its rows are gone.
  const isOrphan = async (fragment: FoundFragment): Promise<boolean> => (await isUnreferenced(fragment)) && (await disk.holdsRecord(fragment));
  const orphans: FoundFragment[] = [];
  for (const fragment of found.values()) if (await isOrphan(fragment)) orphans.push(fragment);
  for (const [name, scannedRow] of referenced) {
    const row = await pool.catalog.fragmentRow(scannedRow);
    if (!row || row.diskId !== diskId || row.locationBytes !== scannedRow.locationBytes) continue; // moved or collected meanwhile
    const fragment = found.get(name);
    if (!fragment) report.missing.push({ ...addressOf(row), reason: 'not found on the disk' });
    else if (disk.kind === 'block-device' && fragment.locationBytes !== row.locationBytes) {
      report.missing.push({ ...addressOf(row), reason: `found at ${fragment.locationBytes}, the catalog says ${row.locationBytes}` });
    }
  }
  report.orphans.push(
    ...orphans.map((fragment) => ({ key: fragment.key, ...addressOf(fragment), locationBytes: fragment.locationBytes })),
  );
  const strays = [];
  for await (const stray of disk.strays([...found.values()], inFlight)) strays.push(stray);
  report.strays.push(...strays.map((stray) => ({ what: stray.what, bytes: stray.bytes })));
  if (!cleanup || (orphans.length === 0 && strays.length === 0)) return;
  const cleaned = { orphansDeleted: 0, straysReleased: 0, bytesReleased: 0 };
  for (const orphan of orphans) {
    if (!(await isUnreferenced(orphan))) continue; // committed or moved here while the others were deleted
    try {
      await disk.deleteFragment(orphan);
      cleaned.orphansDeleted += 1;
      cleaned.bytesReleased += orphan.storedBytes;
    } catch (error) {
      if (!isShardpoolError(error)) throw error;
    }
  }
  for (const stray of strays) {
    await stray.release();
    cleaned.straysReleased += 1;
    cleaned.bytesReleased += stray.bytes;
  }
  await disk.flush();
  report.cleaned = cleaned;
}

/** What the disks hold, grouped by object version, read from fragment headers alone. */
export interface ScannedObject {
  readonly key: string;
  readonly versionId: string;
  readonly policy: string;
  readonly fragmentsNeeded: number;
  readonly extents: Array<{ index: number; lengthBytes: number; fragments: Array<{ fragmentIndex: number; disk: string }>; readable: boolean }>;
}

export async function scanDisks(disks: ReadonlyArray<Disk>): Promise<ScannedObject[]> {
  type Found = { fragmentIndex: number; disk: string };
  type ExtentFound = { lengthBytes: number; fragments: Found[] };
  const objects = new Map<string, { key: string; versionId: string; policy: FoundFragment['policy']; extents: Map<number, ExtentFound> }>();
  for (const disk of disks) {
    for await (const fragment of disk.scanFragments()) {
      const object = objects.get(fragment.versionId) ?? { key: fragment.key, versionId: fragment.versionId, policy: fragment.policy, extents: new Map() };
      objects.set(fragment.versionId, object);
      const extent: ExtentFound = object.extents.get(fragment.extentIndex) ?? { lengthBytes: fragment.extentLengthBytes, fragments: [] };
      object.extents.set(fragment.extentIndex, extent);
      if (!extent.fragments.some((known) => known.fragmentIndex === fragment.fragmentIndex)) {
        extent.fragments.push({ fragmentIndex: fragment.fragmentIndex, disk: disk.path });
      }
    }
  }
  return [...objects.values()]
    .map((object) => {
      const needed = object.policy.kind === 'replica' ? 1 : object.policy.dataFragments;
      const policy = object.policy.kind === 'replica' ? `replica:${object.policy.copies}` : `ec:${object.policy.dataFragments}+${object.policy.parityFragments}`;
      return {
        key: object.key,
        versionId: object.versionId,
        policy,
        fragmentsNeeded: needed,
        extents: [...object.extents.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([index, extent]) => ({
            index,
            lengthBytes: extent.lengthBytes,
            fragments: extent.fragments.sort((a, b) => a.fragmentIndex - b.fragmentIndex),
            readable: extent.fragments.length >= needed,
          })),
      };
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function nameOf(address: { versionId: string; extentIndex: number; fragmentIndex: number }): string {
  return `${address.versionId}.${address.extentIndex}.${address.fragmentIndex}`;
}

function addressOf(address: { versionId: string; extentIndex: number; fragmentIndex: number }): { versionId: string; extentIndex: number; fragmentIndex: number } {
  return { versionId: address.versionId, extentIndex: address.extentIndex, fragmentIndex: address.fragmentIndex };
}
