// Maintenance commands: recover.
import { Option, type Command } from 'commander';
import { openDiskForScan } from '../disk/open-for-scan.js';
import type { Disk } from '../disk/disk.js';
import { defragPool } from '../maintain/defrag.js';
import { rebuildFailedDisks } from '../maintain/rebuild.js';
import { recoverPool, scanDisks, type RecoverReport, type ScannedObject } from '../maintain/recover.js';
import { FINDING_KINDS, scrubPool, type ScrubReport } from '../maintain/scrub.js';
import { trimPool } from '../maintain/trim.js';
import { ShardpoolError } from '../errors.js';
import { Pool } from '../pool/pool.js';
import { directIoMode, jsonOption, optionsOf, poolDirectory, poolOption, printJson, printLine, progressEnabled, withPool, diskReference, optionalDiskReference } from './context.js';
import { moveProgress, startByteProgress } from './progress.js';
import { EXIT_PROBLEMS_FOUND } from './exit-codes.js';
import { formatBytes, parseRate } from './units.js';
import { terminal } from './terminal.js';

export function registerMaintainCommands(program: Command): void {
  program
    .command('scrub')
    .description(
      'read and verify every fragment (devices: O_DIRECT), report missing, corrupt, misplaced, unavailable, orphan and\n' +
        'stray ones per disk; with --repair rebuild each bad fragment from redundancy at a fresh location. Resumable',
    )
    .addOption(poolOption())
    .option('--repair', 'rewrite bad fragments from redundancy, delete orphans, release strays')
    .option('--disk <path|id>', 'only fragments on this disk')
    .option('--rate <bytes/s>', 'read at most this fast, e.g. 200MiB/s')
    .option('--restart', 'start from the beginning instead of continuing an interrupted scrub')
    .option('--no-progress', 'do not draw a progress bar')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool scrub --pool /srv/pool\n  $ shardpool scrub --pool /srv/pool --repair --rate 200MiB/s\n' +
        '  $ shardpool scrub --pool /srv/pool --disk 3 --json\n' +
        '\nExit codes: 0 the pool is clean when scrub ends (nothing found, or everything repaired); 1 problems remain\n' +
        '(always when something was found without --repair, or scrub was interrupted: rerun to continue); 2 error.',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const rateBytesPerSecond = options.rate === undefined ? undefined : parseRate(String(options.rate), '--rate');
      let stopRequested = false;
      const stopListening = terminal().onInterrupt(() => {
        stopRequested = true;
        terminal().stderr.write('\nshardpool: stopping scrub after the current object (press Ctrl-C again to quit at once)\n');
      });
      let progress: ReturnType<typeof startByteProgress> | undefined;
      try {
        const oneAtATime = terminal().served?.oneScrubAtATime.bind(terminal().served) ?? ((work: () => Promise<ScrubReport>) => work());
        const report = await oneAtATime(() => withPool(options, options.repair ? 'write' : 'read', async (pool) => {
          const diskId = options.disk === undefined ? undefined : (await pool.findMember(diskReference(options.disk))).row.id;
          return scrubPool(pool, {
            repair: options.repair === true,
            diskId,
            rateBytesPerSecond,
            restart: options.restart === true,
            shouldStop: () => stopRequested,
            onProgress: (done, total) => {
              progress ??= startByteProgress({ label: options.repair ? 'scrub+repair' : 'scrub', totalBytes: total, enabled: progressEnabled(options) });
              progress.update(done);
            },
          });
        }));
        progress?.stop();
        if (options.json) printJson(report);
        else printLine(formatScrub(report));
        if (!report.clean) terminal().exitCode = EXIT_PROBLEMS_FOUND;
      } finally {
        progress?.stop();
        stopListening();
      }
    });

  program
    .command('rebuild')
    .description('re-create every fragment of failed disks on healthy ones (reads only the K fragments each extent needs); resumable')
    .addOption(poolOption())
    .option('--disk <path|id>', 'only this failed disk')
    .option('--no-progress', 'do not draw a progress bar')
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ shardpool fail-disk --pool /srv/pool --disk 3\n  $ shardpool rebuild --pool /srv/pool')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const progress = moveProgress('rebuilding', progressEnabled(options));
      const results = await withPool(options, 'write', (pool) =>
        rebuildFailedDisks(pool, optionalDiskReference(options.disk), (_disk, state) => progress.onProgress(state)).finally(
          () => progress.stop(),
        ),
      );
      if (options.json) printJson(results);
      else if (results.length === 0) printLine('no failed disks to rebuild');
      else for (const result of results) printLine(`rebuilt ${result.rebuilt + result.moved} fragments of failed disk ${result.disk.id} (${result.disk.path}) on healthy disks`);
    });

  program
    .command('trim')
    .description('discard (TRIM) every free unit of the block devices; allocated units are never touched')
    .addOption(poolOption())
    .option('--disk <path|id>', 'only this device')
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool trim --pool /srv/pool\n\nSee also: shardpool config --discard online|batch|off')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const results = await withPool(options, 'write', (pool) => trimPool(pool, optionalDiskReference(options.disk)));
      if (options.json) printJson(results);
      else if (results.length === 0) printLine('no block devices to trim');
      else for (const result of results) printLine(`disk ${result.diskId} ${result.path}: discarded ${formatBytes(result.discardedBytes)} of free space`);
    });

  program
    .command('defrag')
    .description('move fragments of block devices into the lowest free runs, so free space coalesces (crash-safe)')
    .addOption(poolOption())
    .option('--disk <path|id>', 'only this device')
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool defrag --pool /srv/pool --disk /dev/sdb')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const results = await withPool(options, 'write', (pool) => defragPool(pool, optionalDiskReference(options.disk)));
      if (options.json) printJson(results);
      else if (results.length === 0) printLine('no block devices to defragment');
      else {
        for (const result of results) {
          printLine(
            `disk ${result.diskId} ${result.path}: moved ${result.moved} fragments; largest free run ` +
              `${formatBytes(result.largestFreeRunBeforeBytes)} → ${formatBytes(result.largestFreeRunAfterBytes)}`,
          );
        }
      }
    });

  program
    .command('recover')
    .description(
      'replay device journals and cross-check catalog, allocators and the fragments found by scanning every disk:\n' +
        'report orphans (stored, not referenced), strays (space holding nothing) and missing fragments',
    )
    .addOption(poolOption())
    .option('--cleanup', 'delete orphans and release strays (missing fragments are left to reads and repair)')
    .option('--scan-only', 'only list which objects\' fragments the disks hold, from their headers; needs no catalog')
    .option('--verify-catalog', 'compare the catalog with what the version manifests on the disks prove, key by key, and report every difference')
    .addOption(new Option('--disk <path...>', 'with --scan-only: the disks to scan when the catalog is lost'))
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool recover --pool /srv/pool\n  $ shardpool recover --pool /srv/pool --cleanup\n' +
        '  $ shardpool recover --scan-only --json --disk /dev/sdb --disk /dev/sdc --disk /mnt/disk3\n' +
        '  $ shardpool recover --pool /srv/pool --verify-catalog\n' +
        '\nExit codes: 0 nothing found, 1 problems found (and cleaned with --cleanup), 2 error.',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      if (options.scanOnly) {
        const objects = await scanOnly(options);
        if (options.json) printJson({ objects });
        else printLine(formatScan(objects));
        return;
      }
      if (options.disk) throw new ShardpoolError('USAGE_INVALID', '--disk is only for --scan-only; recover checks every disk of the pool');
      if (options.verifyCatalog) {
        if (options.cleanup) throw new ShardpoolError('USAGE_INVALID', '--verify-catalog only reports; it cannot be combined with --cleanup');
        const { verifyCatalog } = await import('../maintain/verify-catalog.js');
        const verified = await withPool(options, 'write', (pool) => verifyCatalog(pool));
        if (options.json) printJson(verified);
        else {
          for (const difference of verified.differences) printLine(`${JSON.stringify(difference.key)}: catalog has ${difference.catalog}; the disks prove ${difference.disks}`);
          printLine(
            `${verified.keysChecked} keys checked against the disks: ${verified.differences.length} differences` +
              (verified.changedDuringCheck > 0 ? `, ${verified.changedDuringCheck} changed during the check (skipped)` : '') +
              (verified.withoutManifest > 0 ? `, ${verified.withoutManifest} written before version manifests (nothing to compare)` : '') +
              (verified.unprovable > 0 ? `, ${verified.unprovable} not provable (disks ${verified.disksNotScanned.join(', ')} not scanned)` : ''),
          );
        }
        if (verified.differences.length > 0) terminal().exitCode = EXIT_PROBLEMS_FOUND;
        return;
      }
      const report = await withPool(options, 'write', (pool) => recoverPool(pool, { cleanup: options.cleanup === true }));
      if (options.json) printJson(report);
      else printLine(formatReport(report));
      if (report.problems > 0) terminal().exitCode = EXIT_PROBLEMS_FOUND;
    });
}

async function scanOnly(options: ReturnType<typeof optionsOf>): Promise<ScannedObject[]> {
  const directIo = directIoMode(options);
  const paths = (options.disk as string[] | undefined) ?? (await diskPathsFromCatalog(options));
  const disks: Disk[] = [];
  try {
    for (const diskPath of paths) disks.push(await openDiskForScan(diskPath, directIo));
    return await scanDisks(disks);
  } finally {
    await Promise.all(disks.map((disk) => disk.close()));
  }
}

async function diskPathsFromCatalog(options: ReturnType<typeof optionsOf>): Promise<string[]> {
  try {
    const pool = await Pool.open(poolDirectory(options), { access: 'read', lockWaitMs: 0 });
    try {
      return pool.listMembers().filter((member) => member.row.state !== 'failed').map((member) => member.row.path);
    } finally {
      await pool.close();
    }
  } catch (error) {
    throw new ShardpoolError(
      'USAGE_INVALID',
      `cannot list the pool's disks (${(error as Error).message}); name them with --disk PATH`,
      {},
      { cause: error },
    );
  }
}

function formatReport(report: RecoverReport): string {
  const lines: string[] = [];
  for (const disk of report.disks) {
    if (disk.skipped) {
      lines.push(`disk ${disk.id} ${disk.path}: skipped (${disk.skipped})`);
      continue;
    }
    lines.push(
      `disk ${disk.id} ${disk.path}: ${disk.scannedFragments} fragments found, ${disk.orphans.length} orphans, ` +
        `${disk.strays.length} strays, ${disk.missing.length} missing`,
    );
    for (const orphan of disk.orphans.slice(0, 20)) {
      lines.push(`  orphan   ${JSON.stringify(orphan.key)} version ${orphan.versionId} extent ${orphan.extentIndex} fragment ${orphan.fragmentIndex}`);
    }
    for (const stray of disk.strays.slice(0, 20)) lines.push(`  stray    ${stray.what} (${formatBytes(stray.bytes)})`);
    for (const missing of disk.missing.slice(0, 20)) {
      lines.push(`  missing  version ${missing.versionId} extent ${missing.extentIndex} fragment ${missing.fragmentIndex}: ${missing.reason}`);
    }
    if (disk.cleaned) {
      lines.push(`  cleaned  ${disk.cleaned.orphansDeleted} orphans deleted, ${disk.cleaned.straysReleased} strays released, ${formatBytes(disk.cleaned.bytesReleased)} freed`);
    }
  }
  lines.push(
    report.problems === 0
      ? 'no problems found'
      : `${report.problems} problems found${report.cleaned ? '; orphans and strays cleaned' : ' (rerun with --cleanup to delete orphans and release strays)'}`,
  );
  return lines.join('\n');
}


function formatScrub(report: ScrubReport): string {
  const found = FINDING_KINDS.filter((kind) => report.counts[kind] > 0).map((kind) => `${report.counts[kind]} ${kind}`);
  const lines = [
    `scrubbed ${report.objectsScrubbed} objects, ${report.extentsScrubbed} extents, ${report.fragmentsRead} fragments verified ` +
      `(${formatBytes(report.bytesRead)})${report.resumedAfterKey !== undefined ? `, continuing after ${JSON.stringify(report.resumedAfterKey)}` : ''}`,
    `found    ${found.length === 0 ? 'nothing wrong' : found.join(', ')}`,
  ];
  for (const [diskId, counts] of Object.entries(report.perDisk)) {
    const parts = FINDING_KINDS.filter((kind) => counts[kind] > 0).map((kind) => `${counts[kind]} ${kind}`);
    lines.push(`  disk ${diskId}: ${parts.join(', ')}`);
  }
  for (const finding of report.findings.slice(0, 20)) {
    const where = finding.key === undefined ? '' : `${JSON.stringify(finding.key)} extent ${finding.extentIndex} fragment ${finding.fragmentIndex}: `;
    lines.push(`  ${finding.kind.padEnd(11)} disk ${finding.diskId}: ${where}${finding.detail}${finding.repaired ? ' (repaired)' : ''}`);
  }
  if (report.repaired > 0) lines.push(`repaired ${report.repaired}`);
  for (const failure of report.unrepairable.slice(0, 20)) {
    lines.push(`cannot repair ${JSON.stringify(failure.key)} extent ${failure.extentIndex}: ${failure.reason}`);
  }
  lines.push(
    report.interrupted
      ? 'interrupted: rerun the same command to continue where it stopped'
      : report.clean
        ? 'the pool is clean'
        : 'problems remain' + (report.repaired === 0 && report.unrepairable.length === 0 ? ' (rerun with --repair)' : ''),
  );
  return lines.join('\n');
}

function formatScan(objects: ScannedObject[]): string {
  if (objects.length === 0) return 'no fragments found';
  return objects
    .map((object) => {
      const readable = object.extents.filter((extent) => extent.readable).length;
      return `${JSON.stringify(object.key)} version ${object.versionId} ${object.policy}: ${object.extents.length} extents found, ${readable} with enough fragments to read`;
    })
    .join('\n');
}
