// shardpool catalog dump / load through the real command line, beside a serving daemon too.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { startDaemon } from '../support/daemon.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

function assertOneLineError(result: { code: number | null; stderr: string }, code: string): void {
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, new RegExp(`^shardpool: error ${code}: \\S[^\\n]*\\n$`), result.stderr);
}

/** Everything after the header line (which says when the dump was taken). */
function body(dump: Buffer): Buffer {
  return dump.subarray(dump.indexOf(0x0a) + 1);
}

test('catalog dump and load have --help with an example', async () => {
  for (const command of ['dump', 'load']) {
    const help = (await runCliOk(['catalog', command, '--help'])).stdout.toString();
    assert.match(help, /Example/);
    assert.match(help, new RegExp(`shardpool catalog ${command}`));
  }
  assert.match((await runCliOk(['--help'])).stdout.toString(), /\bcatalog\b/);
});

test('a dump loads into the pool directory with only its pool.json, dumps back the same, and serves the objects', async (t) => {
  const root = await makeTempDir(t, 'catalog-cli');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const data = seededBytes(200_000, 3);
  const input = path.join(root, 'input');
  await fs.writeFile(input, data);
  await runCliOk(['put', '--pool', pool, 'docs/a', input]);
  await runCliOk(['put', '--pool', pool, 'docs/b', '-'], { input: 'hello' });
  await runCliOk(['user', 'add', '--pool', pool, 'backup']);

  const dump = (await runCliOk(['catalog', 'dump', '--pool', pool])).stdout;
  const dumpFile = path.join(root, 'dump.jsonl');
  await runCliOk(['catalog', 'dump', '--pool', pool, '--output', dumpFile]);
  assert.equal((await fs.stat(dumpFile)).mode & 0o777, 0o600, 'the dump holds secrets: for its owner only');
  assert.ok(body(await fs.readFile(dumpFile)).equals(body(dump)));

  const restored = path.join(root, 'restored');
  await fs.mkdir(restored);
  await fs.copyFile(path.join(pool, 'pool.json'), path.join(restored, 'pool.json'));
  const loaded = JSON.parse((await runCliOk(['catalog', 'load', '--pool', restored, dumpFile, '--json'])).stdout.toString()) as {
    rowCounts: Record<string, number>;
  };
  assert.equal(loaded.rowCounts['objects'], 2);
  assert.equal(loaded.rowCounts['users'], 1);
  assert.ok(body((await runCliOk(['catalog', 'dump', '--pool', restored])).stdout).equals(body(dump)));
  assert.ok((await runCliOk(['get', '--pool', restored, 'docs/a'])).stdout.equals(data));
  assert.equal((await runCliOk(['get', '--pool', restored, 'docs/b'])).stdout.toString(), 'hello');

  // Refusals, each one line and exit 2, none changing anything.
  assertOneLineError(await runCli(['catalog', 'load', '--pool', pool, dumpFile]), 'CATALOG_NOT_EMPTY');
  const fresh = path.join(root, 'fresh');
  await fs.mkdir(fresh);
  await fs.copyFile(path.join(pool, 'pool.json'), path.join(fresh, 'pool.json'));
  assertOneLineError(await runCli(['catalog', 'load', '--pool', fresh, '-'], { input: dump.subarray(0, dump.length - 100) }), 'CATALOG_DUMP_TRUNCATED');
  const other = path.join(root, 'other');
  await runCliOk(['init', '--pool', other]);
  assertOneLineError(await runCli(['catalog', 'load', '--pool', other, dumpFile]), 'CATALOG_DUMP_OTHER_POOL');
  assertOneLineError(await runCli(['catalog', 'load', '--pool', fresh, path.join(root, 'missing.jsonl')]), 'INPUT_NOT_FOUND');
  await runCliOk(['catalog', 'load', '--pool', fresh, '-'], { input: dump });
});

test('catalog dump reads a snapshot while shardpool serve runs; catalog load refuses a served pool', async (t) => {
  const root = await makeTempDir(t, 'catalog-cli-served');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  try {
    await runCliOk(['put', '--pool', pool, 'served/one', '-'], { input: 'one' });
    const dump = (await runCliOk(['catalog', 'dump', '--pool', pool])).stdout.toString();
    assert.match(dump, /"table":"objects","row":\{"key":"served\/one"/);
    assert.match(dump, /"end":"shardpool-catalog-dump"/);
    const started = Date.now();
    const refused = await runCli(['catalog', 'load', '--pool', pool, '-'], { input: dump });
    assertOneLineError(refused, 'POOL_BUSY');
    assert.match(refused.stderr, /served by shardpool serve/);
    assert.ok(Date.now() - started < 10_000, 'refused at once, without waiting for the lock');
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
});
