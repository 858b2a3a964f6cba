// Maintenance commands: recover.
import { Option, type Command } from 'commander';
import { openDiskForScan } from '../disk/open-for-scan.js';
import type { Disk } from '../disk/disk.js';
import { recoverPool, scanDisks, type RecoverReport, type ScannedObject } from '../maintain/recover.js';
import { ShardpoolError } from '../errors.js';
import { Pool } from '../pool/pool.js';
import { directIoMode, jsonOption, optionsOf, poolDirectory, poolOption, printJson, printLine, withPool } from './context.js';
import { EXIT_PROBLEMS_FOUND } from './exit-codes.js';
import { formatBytes } from './units.js';

export function registerMaintainCommands(program: Command): void {
  program
    .command('recover')
    .description(
      'replay device journals and cross-check catalog, allocators and the fragments found by scanning every disk:\n' +
        'report orphans (stored, not referenced), strays (space holding nothing) and missing fragments',
    )
    .addOption(poolOption())
    .option('--cleanup', 'delete orphans and release strays (missing fragments are left to reads and repair)')
    .option('--scan-only', 'only list which objects\' fragments the disks hold, from their headers; needs no catalog')
    .addOption(new Option('--disk <path...>', 'with --scan-only: the disks to scan when the catalog is lost'))
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool recover --pool /srv/pool\n  $ shardpool recover --pool /srv/pool --cleanup\n' +
        '  $ shardpool recover --scan-only --json --disk /dev/sdb --disk /dev/sdc --disk /mnt/disk3\n' +
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
      const report = await withPool(options, 'write', (pool) => recoverPool(pool, { cleanup: options.cleanup === true }));
      if (options.json) printJson(report);
      else printLine(formatReport(report));
      if (report.problems > 0) process.exitCode = EXIT_PROBLEMS_FOUND;
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

function formatScan(objects: ScannedObject[]): string {
  if (objects.length === 0) return 'no fragments found';
  return objects
    .map((object) => {
      const readable = object.extents.filter((extent) => extent.readable).length;
      return `${JSON.stringify(object.key)} version ${object.versionId} ${object.policy}: ${object.extents.length} extents found, ${readable} with enough fragments to read`;
    })
    .join('\n');
}
