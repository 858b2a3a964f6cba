// The catalog's own failures are operating errors: a damaged or vanished catalog file is CATALOG_IO_FAILED with
// SQLite's code, one line from the CLI and exit 2 — never "internal error" (exit 3).
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { isShardpoolError } from '../../../src/errors.js';
import { CATALOG_FILE_NAME } from '../../../src/pool/catalog/catalog.js';
import { openPoolCatalog } from '../../../src/pool/catalog/open-catalog.js';
import { runCli, runCliOk } from '../../support/cli.js';
import { createCliPool } from '../../support/cli-pool.js';
import { makeTempDir } from '../../support/temp-dir.js';
import { toArray } from '../../support/async.js';

/** Cuts the catalog file to its first page: the header (and schema version) still read, every table is gone. */
async function truncateToFirstPage(pool: string): Promise<void> {
  await fs.truncate(path.join(pool, CATALOG_FILE_NAME), 4096);
}

/** A pool on SQLite with a few objects (rows beyond the catalog's first page); `input` is a file of 1000 bytes. */
async function poolWithObjects(root: string): Promise<{ pool: string; input: string }> {
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const input = path.join(root, 'input');
  await fs.writeFile(input, Buffer.alloc(1000, 7));
  for (let index = 0; index < 4; index += 1) await runCliOk(['put', '--pool', pool, `key-${String(index).padStart(3, '0')}-${'x'.repeat(200)}`, input]);
  return { pool, input };
}

test('a catalog damaged under an open connection fails each call with CATALOG_IO_FAILED, lazily listed rows too', async (t) => {
  const root = await makeTempDir(t, 'catalog-faults');
  const { pool } = await poolWithObjects(root);
  const { catalog } = await openPoolCatalog(pool, { create: false });
  try {
    await truncateToFirstPage(pool);
    const failures: unknown[] = [];
    for (const call of [() => catalog.listDisks(), () => toArray(catalog.listObjects('')), () => catalog.objectTotals()]) {
      try {
        await call();
      } catch (error) {
        failures.push(error);
      }
    }
    assert.ok(failures.length > 0, 'reading a truncated catalog fails');
    for (const failure of failures) {
      assert.ok(isShardpoolError(failure, 'CATALOG_IO_FAILED'), String(failure));
      assert.match((failure as Error).message, /SQLITE_(CORRUPT|IOERR)/);
    }
  } finally {
    await catalog.close();
  }
});

test('the CLI reports a damaged catalog in one line with CATALOG_IO_FAILED and exit 2 (an operating error)', async (t) => {
  const root = await makeTempDir(t, 'catalog-faults-cli');
  const { pool, input } = await poolWithObjects(root);
  await truncateToFirstPage(pool);
  for (const args of [['ls', '--pool', pool], ['put', '--pool', pool, 'one-more', input]]) {
    const result = await runCli(args);
    const stderr = result.stderr.toString();
    assert.equal(result.code, 2, `${args[0]}: ${stderr}`);
    assert.match(stderr, /^shardpool: error CATALOG_(IO_)?FAILED: .*SQLITE_|^shardpool: error CATALOG_FAILED: /, stderr);
    assert.doesNotMatch(stderr, /internal error/);
  }
});
