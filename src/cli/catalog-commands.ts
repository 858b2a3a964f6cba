// The catalog as a portable file: catalog dump, catalog load (docs/operations.md § Dumping and loading the catalog).
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { ShardpoolError } from '../errors.js';
import { CATALOG_DUMP_TABLES } from '../format/catalog-dump.js';
import { openInputStream, pathKind } from '../io/durable-files.js';
import { describeLocation, dumpPoolCatalog, loadPoolCatalog, migratePoolCatalog } from '../pool/catalog-transfer.js';
import { parseCatalogAddress } from './pool-commands.js';
import { jsonOption, lockWaitMs, optionsOf, poolDirectory, poolOption, printJson, printLine } from './context.js';
import { poolIsServed } from './forward.js';
import { writeToFile, writeToStdout } from './object-commands.js';
import { resolveUserPath, terminal } from './terminal.js';

const STANDARD_STREAM = '-';
/** A dump holds the S3 secret keys: a file written by --output is for its owner only. */
const DUMP_FILE_MODE = 0o600;

export function registerCatalogCommands(program: Command): void {
  const catalog = program.command('catalog').description('the catalog as portable, versioned JSON lines (dump, load), and moved between engines (migrate)');
  catalog
    .command('dump')
    .description(
      'write every row of the catalog as JSON lines to standard output or --output FILE: one consistent snapshot, ' +
        'also while shardpool serve runs (the dump holds the S3 secret keys: keep it like catalog.sqlite)',
    )
    .addOption(poolOption())
    .option('--output <file>', 'write to FILE instead (mode 0600; it appears only when complete)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ shardpool catalog dump --pool /srv/pool > catalog.jsonl\n' +
        '  $ shardpool catalog dump --pool /srv/pool --output /backup/pool-catalog-$(date +%F).jsonl',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const pieces = dumpPoolCatalog(poolDirectory(options));
      if (options.output === undefined || options.output === STANDARD_STREAM) await writeToStdout(pieces);
      else await writeToFile(resolveUserPath(String(options.output)), pieces, { mode: DUMP_FILE_MODE });
    });
  catalog
    .command('load')
    .description(
      'fill the empty catalog of a pool that is not being served with a dump of that same pool (the pool uuid in ' +
        'pool.json); every line is checked, and the rows appear all at once or not at all',
    )
    .argument('<file>', 'the dump; - reads standard input')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExample, the catalog of /srv/pool rebuilt from last night\'s dump (pool.json kept, the daemon stopped):\n' +
        '  $ mv /srv/pool/catalog.sqlite /srv/pool/catalog.sqlite.damaged   (and its -wal and -shm files)\n' +
        '  $ shardpool catalog load --pool /srv/pool /backup/pool-catalog.jsonl\n' +
        '  $ shardpool status --pool /srv/pool && shardpool scrub --pool /srv/pool',
    )
    .action(async (file: string, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      const directory = poolDirectory(options);
      if (await poolIsServed(directory)) {
        throw new ShardpoolError(
          'POOL_BUSY',
          `pool ${directory} is served by shardpool serve; stop the daemon first (a load replaces the whole catalog)`,
          { pool: directory },
        );
      }
      const { stream, source } = await openDumpInput(file);
      let loaded;
      try {
        loaded = await loadPoolCatalog(directory, stream, { source, lockWaitMs: lockWaitMs(options) });
      } finally {
        stream.destroy();
      }
      const rows = CATALOG_DUMP_TABLES.reduce((sum, table) => sum + (loaded.rowCounts[table.name] ?? 0), 0);
      if (options.json) {
        printJson({ pool: directory, source, dumpedAt: loaded.header.createdAt, engine: loaded.header.engine, rows, rowCounts: loaded.rowCounts });
        return;
      }
      const count = (table: string) => loaded.rowCounts[table] ?? 0;
      printLine(`loaded ${rows} rows from ${source} (dumped ${loaded.header.createdAt} from ${loaded.header.engine})`);
      printLine(
        `${count('disks')} disks, ${count('objects')} objects, ${count('extents')} extents, ${count('fragments')} fragments, ` +
          `${count('garbage')} garbage versions, ${count('intents')} puts and ${count('moves')} moves to finish, ` +
          `${count('buckets')} buckets, ${count('users')} users, ${count('multipart_uploads')} multipart uploads`,
      );
      printLine(`next: shardpool status --pool ${directory}   (then shardpool scrub, to check the disks against the rows)`);
    });
  catalog
    .command('migrate')
    .description(
      'move the catalog of a pool that is not being served to another engine (sqlite, or postgresql://USER@HOST:PORT/DB): ' +
        'every row copied, both sides compared row for row, then pool.json switched; the old catalog is kept',
    )
    .requiredOption('--to <address>', 'sqlite, or postgresql://USER@HOST:PORT/DB (the password from PGPASSWORD or PGPASSFILE)')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples (the daemon stopped):\n' +
        '  $ PGPASSFILE=/etc/shardpool/pgpass shardpool catalog migrate --pool /srv/pool --to postgresql://shardpool@db1:5432/pool1\n' +
        '  $ shardpool catalog migrate --pool /srv/pool --to sqlite',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const directory = poolDirectory(options);
      if (await poolIsServed(directory)) {
        throw new ShardpoolError('POOL_BUSY', `pool ${directory} is served by shardpool serve; stop the daemon first (a migration moves the whole catalog)`, {
          pool: directory,
        });
      }
      const to = parseCatalogAddress(String(options.to));
      const migrated = await migratePoolCatalog(directory, to, { lockWaitMs: lockWaitMs(options) });
      if (options.json) {
        printJson({ pool: directory, from: migrated.from, to: migrated.to, rows: migrated.rows, keptAs: migrated.keptAs ?? null });
        return;
      }
      printLine(`moved ${migrated.rows} rows from ${describeLocation(migrated.from)} to ${describeLocation(migrated.to)}; both dump to the same rows`);
      printLine(`pool.json now names ${describeLocation(migrated.to)}`);
      if (migrated.keptAs) printLine(`the old catalog is kept as ${migrated.keptAs} in the pool directory (delete it once you are satisfied)`);
      else printLine(`the old catalog ${describeLocation(migrated.from)} is left as it was (drop it once you are satisfied)`);
    });
}

async function openDumpInput(file: string): Promise<{ stream: Readable; source: string }> {
  if (file === STANDARD_STREAM) return { stream: terminal().stdin, source: 'standard input' };
  const resolved = resolveUserPath(file);
  const kind = await pathKind(resolved);
  if (kind === 'missing') throw new ShardpoolError('INPUT_NOT_FOUND', `dump file ${resolved} does not exist`, { file: resolved });
  if (kind === 'directory') throw new ShardpoolError('INPUT_NOT_FOUND', `${resolved} is a directory, not a catalog dump`, { file: resolved });
  return { stream: openInputStream(resolved), source: resolved };
}
