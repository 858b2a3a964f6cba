// Opens a pool's catalog with the engine pool.json names, and reads pool.json itself (every command that opens a
// pool or its catalog starts here). SQLite is the embedded default: catalog.sqlite in the pool directory.
import * as path from 'node:path';
import { ShardpoolError } from '../../errors.js';
import { POOL_CONFIG_FILE_NAME, decodePoolConfig, type CatalogLocation, type PoolConfig } from '../../format/pool-config.js';
import { readFileIfExists } from '../../io/durable-files.js';
import { CATALOG_FILE_NAME, type Catalog } from './catalog.js';

/** `create`: make a new, empty catalog (init, load); otherwise the catalog must exist. */
export async function openCatalog(poolDirectory: string, location: CatalogLocation, options: { create: boolean }): Promise<Catalog> {
  // Each engine (and its driver: better-sqlite3, pg) is loaded only for a pool that uses it.
  if (location.engine === 'sqlite') {
    const { SqliteCatalog } = await import('./sqlite-catalog.js');
    return SqliteCatalog.open(path.join(poolDirectory, CATALOG_FILE_NAME), options);
  }
  const { openPostgresCatalog } = await import('./postgres-catalog.js');
  return openPostgresCatalog(location.url, options);
}

/** The pool's pool.json, decoded; POOL_NOT_FOUND when the directory holds none. */
export async function readPoolConfig(directory: string): Promise<PoolConfig> {
  const configPath = path.join(directory, POOL_CONFIG_FILE_NAME);
  const bytes = await readFileIfExists(configPath).catch((error: unknown) => {
    throw new ShardpoolError('POOL_NOT_FOUND', `cannot read ${configPath}: ${String(error)}`, { pool: directory });
  });
  if (!bytes) {
    throw new ShardpoolError('POOL_NOT_FOUND', `${directory} is not a shardpool pool (no ${POOL_CONFIG_FILE_NAME})`, { pool: directory });
  }
  return decodePoolConfig(bytes, configPath);
}

/** The catalog of the pool in `directory`, wherever pool.json says it is. */
export async function openPoolCatalog(directory: string, options: { create: boolean }): Promise<{ config: PoolConfig; catalog: Catalog }> {
  const config = await readPoolConfig(directory);
  return { config, catalog: await openCatalog(directory, config.catalog, options) };
}
