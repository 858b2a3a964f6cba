// `shardpool import`: a pool rebuilt from its disks when its catalog is lost (maintain/import.ts).
import { Option, type Command } from 'commander';
import { validateExtentSize } from '../format/pool-config.js';
import { importPool } from '../maintain/import.js';
import { parsePolicy } from '../redundancy/policy.js';
import { directIoMode, jsonOption, optionsOf, poolDirectory, printJson, printLine, progressEnabled, warn } from './context.js';
import { parseCatalogAddress } from './pool-commands.js';
import { startCountProgress } from './progress.js';
import { resolveUserPath } from './terminal.js';
import { formatBytes, parseSize } from './units.js';

export function registerImportCommands(program: Command): void {
  program
    .command('import')
    .description(
      'rebuild a pool from its disks alone, when its catalog is lost: every committed object (with its S3 metadata)\n' +
        'and removal is read back from the version manifests on the disks into a new pool directory. Read-only on the\n' +
        'disks until the new pool opens; access keys are not on the disks and must be added again (user add)',
    )
    .addOption(new Option('--pool <dir>', 'the NEW pool directory (must not exist or be empty)').makeOptionMandatory())
    .addOption(new Option('--disk <path...>', 'a disk of the pool: directory, block device or image file (repeatable); none: every block device'))
    .option('--pool-uuid <uuid>', 'which pool to import when the disks found belong to several')
    .addOption(
      new Option('--catalog <address>', 'where the new catalog lives: sqlite (default) or postgresql://USER@HOST:PORT/DB').env('SHARDPOOL_CATALOG'),
    )
    .option('--policy <policy>', "the new pool's default policy (default: the one most objects were written with)")
    .option('--extent-size <size>', "the new pool's extent size (default: the one most objects were written with)")
    .option('--no-progress', 'do not draw a progress bar')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ shardpool import --pool /srv/pool-restored --disk /mnt/d1 --disk /mnt/d2 --disk /mnt/d3\n' +
        '  $ sudo shardpool import --pool /srv/pool-restored          (every block device carrying a pool label)\n' +
        '\nThen: shardpool status, shardpool scrub, and shardpool rebuild if disks were missing.',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const directory = poolDirectory(options);
      const extentSizeBytes = options.extentSize === undefined ? undefined : parseSize(String(options.extentSize), '--extent-size');
      if (extentSizeBytes !== undefined) validateExtentSize(extentSizeBytes);
      let bar: ReturnType<typeof startCountProgress> | undefined;
      const report = await importPool(directory, {
        disks: ((options.disk as string[] | undefined) ?? []).map((disk) => resolveUserPath(disk)),
        poolUuid: options.poolUuid === undefined ? undefined : String(options.poolUuid),
        catalog: options.catalog === undefined ? undefined : parseCatalogAddress(String(options.catalog)),
        policy: options.policy === undefined ? undefined : parsePolicy(String(options.policy)),
        extentSizeBytes,
        directIo: directIoMode(options),
        onProgress: (progress) => {
          bar ??= startCountProgress({ label: 'scanning disks', total: progress.disks, enabled: progressEnabled(options) });
          bar.update(progress.disksScanned);
        },
      }).finally(() => bar?.stop());
      if (options.json) {
        printJson(report);
        return;
      }
      printLine(`imported pool ${report.poolUuid} into ${report.directory} from ${report.disks.length} disks`);
      printLine(`${report.objects} objects (${formatBytes(report.logicalBytes)}), ${report.removed} removed keys, ${report.buckets.length} S3 buckets`);
      if (report.garbage > 0 || report.torn > 0) {
        printLine(`${report.garbage} older versions and markers collected, ${report.torn} versions torn by a crash deleted`);
      }
      if (report.missingDisks.length > 0) {
        warn(`${report.missingDisks.length} disks the pool wrote to were not found (${report.missingDisks.join(', ')}): they are listed as failed; ` +
          'run shardpool rebuild to restore full redundancy, then remove-disk them');
      }
      if (report.degraded.length > 0) warn(`${report.degraded.length} objects are readable with fragments missing: ${report.degraded.slice(0, 5).join(', ')}${report.degraded.length > 5 ? ', …' : ''}`);
      for (const { key, why } of report.unreadable) warn(`cannot be read, not imported: ${JSON.stringify(key)}: ${why}`);
      if (report.recordsWithoutManifest > 0) {
        warn(`${report.recordsWithoutManifest} fragment records belong to versions without a manifest (written before version manifests, or never committed); they were left alone — recover lists them`);
      }
      if (report.buckets.length > 0) printLine('S3 access keys are not kept on the disks: add them again with  shardpool user add NAME');
    });
}
