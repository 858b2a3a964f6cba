import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { auditPool } from '../support/pool-audit.js';
import { SHARDPOOL_BIN, runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

function makePool(root: string, disks: number): Promise<string> {
  return createCliPool(root, { disks, policy: 'ec:2+1' });
}

test('concurrent puts from several processes all land, and the pool stays consistent', async (t) => {
  const root = await makeTempDir(t, 'concurrent');
  const pool = await makePool(root, 4);
  const distinct = Array.from({ length: 6 }, (_, index) => ({ key: `k${index}`, data: seededBytes(200_000 + index, index + 1) }));
  const rivals = [seededBytes(150_000, 100), seededBytes(170_000, 101)];
  const results = await Promise.all([
    ...distinct.map(({ key, data }) => runCli(['put', '--pool', pool, key, '-'], { input: data })),
    ...rivals.map((data) => runCli(['put', '--pool', pool, 'contested', '-'], { input: data })),
  ]);
  for (const result of results) assert.equal(result.code, 0, result.stderr);
  const contested = (await runCliOk(['get', '--pool', pool, 'contested'])).stdout;
  assert.ok(rivals.some((data) => data.equals(contested)), 'the contested key holds one whole put, not a mix');
  const expected = new Map([...distinct.map(({ key, data }) => [key, data] as const), ['contested', contested] as const]);
  await auditPool(pool, { expected, noOrphans: true, context: 'after concurrent puts' });
});

test('a second writer gets POOL_BUSY while another holds the pool; readers are never blocked', async (t) => {
  const root = await makeTempDir(t, 'busy');
  const pool = await makePool(root, 3);
  await runCliOk(['put', '--pool', pool, 'existing', '-'], { input: 'hello' });
  // A put reading from a pipe we keep open holds the pool lock until we close it.
  const holder = spawn(process.execPath, [SHARDPOOL_BIN, 'put', '--pool', pool, 'slow', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => holder.kill('SIGKILL'));
  const exited = new Promise<number | null>((resolve) => holder.on('close', resolve));
  holder.stdin.write(seededBytes(100_000, 7));
  // Until the holder has the lock, this no-wait writer fails with DISK_NOT_FOUND (disk 99 does not exist), changing
  // nothing; once the holder has it, with POOL_BUSY.
  let busy: Awaited<ReturnType<typeof runCli>> | undefined;
  for (let attempt = 0; attempt < 100; attempt += 1) {
    busy = await runCli(['--wait', '0', 'fail-disk', '--pool', pool, '--disk', '99']);
    if (busy.stderr.includes('POOL_BUSY')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(busy?.code, 2);
  assert.match(busy?.stderr ?? '', /^shardpool: error POOL_BUSY: pool .* is busy/);
  // Readers take no lock.
  assert.equal((await runCliOk(['get', '--pool', pool, 'existing'])).stdout.toString(), 'hello');
  await runCliOk(['ls', '--pool', pool]);
  await runCliOk(['status', '--pool', pool]);
  holder.stdin.end(seededBytes(50_000, 8));
  assert.equal(await exited, 0);
  const slow = (await runCliOk(['get', '--pool', pool, 'slow'])).stdout;
  assert.ok(slow.equals(Buffer.concat([seededBytes(100_000, 7), seededBytes(50_000, 8)])));
  // With the lock free again, a writer goes through.
  await runCliOk(['--wait', '0', 'rm', '--pool', pool, 'existing']);
});
