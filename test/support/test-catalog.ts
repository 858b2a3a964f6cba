// Which catalog engine the pools the tests make use: SQLite unless SHARDPOOL_TEST_CATALOG=postgresql, which `npm test`
// sets for its second pass under CI (the pool, maintain, crash, torture and serve tests once more on PostgreSQL). On
// PostgreSQL every pool gets a database of its own on the test process's throw-away cluster (support/postgres.ts).
import type { CatalogLocation } from '../../src/format/pool-config.js';
import { requiredPostgresCluster } from './postgres.js';

export const TEST_CATALOG_ENGINE = process.env.SHARDPOOL_TEST_CATALOG === 'postgresql' ? 'postgresql' : 'sqlite';

/** The catalog of a new test pool: SQLite, or a new PostgreSQL database (the cluster must start: this pass needs it). */
export async function testCatalogLocation(): Promise<CatalogLocation> {
  if (TEST_CATALOG_ENGINE === 'sqlite') return { engine: 'sqlite' };
  return { engine: 'postgresql', url: await (await requiredPostgresCluster()).createDatabase() };
}

/** `init` arguments choosing the same catalog. */
export async function testCatalogArgs(): Promise<string[]> {
  const location = await testCatalogLocation();
  return location.engine === 'sqlite' ? [] : ['--catalog', location.url];
}
