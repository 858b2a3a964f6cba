// Scrub: read every fragment of every object (devices: O_DIRECT, so the page cache cannot hide corruption), verify
// header, identity and data checksums, and report what is missing, corrupt, misplaced or unavailable, plus orphans
// and strays found by scanning the disks. With repair, each extent with at most M bad fragments is made whole again:
// every bad fragment is rebuilt from the good ones and written to a fresh location through the relocation protocol
// (the old copy freed only after the catalog points at the new one). Resumable: progress is saved in the pool
// directory, and an interrupted scrub continues after the last object it finished.
import * as path from 'node:path';
import { MANIFEST_EXTENT_INDEX } from '../constants.js';
import { DeviceDisk } from '../disk/device/device-disk.js';
import { isShardpoolError } from '../errors.js';
import { readFileIfExists, removeFileIfExists, writeFileDurable } from '../io/durable-files.js';
import type { ExtentRow, FragmentRow, ObjectRow } from '../pool/catalog/catalog.js';
import { forEachBounded } from '../pool/concurrency.js';
import type { Pool } from '../pool/pool.js';
import { faultTolerance, parsePolicy } from '../redundancy/policy.js';
import { reportMaintenance } from './maintenance-observer.js';
import { recoverPool, type RecoverReport } from './recover.js';
import { relocateFragment } from './relocate.js';

export type FindingKind = 'missing' | 'corrupt' | 'misplaced' | 'unavailable' | 'orphan' | 'stray';
export const FINDING_KINDS: ReadonlyArray<FindingKind> = ['missing', 'corrupt', 'misplaced', 'unavailable', 'orphan', 'stray'];

export interface Finding {
  readonly kind: FindingKind;
  readonly diskId: number;
  readonly key?: string;
  readonly extentIndex?: number;
  readonly fragmentIndex?: number;
  readonly detail: string;
  repaired: boolean;
}

export interface ScrubOptions {
  readonly repair: boolean;
  /** Only fragments on this disk (and orphans on it). */
  readonly diskId?: number | undefined;
  readonly rateBytesPerSecond?: number | undefined;
  /** Ignore a saved position and start over. */
  readonly restart?: boolean;
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Polled between objects: true stops the scrub there (Ctrl-C), leaving it resumable. */
  readonly shouldStop?: () => boolean;
}

export interface ScrubReport {
  objectsScrubbed: number;
  extentsScrubbed: number;
  fragmentsRead: number;
  bytesRead: number;
  readonly counts: Record<FindingKind, number>;
  readonly perDisk: Record<string, Record<FindingKind, number>>;
  repaired: number;
  readonly unrepairable: Array<{ key: string; extentIndex: number; reason: string }>;
  /** Findings, at most FINDINGS_LISTED_MAX of them (the counts are complete). */
  readonly findings: Finding[];
  resumedAfterKey: string | undefined;
  interrupted: boolean;
  /** True when nothing remains wrong at the end: nothing found, or everything found repaired. */
  clean: boolean;
}

const SCRUB_STATE_FILE = 'scrub-state.json';
const OBJECT_BATCH_COUNT = 64;
const STATE_SAVE_INTERVAL_MS = 2000;
const FINDINGS_LISTED_MAX = 1000;

interface SavedState {
  readonly afterKey: string;
  readonly repair: boolean;
  readonly diskId: number | null;
  readonly report: ScrubReport;
}

export async function scrubPool(pool: Pool, options: ScrubOptions): Promise<ScrubReport> {
  if (options.repair) pool.assertWritable();
  const statePath = path.join(pool.directory, SCRUB_STATE_FILE);
  const saved = options.restart ? undefined : await loadState(statePath, options);
  const report: ScrubReport = saved?.report ?? emptyReport();
  report.resumedAfterKey = saved?.afterKey;
  report.interrupted = false;
  const totalBytes = (await pool.describe()).storedBytes;
  const started = Date.now();
  const bytesAtStart = report.bytesRead;
  let afterKey = saved?.afterKey;
  let lastSave = Date.now();
  for (;;) {
    const objects = await pool.catalog.objectsAfter(afterKey, OBJECT_BATCH_COUNT);
    if (objects.length === 0) break;
    for (const object of objects) {
      if (options.shouldStop?.()) {
        report.interrupted = true;
        await saveState(statePath, { afterKey: afterKey ?? '', repair: options.repair, diskId: options.diskId ?? null, report });
        return finish(report);
      }
      // Pinned: in the daemon an overwrite may commit meanwhile, and its garbage collection must not delete the
      // fragments being verified (they would look missing).
      const unpin = await pool.pinCurrent(object);
      try {
        if (unpin) await scrubObject(pool, object, report, options);
      } finally {
        unpin?.();
      }
      report.objectsScrubbed += 1;
      afterKey = object.key;
      options.onProgress?.(report.bytesRead, totalBytes);
      reportMaintenance({ kind: 'scrub', phase: 'progress', doneBytes: report.bytesRead, totalBytes });
      await throttle(options.rateBytesPerSecond, report.bytesRead - bytesAtStart, started);
      if (Date.now() - lastSave > STATE_SAVE_INTERVAL_MS) {
        await saveState(statePath, { afterKey, repair: options.repair, diskId: options.diskId ?? null, report });
        lastSave = Date.now();
      }
    }
  }
  await checkDeviceLabels(pool, report, options);
  // Orphans and strays: what the disks hold that no object accounts for (a write-open has reconciled the rest).
  if (options.repair) addRecoverFindings(report, await recoverPool(pool, { cleanup: true }), options.diskId, true);
  else addRecoverFindings(report, await scanForOrphans(pool), options.diskId, false);
  await removeFileIfExists(statePath);
  return finish(report);
}

/** Extents whose fragments are read at once: enough to keep every disk busy, few enough to bound memory. */
const EXTENTS_CHECKED_IN_PARALLEL = 4;

async function scrubObject(pool: Pool, object: ObjectRow, report: ScrubReport, options: ScrubOptions): Promise<void> {
  const policy = parsePolicy(object.policy);
  const tolerance = faultTolerance(policy);
  // The version's manifest copies too (docs/format.md § Version manifest): as many as the policy tolerates losing,
  // plus one, so the same tolerance decides whether they can be repaired (from a copy that verifies).
  const manifest = await pool.catalog.extentOf(object.versionId, MANIFEST_EXTENT_INDEX);
  const extents = [...(await pool.catalog.extentsOf(object.versionId)), ...(manifest ? [manifest] : [])].filter(
    (extent) => options.diskId === undefined || extent.fragments.some((fragment) => fragment.diskId === options.diskId),
  );
  // Read and verify all fragments of several extents concurrently; repairs (which change the catalog) run after.
  const checked: Array<{ extent: ExtentRow; bad: Array<{ fragment: FragmentRow; finding: Finding }> }> = [];
  await forEachBounded(extents, EXTENTS_CHECKED_IN_PARALLEL, async (extent) => {
    const findings = await Promise.all(extent.fragments.map((fragment) => checkCurrentFragment(pool, object, extent, fragment, report)));
    const bad = extent.fragments
      .map((fragment, index) => ({ fragment, finding: findings[index] }))
      .filter((entry): entry is { fragment: FragmentRow; finding: Finding } => entry.finding !== undefined);
    checked.push({ extent, bad });
  });
  checked.sort((a, b) => a.extent.extentIndex - b.extent.extentIndex);
  for (const { extent, bad } of checked) {
    if (extent.extentIndex !== MANIFEST_EXTENT_INDEX) report.extentsScrubbed += 1;
    for (const { fragment, finding } of bad) {
      if (options.diskId === undefined || fragment.diskId === options.diskId) record(report, finding);
    }
    if (bad.length === 0 || !options.repair) continue;
    if (bad.length > tolerance) {
      report.unrepairable.push({
        key: object.key,
        extentIndex: extent.extentIndex,
        reason: `${bad.length} of ${extent.fragments.length} fragments bad, ${object.policy} tolerates ${tolerance}`,
      });
      continue;
    }
    for (const { fragment, finding } of bad) {
      try {
        const current = await pool.catalog.extentOf(object.versionId, extent.extentIndex);
        if (!current) break;
        const row = current.fragments.find((candidate) => candidate.fragmentIndex === fragment.fragmentIndex) ?? fragment;
        const onHealthyDisk = finding.kind !== 'unavailable' && pool.member(row.diskId).disk?.acceptsFragments === true;
        const how = await relocateFragment(pool, { object, extent: current, fragment: row }, { inPlace: onHealthyDisk, rebuild: true });
        if (how === 'skipped') continue; // overwritten or removed meanwhile: nothing left to repair
        finding.repaired = true;
        report.repaired += 1;
      } catch (error) {
        if (!isShardpoolError(error)) throw error;
        report.unrepairable.push({ key: object.key, extentIndex: extent.extentIndex, reason: `fragment ${fragment.fragmentIndex}: ${error.code}: ${error.message}` });
      }
    }
  }
}

/**
 * Checks a fragment where the catalog places it. A check that fails is repeated where the catalog places it now if
 * the fragment was moved meanwhile (a drain or defrag runs beside a background scrub): its old copy is gone by design.
 */
async function checkCurrentFragment(pool: Pool, object: ObjectRow, extent: ExtentRow, fragment: FragmentRow, report: ScrubReport): Promise<Finding | undefined> {
  let checked = fragment;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const finding = await checkFragment(pool, object, extent, checked, report);
    if (!finding) return undefined;
    const now = await pool.catalog.fragmentRow(checked);
    if (!now || (now.diskId === checked.diskId && now.locationBytes === checked.locationBytes)) return finding;
    checked = now;
  }
  return checkFragment(pool, object, extent, checked, report);
}

async function checkFragment(pool: Pool, object: ObjectRow, extent: ExtentRow, fragment: FragmentRow, report: ScrubReport): Promise<Finding | undefined> {
  const base = { diskId: fragment.diskId, key: object.key, extentIndex: extent.extentIndex, fragmentIndex: fragment.fragmentIndex, repaired: false };
  const disk = pool.readableDisk(fragment.diskId);
  if (!disk) {
    const member = pool.member(fragment.diskId);
    return { ...base, kind: 'unavailable', detail: member.row.state === 'failed' ? 'disk marked failed' : `disk offline: ${member.offlineReason ?? ''}` };
  }
  try {
    await disk.verifyFragment(fragment);
    report.fragmentsRead += 1;
    report.bytesRead += fragment.storedBytes;
    return undefined;
  } catch (error) {
    if (!isShardpoolError(error)) throw error;
    report.bytesRead += fragment.storedBytes;
    const kind: FindingKind =
      error.code === 'FRAGMENT_MISSING'
        ? 'missing'
        : error.code === 'FRAGMENT_IDENTITY_MISMATCH'
          ? 'misplaced'
          : error.code === 'DISK_OFFLINE'
            ? 'unavailable'
            : 'corrupt';
    return { ...base, kind, detail: `${error.code}: ${error.message}` };
  }
}

/** A damaged label copy is survivable (the others outvote it) but must not stay damaged. */
async function checkDeviceLabels(pool: Pool, report: ScrubReport, options: ScrubOptions): Promise<void> {
  for (const member of pool.listMembers()) {
    if (!(member.disk instanceof DeviceDisk) || (options.diskId !== undefined && member.row.id !== options.diskId)) continue;
    let damaged: number;
    try {
      damaged = await member.disk.damagedLabelCopies();
    } catch (error) {
      if (isShardpoolError(error, 'DISK_OFFLINE') && pool.isLeaving(member.row.id)) continue; // a drain took it away
      throw error;
    }
    if (damaged === 0) continue;
    const finding: Finding = { kind: 'corrupt', diskId: member.row.id, detail: `${damaged} of 3 device label copies damaged`, repaired: false };
    if (options.repair && member.disk.acceptsFragments) {
      await member.disk.rewriteLabels();
      finding.repaired = true;
      report.repaired += 1;
    }
    record(report, finding);
  }
}

/** Without --repair, orphans and strays are found the same way recover finds them, read-only. */
async function scanForOrphans(pool: Pool): Promise<RecoverReport> {
  return recoverPool(pool, { cleanup: false });
}

function addRecoverFindings(report: ScrubReport, recovered: RecoverReport, diskId: number | undefined, repaired: boolean): void {
  for (const disk of recovered.disks) {
    if (diskId !== undefined && disk.id !== diskId) continue;
    for (const orphan of disk.orphans) {
      record(report, { kind: 'orphan', diskId: disk.id, key: orphan.key, extentIndex: orphan.extentIndex, fragmentIndex: orphan.fragmentIndex, detail: `version ${orphan.versionId} at ${orphan.locationBytes}`, repaired });
      if (repaired) report.repaired += 1;
    }
    for (const stray of disk.strays) {
      record(report, { kind: 'stray', diskId: disk.id, detail: stray.what, repaired });
      if (repaired) report.repaired += 1;
    }
  }
}

function record(report: ScrubReport, finding: Finding): void {
  report.counts[finding.kind] += 1;
  const perDisk = (report.perDisk[String(finding.diskId)] ??= emptyCounts());
  perDisk[finding.kind] += 1;
  if (report.findings.length < FINDINGS_LISTED_MAX) report.findings.push(finding);
}

function finish(report: ScrubReport): ScrubReport {
  const found = FINDING_KINDS.reduce((sum, kind) => sum + report.counts[kind], 0);
  const fixed = report.findings.filter((finding) => finding.repaired).length;
  const allListed = report.findings.length === found;
  report.clean = !report.interrupted && (found === 0 || (allListed && fixed === found && report.unrepairable.length === 0));
  reportMaintenance({ kind: 'scrub', phase: 'finished', errorsFound: found, errorsRepaired: fixed, interrupted: report.interrupted });
  return report;
}

function emptyCounts(): Record<FindingKind, number> {
  return { missing: 0, corrupt: 0, misplaced: 0, unavailable: 0, orphan: 0, stray: 0 };
}

function emptyReport(): ScrubReport {
  return {
    objectsScrubbed: 0,
    extentsScrubbed: 0,
    fragmentsRead: 0,
    bytesRead: 0,
    counts: emptyCounts(),
    perDisk: {},
    repaired: 0,
    unrepairable: [],
    findings: [],
    resumedAfterKey: undefined,
    interrupted: false,
    clean: true,
  };
}

/** Sleeps as long as needed to keep the average read rate at or under the limit. */
async function throttle(rateBytesPerSecond: number | undefined, bytesSinceStart: number, startedMs: number): Promise<void> {
  if (!rateBytesPerSecond) return;
  const dueMs = (bytesSinceStart / rateBytesPerSecond) * 1000;
  const aheadMs = dueMs - (Date.now() - startedMs);
  if (aheadMs > 5) await new Promise((resolve) => setTimeout(resolve, aheadMs));
}

async function loadState(statePath: string, options: ScrubOptions): Promise<SavedState | undefined> {
  const bytes = await readFileIfExists(statePath);
  if (!bytes) return undefined;
  try {
    const state = JSON.parse(bytes.toString()) as SavedState;
    // A saved scrub of another kind (other disk, or repair vs. not) does not carry over.
    if (state.repair !== options.repair || state.diskId !== (options.diskId ?? null) || typeof state.afterKey !== 'string') return undefined;
    return state;
  } catch {
    return undefined; // a damaged state file only costs a restart
  }
}

async function saveState(statePath: string, state: SavedState): Promise<void> {
  await writeFileDurable(statePath, Buffer.from(JSON.stringify(state)));
}

