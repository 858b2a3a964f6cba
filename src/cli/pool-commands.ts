// Pool-wide commands: init and status.
import { Option, type Command } from 'commander';
import { EXTENT_SIZE_DEFAULT_BYTES } from '../constants.js';
import { validateExtentSize, validatePostgresUrl, type CatalogLocation } from '../format/pool-config.js';

import type { PoolDescription } from '../pool/status.js';
import { DISCARD_MODES, type DiscardMode } from '../disk/discard-mode.js';
import { ShardpoolError } from '../errors.js';
import { DEFAULT_POLICY_TEXT, formatPolicy, parsePolicy } from '../redundancy/policy.js';
import { jsonOption, optionsOf, poolDirectory, poolOption, printJson, printLine, withPool } from './context.js';
import { formatBytes, formatTable, parseSize } from './units.js';

export function registerPoolCommands(program: Command): void {
  program
    .command('init')
    .description('create a new, empty pool in a directory (the directory must not exist or be empty)')
    .addOption(poolOption())
    .option('--policy <policy>', 'default redundancy policy: replica:N or ec:K+M', DEFAULT_POLICY_TEXT)
    .option('--extent-size <size>', 'size objects are cut into before encoding (4KiB to 64MiB)', '1MiB')
    .option('--discard <mode>', 'when freed block-device units are discarded: online, batch (by shardpool trim) or off', 'batch')
    .addOption(
      new Option('--catalog <address>', 'where the catalog lives: sqlite (catalog.sqlite in the pool directory) or postgresql://USER@HOST:PORT/DB (the password from PGPASSWORD or PGPASSFILE)')
        .env('SHARDPOOL_CATALOG')
        .default('sqlite'),
    )
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool init --pool /srv/pool --policy ec:4+2 --extent-size 1MiB\n' +
        '  $ PGPASSFILE=/etc/shardpool/pgpass shardpool init --pool /srv/pool --catalog postgresql://shardpool@db1:5432/pool1',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const policy = parsePolicy(String(options.policy));
      const extentSizeBytes =
        options.extentSize === undefined ? EXTENT_SIZE_DEFAULT_BYTES : parseSize(String(options.extentSize), '--extent-size');
      validateExtentSize(extentSizeBytes);
      const discard = parseDiscardMode(String(options.discard ?? 'batch'));
      const directory = poolDirectory(options);
      const catalog = parseCatalogAddress(String(options.catalog ?? 'sqlite'));
      const { Pool } = await import('../pool/pool.js');
      const config = await Pool.create(directory, { policy, extentSizeBytes, catalog });
      await withPool(options, 'write', async (pool) => pool.setDiscardMode(discard));
      if (options.json) {
        printJson({ pool: directory, poolUuid: config.poolUuid, defaultPolicy: String(options.policy), extentSizeBytes, catalog: config.catalog });
        return;
      }
      printLine(`created pool ${config.poolUuid} in ${directory}`);
      printLine(`default policy ${String(options.policy)}, extent size ${formatBytes(extentSizeBytes)}, catalog ${config.catalog.engine === 'sqlite' ? 'sqlite (in the pool directory)' : config.catalog.url}`);
      printLine(`next: add disks with  shardpool add-disk --pool ${directory} --disk DIR`);
    });

  program
    .command('config')
    .description('show or change pool settings: --discard online|batch|off (when freed device units are TRIMmed)')
    .addOption(poolOption())
    .option('--discard <mode>', 'online: at once after each free is durable; batch: by shardpool trim; off: never')
    .addOption(jsonOption())
    .addHelpText('after', '\nExamples:\n  $ shardpool config --pool /srv/pool\n  $ shardpool config --pool /srv/pool --discard online')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const change = options.discard === undefined ? undefined : parseDiscardMode(String(options.discard));
      const settings = await withPool(options, change === undefined ? 'read' : 'write', async (pool) => {
        if (change !== undefined) await pool.setDiscardMode(change);
        return { discard: pool.discardMode, defaultPolicy: formatPolicy(pool.config.defaultPolicy), extentSizeBytes: pool.config.extentSizeBytes };
      });
      if (options.json) printJson(settings);
      else {
        printLine(`discard        ${settings.discard}`);
        printLine(`default policy ${settings.defaultPolicy}`);
        printLine(`extent size    ${formatBytes(settings.extentSizeBytes)}`);
      }
    });

  program
    .command('status')
    .description('show the pool: health, disks, capacity, objects, extents below full redundancy')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool status --pool /srv/pool --json')
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const description = await withPool(options, 'read', (pool) => pool.describe());
      if (options.json) printJson(description);
      else printLine(formatStatus(description));
    });
}

function formatStatus(status: PoolDescription): string {
  const online = status.disks.filter((disk) => disk.online && disk.state !== 'failed').length;
  const lines = [
    `pool      ${status.poolUuid}  (${status.directory})`,
    `health    ${status.health}`,
    `policy    ${status.defaultPolicy} by default, extent size ${formatBytes(status.extentSizeBytes)}`,
    `objects   ${status.objectCount} holding ${formatBytes(status.logicalBytes)}, stored as ${formatBytes(status.storedBytes)} of fragments`,
    `disks     ${status.disks.length} (${online} online and not failed)`,
    `redundancy ${status.extentsBelowFullRedundancy} extents below full redundancy, ${status.extentsUnreadable} unreadable`,
  ];
  const degradedReads = status.counters.extents_read_degraded ?? 0;
  if (degradedReads > 0) lines.push(`reads     ${degradedReads} extents were read degraded (rebuilt from redundancy)`);
  if (status.disks.length > 0) {
    lines.push('', formatDiskTable(status.disks));
  }
  return lines.join('\n');
}

function parseDiscardMode(text: string): DiscardMode {
  if (!(DISCARD_MODES as ReadonlyArray<string>).includes(text)) {
    throw new ShardpoolError('USAGE_INVALID', `--discard takes online, batch or off, not "${text}"`);
  }
  return text as DiscardMode;
}

export function formatDiskTable(disks: PoolDescription['disks']): string {
  return formatTable(
    ['ID', 'UUID', 'STATE', 'KIND', 'SECTORS', 'IO', 'CAPACITY', 'FREE', 'USED', 'FRAGMENTS', 'PATH'],
    disks.map((disk) => [
      String(disk.id),
      disk.uuid,
      !disk.online && disk.state !== 'failed' ? `${disk.state},offline` : disk.latchedFailure ? `${disk.state},latched` : disk.state,
      disk.kind,
      disk.geometry ? `${disk.geometry.logicalSectorBytes}/${disk.geometry.physicalSectorBytes}` : '-',
      disk.geometry ? (disk.geometry.directIo ? 'direct' : 'sync') : '-',
      formatBytes(disk.capacityBytes),
      formatBytes(disk.freeBytes),
      formatBytes(disk.usedBytes),
      String(disk.fragmentCount),
      disk.offlineReason && disk.state !== 'failed'
        ? `${disk.path}  (${disk.offlineReason})`
        : disk.latchedFailure
          ? `${disk.path}  (writes refused until reopened: ${disk.latchedFailure})`
          : disk.path,
    ]),
  );
}

/** `--catalog`: `sqlite` (the default) or a PostgreSQL address without a password. */
export function parseCatalogAddress(text: string): CatalogLocation {
  if (text === 'sqlite') return { engine: 'sqlite' };
  return { engine: 'postgresql', url: validatePostgresUrl(text) };
}
