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

const result = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=2',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${reporter}`,
    '--test-reporter-destination=stdout',
    ...files,
  ],
  { stdio: 'inherit', env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16' } },
);
process.exit(result.status ?? 1);
