// A pool made through the CLI for a test, its catalog on the engine of the run (support/test-catalog.ts). Kept apart
// from cli.ts, which the bench imports too (through the torture workload) and which must not pull in node:test.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { runCliOk } from './cli.js';
import { testCatalogArgs } from './test-catalog.js';

/** Creates `<root>/pool` through the CLI with `disks` directory disks `<root>/disk1..N` (64 KiB extents). */
export async function createCliPool(root: string, options: { disks: number; policy: string }): Promise<string> {
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', options.policy, '--extent-size', '64KiB', ...(await testCatalogArgs())]);
  for (let index = 1; index <= options.disks; index += 1) {
    await fs.mkdir(path.join(root, `disk${index}`));
    await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, `disk${index}`)]);
  }
  return pool;
}
