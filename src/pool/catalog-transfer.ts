// A pool's catalog to and from a catalog dump (`shardpool catalog dump` / `load`; format/catalog-dump.ts).
// A dump needs no lock: it reads one snapshot through its own connection, so it runs beside a serving daemon. A load
// holds the pool lock, goes only into an empty catalog of the pool the dump was taken of (same pool uuid: disk labels
// and fragment headers name it, so rows of another pool would point at disks that refuse them), and makes every row
// visible at once, or none.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CATALOG_DUMP_FORMAT_VERSION, CATALOG_DUMP_WRITE_PIECE_BYTES, CATALOG_SCHEMA_VERSION } from '../constants.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { encodeCatalogDump, openCatalogDump, type DumpHeader } from '../format/catalog-dump.js';
import { POOL_CONFIG_FILE_NAME, encodePoolConfig, poolConfigVersionFor, redactPassword, type CatalogLocation } from '../format/pool-config.js';
import { renameIfExists, writeFileDurable } from '../io/durable-files.js';
import { CATALOG_FILE_NAME, type Catalog } from './catalog/catalog.js';
import { openCatalog, openPoolCatalog, readPoolConfig } from './catalog/open-catalog.js';
import { PoolLock } from './pool-lock.js';

export interface LoadedDump {
  readonly header: DumpHeader;
  readonly rowCounts: Readonly<Record<string, number>>;
}

/**
 * The dump of the pool in `directory`, in pieces of about CATALOG_DUMP_WRITE_PIECE_BYTES. Reading proceeds only as
 * fast as the consumer takes pieces; stopping early (return) ends the snapshot and closes the catalog.
 */
export async function* dumpPoolCatalog(directory: string, options: { now?: () => Date } = {}): AsyncGenerator<Buffer> {
  const { config, catalog } = await openPoolCatalog(directory, { create: false });
  try {
    const header: DumpHeader = {
      formatVersion: CATALOG_DUMP_FORMAT_VERSION,
      poolUuid: config.poolUuid,
      catalogSchemaVersion: CATALOG_SCHEMA_VERSION,
      engine: catalog.engine,
      createdAt: (options.now?.() ?? new Date()).toISOString(),
    };
    let piece: string[] = [];
    let pieceBytes = 0;
    for await (const line of encodeCatalogDump(header, catalog.dumpRecords())) {
      piece.push(line);
      pieceBytes += line.length;
      if (pieceBytes >= CATALOG_DUMP_WRITE_PIECE_BYTES) {
        yield Buffer.from(piece.join(''), 'utf8');
        piece = [];
        pieceBytes = 0;
      }
    }
    yield Buffer.from(piece.join(''), 'utf8');
  } finally {
    await catalog.close();
  }
}

/**
 * Loads the dump read from `chunks` (`source` names it in errors) into the pool in `directory`, whose catalog must be
 * empty (or absent: it is created). The header is checked before the pool lock is taken; every line is checked as it
 * streams in, and nothing is visible until the trailer confirmed them all.
 */
export async function loadPoolCatalog(
  directory: string,
  chunks: AsyncIterable<Uint8Array>,
  options: { source: string; lockWaitMs: number },
): Promise<LoadedDump> {
  const config = await readPoolConfig(directory);
  const dump = await openCatalogDump(chunks, options.source);
  try {
    if (dump.header.poolUuid !== config.poolUuid) {
      throw new ShardpoolError(
        'CATALOG_DUMP_OTHER_POOL',
        `${options.source} is a dump of pool ${dump.header.poolUuid}, but ${directory} is pool ${config.poolUuid}; its disks ` +
          `and fragments carry the dumped pool's uuid, so load it into a directory holding that pool's pool.json`,
        { source: options.source, dumpPoolUuid: dump.header.poolUuid, poolUuid: config.poolUuid },
      );
    }
    const lock = await PoolLock.acquire(directory, options.lockWaitMs);
    try {
      const catalog = await openCatalog(directory, config.catalog, { create: true });
      try {
        const rowCounts = await catalog.loadRecords(dump.records).catch((error: unknown) => {
          throw namingSource(error, options.source);
        });
        return { header: dump.header, rowCounts };
      } finally {
        await catalog.close();
      }
    } finally {
      await lock.unlock();
    }
  } finally {
    await dump.close();
  }
}


export interface MigratedCatalog {
  readonly from: CatalogLocation;
  readonly to: CatalogLocation;
  readonly rows: number;
  /** The old SQLite catalog's new name (a migration away from SQLite keeps the file, renamed, never deletes it). */
  readonly keptAs: string | undefined;
}

/**
 * Moves the catalog of a pool that is not being served to another engine: every row is copied (the source read in one
 * snapshot) into the new, empty catalog; both are dumped again and must be the very same rows, byte for byte; only
 * then does pool.json name the new catalog (written durably: that rename is the commit point). A crash before it
 * leaves the pool on its old catalog, untouched; the filled new one is unused (empty it before trying again). After
 * it, a SQLite catalog left behind is renamed aside, and a PostgreSQL one left behind may be dropped.
 */
export async function migratePoolCatalog(directory: string, to: CatalogLocation, options: { lockWaitMs: number }): Promise<MigratedCatalog> {
  const lock = await PoolLock.acquire(directory, options.lockWaitMs);
  try {
    const config = await readPoolConfig(directory);
    if (sameLocation(config.catalog, to)) {
      throw new ShardpoolError('USAGE_INVALID', `the catalog of ${directory} is already ${describeLocation(to)}`, { pool: directory });
    }
    const source = await openCatalog(directory, config.catalog, { create: false });
    let rows = 0;
    try {
      const destination = await openCatalog(directory, to, { create: true });
      try {
        const counts = await destination.loadRecords(source.dumpRecords());
        rows = Object.values(counts).reduce((sum, count) => sum + count, 0);
        const [before, after] = await Promise.all([dumpDigest(source, config.poolUuid), dumpDigest(destination, config.poolUuid)]);
        if (before !== after) {
          throw new ShardpoolError(
            'CATALOG_FAILED',
            `the catalog copied to ${describeLocation(to)} does not dump to the same rows as ${describeLocation(config.catalog)}; ` +
              'pool.json still names the old catalog, which is untouched',
            { pool: directory },
          );
        }
      } finally {
        await destination.close();
      }
    } finally {
      await source.close();
    }
    await writeFileDurable(path.join(directory, POOL_CONFIG_FILE_NAME), encodePoolConfig({ ...config, catalog: to, formatVersion: poolConfigVersionFor(to) }));
    let keptAs: string | undefined;
    if (config.catalog.engine === 'sqlite') {
      keptAs = `${CATALOG_FILE_NAME}.migrated-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await renameIfExists(path.join(directory, CATALOG_FILE_NAME), path.join(directory, keptAs));
      // A catalog closed cleanly has no -wal or -shm left; any that remain belong to the renamed file.
      for (const suffix of ['-wal', '-shm']) await renameIfExists(path.join(directory, CATALOG_FILE_NAME + suffix), path.join(directory, keptAs + suffix));
    }
    return { from: config.catalog, to, rows, keptAs };
  } finally {
    await lock.unlock();
  }
}

/** The SHA-256 of a catalog's dump after its header (which names the engine and the time): its rows, in order. */
async function dumpDigest(catalog: Catalog, poolUuid: string): Promise<string> {
  const header: DumpHeader = { formatVersion: CATALOG_DUMP_FORMAT_VERSION, poolUuid, catalogSchemaVersion: CATALOG_SCHEMA_VERSION, engine: catalog.engine, createdAt: new Date(0).toISOString() };
  const digest = createHash('sha256');
  let first = true;
  for await (const line of encodeCatalogDump(header, catalog.dumpRecords())) {
    if (!first) digest.update(line);
    first = false;
  }
  return digest.digest('hex');
}

function sameLocation(a: CatalogLocation, b: CatalogLocation): boolean {
  return a.engine === b.engine && (a.engine === 'sqlite' || (b.engine === 'postgresql' && a.url === b.url));
}

export function describeLocation(location: CatalogLocation): string {
  return location.engine === 'sqlite' ? `sqlite (${CATALOG_FILE_NAME} in the pool directory)` : redactPassword(location.url);
}

/** The engine names the line of a row it refused; the file is named here. */
function namingSource(error: unknown, source: string): unknown {
  if (!isShardpoolError(error, 'CATALOG_DUMP_INVALID') || error.details.source !== undefined) return error;
  return new ShardpoolError('CATALOG_DUMP_INVALID', `${source} ${error.message}`, { ...error.details, source }, { cause: error });
}
