// A pool's catalog to and from a catalog dump (`shardpool catalog dump` / `load`; format/catalog-dump.ts).
// A dump needs no lock: it reads one snapshot through its own connection, so it runs beside a serving daemon. A load
// holds the pool lock, goes only into an empty catalog of the pool the dump was taken of (same pool uuid: disk labels
// and fragment headers name it, so rows of another pool would point at disks that refuse them), and makes every row
// visible at once, or none.
import { CATALOG_DUMP_FORMAT_VERSION, CATALOG_DUMP_WRITE_PIECE_BYTES, CATALOG_SCHEMA_VERSION } from '../constants.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { encodeCatalogDump, openCatalogDump, type DumpHeader } from '../format/catalog-dump.js';
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


/** The engine names the line of a row it refused; the file is named here. */
function namingSource(error: unknown, source: string): unknown {
  if (!isShardpoolError(error, 'CATALOG_DUMP_INVALID') || error.details.source !== undefined) return error;
  return new ShardpoolError('CATALOG_DUMP_INVALID', `${source} ${error.message}`, { ...error.details, source }, { cause: error });
}
