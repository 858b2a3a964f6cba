// Many CLI writers at once without a daemon (cli/hand-off.ts): the first to take the pool lock runs the others' put
// and rm beside its own; every command is acknowledged exactly when its object is stored, and nothing else waits.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { Pool } from '../../src/pool/pool.js';
import { spawn } from 'node:child_process';
import { SHARDPOOL_BIN, runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

const WRITERS = 12;

test('concurrent CLI puts without a daemon all succeed, from files and from standard input, and read back their own bytes', async (t) => {
  const root = await makeTempDir(t, 'hand-off');
  const pool = await createCliPool(root, { disks: 3, policy: 'replica:2' });
  const inputs = Array.from({ length: WRITERS }, (_, index) => seededBytes(20_000 + index * 997, index + 1));
  for (const [index, bytes] of inputs.entries()) await fs.writeFile(path.join(root, `in${index}`), bytes);
  const results = await Promise.all(
    inputs.map((bytes, index) =>
      index % 2 === 0
        ? runCli(['put', '--pool', pool, `k/${index}`, path.join(root, `in${index}`), '--json'])
        : runCli(['put', '--pool', pool, `k/${index}`, '--json'], { input: bytes }),
    ),
  );
  for (const [index, result] of results.entries()) {
    assert.equal(result.code, 0, `put ${index}: ${result.stderr}`);
    assert.equal((JSON.parse(result.stdout.toString('utf8')) as { key: string; sizeBytes: number }).sizeBytes, inputs[index]?.length);
  }
  for (const [index, bytes] of inputs.entries()) {
    const read = await runCliOk(['get', '--pool', pool, `k/${index}`]);
    assert.ok(read.stdout.equals(bytes), `k/${index} holds its own bytes`);
  }
  // Every owner removed its socket and released the lock: a write-open succeeds at once.
  assert.ok(!(await fs.readdir(pool)).includes('handoff.sock'));
  const opened = await Pool.open(pool, { access: 'write', lockWaitMs: 0 });
  await opened.close();
});

test('concurrent CLI rm and put of distinct keys without a daemon leave exactly the puts', async (t) => {
  const root = await makeTempDir(t, 'hand-off');
  const pool = await createCliPool(root, { disks: 2, policy: 'replica:2' });
  for (let index = 0; index < WRITERS / 2; index += 1) await runCliOk(['put', '--pool', pool, `old/${index}`], { input: `old ${index}` });
  const results = await Promise.all([
    ...Array.from({ length: WRITERS / 2 }, (_, index) => runCli(['rm', '--pool', pool, `old/${index}`])),
    ...Array.from({ length: WRITERS / 2 }, (_, index) => runCli(['put', '--pool', pool, `new/${index}`], { input: `new ${index}` })),
  ]);
  for (const result of results) assert.equal(result.code, 0, result.stderr);
  const listed = JSON.parse((await runCliOk(['ls', '--pool', pool, '--json'])).stdout.toString('utf8')) as Array<{ key: string }>;
  assert.deepEqual(listed.map((object) => object.key).sort(), Array.from({ length: WRITERS / 2 }, (_, index) => `new/${index}`).sort());
});

test('a put behind another command holding the pool fails with POOL_BUSY after --wait, and leaves no socket', async (t) => {
  const root = await makeTempDir(t, 'hand-off');
  const pool = await createCliPool(root, { disks: 2, policy: 'replica:2' });
  const holder = await Pool.open(pool, { access: 'write', lockWaitMs: 0 });
  try {
    const result = await runCli(['--wait', '0.3', 'put', '--pool', pool, 'k'], { input: 'bytes' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^shardpool: error POOL_BUSY: /);
    assert.ok(!(await fs.readdir(pool)).includes('handoff.sock'));
  } finally {
    await holder.close();
  }
  const listed = JSON.parse((await runCliOk(['ls', '--pool', pool, '--json'])).stdout.toString('utf8')) as unknown[];
  assert.deepEqual(listed, [], 'the refused put stored nothing');
});

test('a put started while another holds the pool runs in that process at once, even with --wait 0', async (t) => {
  const root = await makeTempDir(t, 'hand-off');
  const pool = await createCliPool(root, { disks: 2, policy: 'replica:2' });
  // The owner: a put whose standard input stays open, so it holds the pool (and its socket) until we end it.
  const owner = spawn(process.execPath, [SHARDPOOL_BIN, 'put', '--pool', pool, 'slow', '--json'], {
    env: { ...process.env, SHARDPOOL_POOL: undefined },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const ownerOut: Buffer[] = [];
  owner.stdout.on('data', (chunk: Buffer) => ownerOut.push(chunk));
  const ownerExit = new Promise<number | null>((resolve) => owner.on('close', resolve));
  t.after(() => owner.kill('SIGKILL'));
  owner.stdin.write('first half, ');
  for (let tries = 0; !(await fs.readdir(pool)).includes('handoff.sock'); tries += 1) {
    assert.ok(tries < 400, 'the owner listens within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  // Without the hand-off this would find the lock taken and fail at once (--wait 0).
  const handed = await runCli(['--wait', '0', 'put', '--pool', pool, 'quick'], { input: 'handed off' });
  assert.equal(handed.code, 0, handed.stderr);
  assert.equal((await runCliOk(['get', '--pool', pool, 'quick'])).stdout.toString('utf8'), 'handed off');

  owner.stdin.end('second half');
  assert.equal(await ownerExit, 0);
  assert.equal((JSON.parse(Buffer.concat(ownerOut).toString('utf8')) as { key: string }).key, 'slow');
  assert.equal((await runCliOk(['get', '--pool', pool, 'slow'])).stdout.toString('utf8'), 'first half, second half');
  assert.ok(!(await fs.readdir(pool)).includes('handoff.sock'), 'the owner removed its socket');
});
