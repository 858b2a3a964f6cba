// The tests' throw-away PostgreSQL 15 cluster (support/postgres-cluster.ts): one per test process, started on first
// use, fsync=off. Each test gets a database of its own (createDatabase). The cluster is stopped and its directory
// removed when the process's tests end (node:test's after) or, failing that, when the process exits.
// Under CI=true a missing or failing PostgreSQL is an error; elsewhere the tests that need it skip with the reason.
import { after } from 'node:test';
import type { TestContext } from 'node:test';
import { PostgresCluster } from './postgres-cluster.js';

export { POSTGRES_BIN, PostgresCluster } from './postgres-cluster.js';

let shared: Promise<PostgresCluster | string> | undefined;

/**
 * The cluster of this test process, started on first use (stopped after the process's tests); or, outside CI when
 * it cannot start, the reason why — and the test is skipped with it.
 */
export async function postgresCluster(t: TestContext): Promise<PostgresCluster | undefined> {
  shared ??= PostgresCluster.start().then(
    (cluster) => cluster,
    (error: unknown) => {
      if (process.env.CI === 'true') throw error;
      const reason = `PostgreSQL cannot be started here: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
      process.stderr.write(`skipping PostgreSQL tests: ${reason}\n`);
      return reason;
    },
  );
  const cluster = await shared;
  if (typeof cluster === 'string') {
    t.skip(cluster);
    return undefined;
  }
  return cluster;
}

/** The process's cluster for a pass of the suite on PostgreSQL: it must start (no skipping there). */
export async function requiredPostgresCluster(): Promise<PostgresCluster> {
  shared ??= PostgresCluster.start();
  const cluster = await shared;
  if (typeof cluster === 'string') throw new Error(cluster);
  return cluster;
}

/** A new database on the process's cluster, or undefined when the test was skipped (see postgresCluster). */
export async function postgresDatabase(t: TestContext): Promise<string | undefined> {
  const cluster = await postgresCluster(t);
  return cluster?.createDatabase();
}

// Registered when a test file imports this module (top level: the hook belongs to the file's root).
after(async () => {
  const cluster = await shared?.catch(() => undefined);
  if (cluster instanceof PostgresCluster) await cluster.stop();
});
