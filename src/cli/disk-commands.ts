// Disk membership commands: add-disk, list-disks, fail-disk, remove-disk, disk relocate.
import { createInterface } from 'node:readline/promises';
import { Option, type Command } from 'commander';
import { ShardpoolError } from '../errors.js';
import type { DeviceSummary } from '../pool/add-device.js';
import { drainDisk } from '../maintain/drain.js';
import { replaceDisk } from '../maintain/rebuild.js';
import { formatDiskTable } from './pool-commands.js';
import { jsonOption, optionsOf, poolOption, printJson, printLine, progressEnabled, warn, withPool, diskReference } from './context.js';
import { moveProgress } from './progress.js';
import { terminal } from './terminal.js';

/**
 * The operator confirms a destructive format by typing the device path back on a terminal; --yes confirms for
 * scripts. With neither a terminal nor --yes, the answer is no. The summary goes to stderr either way.
 */
async function confirmFormat(summary: DeviceSummary, yes: boolean): Promise<boolean> {
  terminal().stderr.write(`${summary.lines.join('\n')}\n`);
  if (yes) return true;
  if (!terminal().stdin.isTTY) {
    throw new ShardpoolError(
      'CONFIRMATION_REQUIRED',
      `formatting ${summary.path} destroys all data on it; confirm by running on a terminal and typing the path, ` +
        'or pass --yes in scripts. Nothing was written',
      { path: summary.path },
    );
  }
  const prompt = createInterface({ input: terminal().stdin, output: terminal().stderr });
  try {
    const answer = await prompt.question(`ALL DATA ON ${summary.path} WILL BE DESTROYED. Type ${summary.path} to format it: `);
    return answer.trim() === summary.path;
  } finally {
    prompt.close();
  }
}

function diskOption(what: string): Option {
  return new Option('--disk <path|id>', what).makeOptionMandatory();
}

export function registerDiskCommands(program: Command): void {
  program
    .command('add-disk')
    .description(
      'add a disk: an empty directory (labelled with a disk.json), or with --device a raw block device or device image\n' +
        'file, which is FORMATTED (all data on it destroyed) after safety checks and your confirmation',
    )
    .addOption(poolOption())
    .addOption(new Option('--disk <path>', 'an empty directory, or a block device / image file with --device').makeOptionMandatory())
    .option('--device', 'the path is a block device or image file to format as a pool disk, destroying its contents')
    .option('--force', 'format even if a filesystem, partition table, RAID/LVM/LUKS member or other pool is found ' +
      '(never overrides a device in use)')
    .option('--yes', 'do not ask to type the device path back (for scripts)')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool add-disk --pool /srv/pool --disk /mnt/disk1\n' +
        '  $ sudo shardpool add-disk --pool /srv/pool --disk /dev/sdb --device          (asks you to type /dev/sdb)\n' +
        '  $ shardpool add-disk --pool /srv/pool --disk ./disk.img --device --yes       (an image file, no root)\n' +
        '\nBlock devices need root. A device that is mounted, held, swap or open elsewhere is always refused.\n' +
        'See docs/operations.md before pointing shardpool at a disk holding data you care about.',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const { row, sharing } = await withPool(options, 'write', async (pool) => {
        const added = await pool.addDisk(diskReference(options.disk), {
          device: options.device === true,
          force: options.force === true,
          confirm: (summary) => confirmFormat(summary, options.yes === true),
        });
        return { row: added, sharing: added.kind === 'directory' ? await pool.disksSharingFilesystem(added.id) : [] };
      });
      if (sharing.length > 0) {
        warn(
          `disk ${row.id} is on the same filesystem as disk ${sharing.map((disk) => disk.id).join(', ')}: ` +
            'if that filesystem fails, all of them fail together; use one filesystem per drive for real redundancy',
        );
      }
      if (options.json) printJson({ ...row, sharesFilesystemWith: sharing.map((disk) => disk.id) });
      else printLine(`added disk ${row.id} (${row.kind}) ${row.path}, uuid ${row.uuid}`);
    });

  program
    .command('list-disks')
    .description('list the disks of the pool with their state, kind, capacity, use and fragment count')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool list-disks --pool /srv/pool')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const description = await withPool(options, 'read', (pool) => pool.describe());
      if (options.json) printJson(description.disks);
      else if (description.disks.length === 0) printLine('no disks yet: add one with  shardpool add-disk --disk DIR');
      else printLine(formatDiskTable(description.disks));
    });

  const disk = program.command('disk').description('commands on one member disk (see also add-disk, list-disks, fail-disk, remove-disk)');
  disk
    .command('relocate')
    .description(
      'record where a disk is now, when it is no longer at its recorded path (a filesystem mounted elsewhere, a moved\n' +
        'image file); its label there must name this pool and this very disk. Block devices are found by label anyway',
    )
    .addOption(poolOption())
    .addOption(diskOption('the disk, by id, uuid or recorded path (see list-disks)'))
    .addOption(new Option('--to <path>', 'where the disk is now').makeOptionMandatory())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool disk relocate --pool /srv/pool --disk 3 --to /mnt/new-mount/disk3')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const row = await withPool(options, 'write', (pool) => pool.relocateDisk(diskReference(options.disk), diskReference(options.to)));
      if (options.json) printJson(row);
      else printLine(`disk ${row.id} (${row.uuid}) is now recorded at ${row.path}`);
    });

  program
    .command('fail-disk')
    .description('mark a disk failed: it is never read or written again, and reads rebuild its fragments from redundancy')
    .addOption(poolOption())
    .addOption(diskOption('the disk, by path or id (see list-disks)'))
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool fail-disk --pool /srv/pool --disk 3')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const result = await withPool(options, 'write', async (pool) => {
        const row = await pool.failDisk(diskReference(options.disk));
        return { disk: row, status: await pool.describe() };
      });
      if (options.json) {
        printJson({ disk: result.disk, extentsBelowFullRedundancy: result.status.extentsBelowFullRedundancy });
        return;
      }
      printLine(`disk ${result.disk.id} (${result.disk.path}) is now failed`);
      printLine(
        `${result.status.extentsBelowFullRedundancy} extents are below full redundancy, ` +
          `${result.status.extentsUnreadable} unreadable; run remove-disk to restore full redundancy elsewhere`,
      );
    });

  program
    .command('remove-disk')
    .description('drain a disk: move (or rebuild) every fragment on it to other disks, then forget it; rerun to resume')
    .addOption(poolOption())
    .addOption(diskOption('the disk, by path or id (see list-disks)'))
    .addOption(jsonOption())
    .option('--no-progress', 'do not draw a progress bar')
    .addHelpText('after', '\nExample:\n  $ shardpool remove-disk --pool /srv/pool --disk /mnt/disk3')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const progress = moveProgress('draining', progressEnabled(options));
      const result = await withPool(options, 'write', (pool) =>
        drainDisk(pool, diskReference(options.disk), { onProgress: progress.onProgress }).finally(() => progress.stop()),
      );
      if (options.json) printJson(result);
      else {
        printLine(
          `removed disk ${result.disk.id} (${result.disk.path}): ${result.moved} fragments moved, ` +
            `${result.rebuilt} rebuilt from redundancy`,
        );
      }
    });

  program
    .command('replace-disk')
    .description('add a new disk and move every fragment of an old one onto it, then forget the old one; resumable')
    .addOption(poolOption())
    .addOption(diskOption('the disk to replace, by path or id'))
    .addOption(new Option('--with <path>', 'the new disk: an empty directory, or a device with --device').makeOptionMandatory())
    .option('--device', 'the new disk is a block device or image file to format (see add-disk)')
    .option('--force', 'format the new device even if it holds a signature (never if in use)')
    .option('--yes', 'do not ask to type the device path back')
    .option('--no-progress', 'do not draw a progress bar')
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ shardpool replace-disk --pool /srv/pool --disk 3 --with /mnt/disk7\n' +
      '  $ sudo shardpool replace-disk --pool /srv/pool --disk /dev/sdb --with /dev/sdf --device')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const progress = moveProgress('replacing', progressEnabled(options));
      const device = { device: options.device === true, force: options.force === true, confirm: (summary: DeviceSummary) => confirmFormat(summary, options.yes === true) };
      const result = await withPool(options, 'write', (pool) =>
        replaceDisk(pool, diskReference(options.disk), diskReference(options.with), device, progress.onProgress).finally(() => progress.stop()),
      );
      if (options.json) printJson(result);
      else {
        printLine(
          `replaced disk ${result.drained.disk.id} (${result.drained.disk.path}) with disk ${result.added.id} (${result.added.path}): ` +
            `${result.drained.moved} fragments moved, ${result.drained.rebuilt} rebuilt from redundancy`,
        );
      }
    });
}
