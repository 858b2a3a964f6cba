// `npm test` runs this after the build: it finds every compiled *.test.js (Node 20's --test would also run the
// helpers in test/support as tests) and runs them with the spec reporter plus a one-line summary at the end.
// Arguments narrow the run: `npm test -- pool` runs the files whose path contains "pool".
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const testRoot = fileURLToPath(new URL('..', import.meta.url));
const reporter = fileURLToPath(new URL('./summary-reporter.js', import.meta.url));
const filters = process.argv.slice(2);

const files = fs
  .readdirSync(testRoot, { recursive: true })
  .map(String)
  .filter((file) => file.endsWith('.test.js'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .map((file) => path.join(testRoot, file))
  .sort();

if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(' ')}\n`);
  process.exit(1);
}

/**
 * Under CI (or SHARDPOOL_TEST_ENGINES=both) the tests that make pools — pool, maintain, crash, torture, serve — run a
 * second time on PostgreSQL (support/test-catalog.ts): each pool's catalog in a database of its own on a throw-away
 * cluster. The catalog's own tests (pool/catalog/) already run against both engines and are not repeated.
 */
const BOTH_ENGINES = process.env.CI === 'true' || process.env.SHARDPOOL_TEST_ENGINES === 'both';
const ON_EVERY_ENGINE = /[\\/](pool|maintain|torture|serve)[\\/]/;
const ENGINE_SPECIFIC = /[\\/]pool[\\/]catalog[\\/]/;

function runFiles(testFiles: ReadonlyArray<string>, env: NodeJS.ProcessEnv): number {
  const result = spawnSync(
    process.execPath,
    [
      '--test',
      '--test-concurrency=2',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      `--test-reporter=${reporter}`,
      '--test-reporter-destination=stdout',
      ...testFiles,
    ],
    { stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16', ...env } },
  );
  return result.status ?? 1;
}

let status = runFiles(files, { SHARDPOOL_TEST_CATALOG: 'sqlite' });
const onPostgres = files.filter((file) => ON_EVERY_ENGINE.test(file) && !ENGINE_SPECIFIC.test(file));
if (BOTH_ENGINES && onPostgres.length > 0) {
  process.stdout.write(`\nthe same ${onPostgres.length} test files again with the catalog on PostgreSQL (SHARDPOOL_TEST_CATALOG=postgresql)\n`);
  status = Math.max(status, runFiles(onPostgres, { SHARDPOOL_TEST_CATALOG: 'postgresql' }));
}
process.exit(status);
