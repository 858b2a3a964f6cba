// Opens a pool's catalog with the engine its pool keeps it in. Today one engine: SQLite, in the pool directory.
import * as path from 'node:path';
import { CATALOG_FILE_NAME, type Catalog } from './catalog.js';
import { SqliteCatalog } from './sqlite-catalog.js';

/** `create`: make a new, empty catalog (init); otherwise the catalog must exist. */
export function openCatalog(poolDirectory: string, options: { create: boolean }): Catalog {
  return SqliteCatalog.open(path.join(poolDirectory, CATALOG_FILE_NAME), options);
}
