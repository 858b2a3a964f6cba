// Which catalog engine the pools the tests make use: SQLite unless SHARDPOOL_TEST_CATALOG=postgresql, which `npm test`
// sets for its second pass under CI (the pool, maintain, crash, torture and serve tests once more on PostgreSQL). On
// PostgreSQL every pool gets a database of its own on the test process's throw-away cluster (support/postgres.ts).
import type { CatalogLocation } from '../../src/format/pool-config.js';

export const TEST_CATALOG_ENGINE = process.env.SHARDPOOL_TEST_CATALOG === 'postgresql' ? 'postgresql' : 'sqlite';

// Loaded only for the PostgreSQL pass, and while the importing file's module is evaluated (top-level await), so its
// node:test hooks still belong to the file's root. Processes that are not test files — the bench, which runs the
// torture workload and so imports this module through support/cli.ts — never load node:test.
const postgres = TEST_CATALOG_ENGINE === 'postgresql' ? await import('./postgres.js') : undefined;

/** The catalog of a new test pool: SQLite, or a new PostgreSQL database (the cluster must start: this pass needs it). */
export async function testCatalogLocation(): Promise<CatalogLocation> {
  if (TEST_CATALOG_ENGINE === 'sqlite') return { engine: 'sqlite' };
  if (postgres === undefined) throw new Error('SHARDPOOL_TEST_CATALOG=postgresql loads support/postgres.ts');
  return { engine: 'postgresql', url: await (await postgres.requiredPostgresCluster()).createDatabase() };
}

/** `init` arguments choosing the same catalog. */
export async function testCatalogArgs(): Promise<string[]> {
  const location = await testCatalogLocation();
  return location.engine === 'sqlite' ? [] : ['--catalog', location.url];
}
