// Disk membership commands: add-disk, list-disks, fail-disk, remove-disk.
import { Option, type Command } from 'commander';
import { drainDisk } from '../maintain/drain.js';
import { formatDiskTable } from './pool-commands.js';
import { jsonOption, optionsOf, poolOption, printJson, printLine, progressEnabled, warn, withPool } from './context.js';
import { startCountProgress } from './progress.js';

function diskOption(what: string): Option {
  return new Option('--disk <path|id>', what).makeOptionMandatory();
}

export function registerDiskCommands(program: Command): void {
  program
    .command('add-disk')
    .description('add an empty directory to the pool as a disk (it is labelled with a disk.json)')
    .addOption(poolOption())
    .addOption(new Option('--disk <path>', 'an empty directory, ideally on its own filesystem').makeOptionMandatory())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool add-disk --pool /srv/pool --disk /mnt/disk1')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const { row, sharing } = await withPool(options, 'write', async (pool) => {
        const added = await pool.addDirectoryDisk(String(options.disk));
        return { row: added, sharing: await pool.disksSharingFilesystem(added.id) };
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
        const row = await pool.failDisk(String(options.disk));
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
      const result = await withPool(options, 'write', async (pool) => {
        let progress: ReturnType<typeof startCountProgress> | undefined;
        try {
          return await drainDisk(pool, String(options.disk), (state) => {
            progress ??= startCountProgress({ label: 'draining', total: state.total, enabled: progressEnabled(options) });
            progress.update(state.moved + state.rebuilt);
          });
        } finally {
          progress?.stop();
        }
      });
      if (options.json) printJson(result);
      else {
        printLine(
          `removed disk ${result.disk.id} (${result.disk.path}): ${result.moved} fragments moved, ` +
            `${result.rebuilt} rebuilt from redundancy`,
        );
      }
    });
}
