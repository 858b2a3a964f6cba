// The catalog is a cache of the disks, and `recover --verify-catalog` proves it: a clean pool verifies; rows tampered
// with behind shardpool's back (a size changed, an object row deleted, an extent checksum altered) are each reported
// with what the disks prove instead, and the command exits 1.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

/** Runs SQL on the pool's catalog directly, as a damaged or hand-edited catalog would look. */
async function tamper(pool: string, statements: ReadonlyArray<string>): Promise<void> {
  const config = JSON.parse(await fs.readFile(path.join(pool, 'pool.json'), 'utf8')) as { catalog?: { engine: string; url?: string } };
  if (config.catalog?.engine === 'postgresql') {
    const client = new pg.Client({ connectionString: config.catalog.url });
    await client.connect();
    try {
      for (const statement of statements) await client.query(statement);
    } finally {
      await client.end();
    }
    return;
  }
  const db = new Database(path.join(pool, 'catalog.sqlite'));
  try {
    for (const statement of statements) db.exec(statement);
  } finally {
    db.close();
  }
}

test('recover --verify-catalog finds the catalog agreeing with the disks, then reports every row tampered with', async (t) => {
  const root = await makeTempDir(t, 'verify-catalog');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+1' });
  for (const key of ['sized', 'dropped', 'checksummed', 'untouched']) await runCliOk(['put', '--pool', pool, key, '-'], { input: seededBytes(150_000, key.length) });
  await runCliOk(['put', '--pool', pool, 'removed', '-'], { input: Buffer.from('x') });
  await runCliOk(['rm', '--pool', pool, 'removed']);

  const clean = await runCliOk(['recover', '--pool', pool, '--verify-catalog', '--json']);
  const verified = JSON.parse(clean.stdout.toString()) as { keysChecked: number; differences: unknown[] };
  assert.equal(verified.keysChecked, 4);
  assert.deepEqual(verified.differences, []);

  const zeros = (await isPostgres(pool)) ? `'\\x${'00'.repeat(16)}'::bytea` : `X'${'00'.repeat(16)}'`;
  await tamper(pool, [
    `UPDATE objects SET size_bytes = size_bytes + 1 WHERE key = 'sized'`,
    `DELETE FROM objects WHERE key = 'dropped'`,
    `UPDATE extents SET checksum = ${zeros} WHERE version_id = (SELECT version_id FROM objects WHERE key = 'checksummed') AND extent_index = 0`,
  ]);
  const result = await runCli(['recover', '--pool', pool, '--verify-catalog', '--json']);
  assert.equal(result.code, 1, 'differences exit 1');
  const report = JSON.parse(result.stdout.toString()) as { differences: Array<{ key: string; catalog: string; disks: string }> };
  const byKey = new Map(report.differences.map((difference) => [difference.key, difference]));
  assert.deepEqual([...byKey.keys()].sort(), ['checksummed', 'dropped', 'sized']);
  assert.match(byKey.get('sized')?.disks ?? '', /size 150000/);
  assert.equal(byKey.get('dropped')?.catalog, 'no object');
  assert.match(byKey.get('checksummed')?.disks ?? '', /other extent checksums/);
  const text = await runCli(['recover', '--pool', pool, '--verify-catalog']);
  assert.match(text.stdout.toString(), /3 differences/);
});

async function isPostgres(pool: string): Promise<boolean> {
  const config = JSON.parse(await fs.readFile(path.join(pool, 'pool.json'), 'utf8')) as { catalog?: { engine: string } };
  return config.catalog?.engine === 'postgresql';
}

test('scrub verifies version manifest copies and --repair rewrites a damaged one from another copy', async (t) => {
  const root = await makeTempDir(t, 'scrub-manifest');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+1' });
  await runCliOk(['put', '--pool', pool, 'k', '-'], { input: seededBytes(100_000, 3) });
  const copies: string[] = [];
  for (let index = 1; index <= 4; index += 1) {
    for (const entry of await fs.readdir(path.join(root, `disk${index}`), { recursive: true })) {
      if (String(entry).endsWith('.2147483647.0.frag')) copies.push(path.join(root, `disk${index}`, String(entry)));
    }
  }
  assert.equal(copies.length, 1, 'one copy 0 of the manifest');
  const bytes = await fs.readFile(copies[0] as string);
  bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0xff; // in the manifest's JSON, past the header
  await fs.writeFile(copies[0] as string, bytes);
  const found = await runCli(['scrub', '--pool', pool, '--json']);
  const report = JSON.parse(found.stdout.toString()) as { counts: Record<string, number>; extentsScrubbed: number };
  assert.equal(report.counts.corrupt, 1, 'the damaged copy is found');
  assert.equal(report.extentsScrubbed, 2, 'data extents are counted, manifests are not');
  await runCliOk(['scrub', '--pool', pool, '--repair', '--json']);
  const clean = JSON.parse((await runCliOk(['scrub', '--pool', pool, '--json'])).stdout.toString()) as { counts: Record<string, number> };
  assert.ok(Object.values(clean.counts).every((count) => count === 0), `clean after repair: ${JSON.stringify(clean.counts)}`);
  assert.equal((await runCliOk(['recover', '--pool', pool, '--verify-catalog', '--json'])).code, 0);
});
