import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

const COMMANDS = ['init', 'add-disk', 'list-disks', 'put', 'get', 'ls', 'stat', 'rm', 'fail-disk', 'remove-disk', 'status'];

/** A failing command prints exactly one line `shardpool: error CODE: …` (plus an optional usage hint), no stack. */
function assertOneLineError(stderr: string, code: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.match(lines[0] ?? '', new RegExp(`^shardpool: error ${code}: \\S`), stderr);
  assert.ok(lines.length === 1 || (lines.length === 2 && lines[1]?.startsWith('(run with --help')), stderr);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

function makePoolWithDisks(root: string, disks: number, policy = 'ec:4+2'): Promise<string> {
  return createCliPool(root, { disks, policy });
}

test('every command of the contract has --help with an example', async () => {
  const top = await runCliOk(['--help']);
  for (const command of COMMANDS) {
    assert.match(top.stdout.toString(), new RegExp(`\\b${command}\\b`), `top-level help lists ${command}`);
    const help = await runCliOk([command, '--help']);
    assert.match(help.stdout.toString(), /Example/, `${command} --help has an example`);
    assert.match(help.stdout.toString(), new RegExp(`shardpool ${command}`));
  }
});

test('the tour works end to end through the CLI, with SHARDPOOL_POOL standing in for --pool', async (t) => {
  const root = await makeTempDir(t, 'cli');
  const pool = await makePoolWithDisks(root, 6);
  const env = { SHARDPOOL_POOL: pool };
  const data = seededBytes(300 * 1024 + 5, 11);
  const input = path.join(root, 'input.bin');
  await fs.writeFile(input, data);

  const put = await runCliOk(['put', 'docs/input.bin', input], { env });
  assert.match(put.stdout.toString(), /stored "docs\/input\.bin": 300\.0 KiB in 5 extents, ec:4\+2/);
  await runCliOk(['put', 'docs/stdin.bin', '--policy', 'replica:3'], { env, input: data });
  await runCliOk(['put', 'other/dash.bin', '-'], { env, input: 'hello' });

  // get to stdout, to a file, and with -
  assert.ok((await runCliOk(['get', 'docs/input.bin'], { env })).stdout.equals(data));
  assert.ok((await runCliOk(['get', 'docs/stdin.bin', '-'], { env })).stdout.equals(data));
  const output = path.join(root, 'out.bin');
  await runCliOk(['get', 'docs/input.bin', output], { env });
  assert.ok((await fs.readFile(output)).equals(data));

  const ls = await runCliOk(['ls', 'docs/'], { env });
  const listed = ls.stdout.toString().trim().split('\n').slice(1).map((line) => line.split(/\s+/).at(-1));
  assert.deepEqual(listed, ['docs/input.bin', 'docs/stdin.bin']);
  const lsJson = JSON.parse((await runCliOk(['ls', '--json'], { env })).stdout.toString()) as Array<{ key: string; sizeBytes: number }>;
  assert.deepEqual(lsJson.map((object) => [object.key, object.sizeBytes]), [
    ['docs/input.bin', data.length],
    ['docs/stdin.bin', data.length],
    ['other/dash.bin', 5],
  ]);

  const stat = JSON.parse((await runCliOk(['stat', 'docs/input.bin', '--json'], { env })).stdout.toString()) as {
    sizeBytes: number;
    policy: string;
    extentCount: number;
    health: string;
    extents: Array<{ fragments: Array<{ index: number; diskId: number; diskPath: string }> }>;
  };
  assert.equal(stat.sizeBytes, data.length);
  assert.equal(stat.policy, 'ec:4+2');
  assert.equal(stat.extentCount, 5);
  assert.equal(stat.health, 'healthy');
  for (const extent of stat.extents) {
    assert.equal(new Set(extent.fragments.map((fragment) => fragment.diskId)).size, 6, 'fragments on distinct disks');
  }
  assert.match((await runCliOk(['stat', 'docs/input.bin'], { env })).stdout.toString(), /health\s+healthy/);

  const disks = JSON.parse((await runCliOk(['list-disks', '--json'], { env })).stdout.toString()) as Array<{ id: number; kind: string }>;
  assert.equal(disks.length, 6);
  assert.ok(disks.every((disk) => disk.kind === 'directory'));

  await runCliOk(['fail-disk', '--disk', '2'], { env });
  const degraded = await runCliOk(['get', 'docs/input.bin'], { env });
  assert.ok(degraded.stdout.equals(data));
  assert.match(degraded.stderr, /^shardpool: warning: "docs\/input\.bin" was read degraded/);
  const status = JSON.parse((await runCliOk(['status', '--json'], { env })).stdout.toString()) as { health: string };
  assert.equal(status.health, 'degraded');
  assert.match((await runCliOk(['status'], { env })).stdout.toString(), /health\s+degraded/);

  await fs.mkdir(path.join(root, 'disk7'));
  await runCliOk(['add-disk', '--disk', path.join(root, 'disk7')], { env });
  const removed = await runCliOk(['remove-disk', '--disk', '2'], { env });
  assert.match(removed.stdout.toString(), /removed disk 2 .* rebuilt from redundancy/);
  assert.equal(JSON.parse((await runCliOk(['status', '--json'], { env })).stdout.toString()).health, 'healthy');

  await runCliOk(['rm', 'docs/input.bin'], { env });
  const missing = await runCli(['get', 'docs/input.bin'], { env });
  assert.equal(missing.code, 2);
  assertOneLineError(missing.stderr, 'OBJECT_NOT_FOUND');
});

test('errors are one clear line with a stable code and exit code 2', async (t) => {
  const root = await makeTempDir(t, 'cli-errors');
  const pool = await makePoolWithDisks(root, 3, 'ec:2+1');
  const cases: Array<{ args: string[]; code: string; input?: string }> = [
    { args: ['ls'], code: 'POOL_NOT_SPECIFIED' },
    { args: ['ls', '--pool', path.join(root, 'nowhere')], code: 'POOL_NOT_FOUND' },
    { args: ['init', '--pool', pool], code: 'POOL_ALREADY_EXISTS' },
    { args: ['init', '--pool', path.join(root, 'p2'), '--policy', 'raid5'], code: 'POLICY_INVALID' },
    { args: ['init', '--pool', path.join(root, 'p3'), '--extent-size', '1000'], code: 'EXTENT_SIZE_INVALID' },
    { args: ['init', '--pool', path.join(root, 'p4'), '--extent-size', 'huge'], code: 'USAGE_INVALID' },
    { args: ['init', '--pool', path.join(root, 'p5'), '--catalog', 'postgresql://shardpool:secret@db1/pool1'], code: 'USAGE_INVALID' },
    { args: ['init', '--pool', path.join(root, 'p6'), '--catalog', 'mysql://db1/pool1'], code: 'USAGE_INVALID' },
    { args: ['init', '--pool', path.join(root, 'p7'), '--catalog', 'postgresql://shardpool@db1'], code: 'USAGE_INVALID' },
    { args: ['put', '--pool', pool, 'k', path.join(root, 'no-such-file')], code: 'INPUT_NOT_FOUND' },
    { args: ['put', '--pool', pool, 'k', '--policy', 'ec:4+2'], code: 'POLICY_NEEDS_MORE_DISKS', input: 'x' },
    { args: ['put', '--pool', pool, 'x'.repeat(1025)], code: 'KEY_INVALID', input: 'x' },
    { args: ['put', '--pool', pool, 'tab\tkey'], code: 'KEY_INVALID', input: 'x' },
    { args: ['get', '--pool', pool, 'absent'], code: 'OBJECT_NOT_FOUND' },
    { args: ['stat', '--pool', pool, 'absent'], code: 'OBJECT_NOT_FOUND' },
    { args: ['rm', '--pool', pool, 'absent'], code: 'OBJECT_NOT_FOUND' },
    { args: ['fail-disk', '--pool', pool, '--disk', '99'], code: 'DISK_NOT_FOUND' },
    { args: ['add-disk', '--pool', pool, '--disk', path.join(root, 'absent')], code: 'DISK_NOT_FOUND' },
    { args: ['add-disk', '--pool', pool, '--disk', path.join(root, 'disk1')], code: 'DISK_ALREADY_IN_POOL' },
    { args: ['frobnicate', '--pool', pool], code: 'USAGE_INVALID' },
    { args: ['ls', '--pool', pool, '--no-such-flag'], code: 'USAGE_INVALID' },
    { args: ['get', '--pool', pool], code: 'USAGE_INVALID' },
  ];
  for (const { args, code, input } of cases) {
    const result = await runCli(args, input === undefined ? {} : { input });
    assert.equal(result.code, 2, `${args.join(' ')} exits 2: ${result.stderr}`);
    assertOneLineError(result.stderr, code);
  }
  // A corrupt pool.json is refused clearly and left as it was.
  await fs.writeFile(path.join(pool, 'pool.json'), '{"formatVersion": 1, "poolUuid": ');
  const corrupt = await runCli(['status', '--pool', pool]);
  assert.equal(corrupt.code, 2);
  assertOneLineError(corrupt.stderr, 'POOL_CONFIG_INVALID');
  assert.equal(await fs.readFile(path.join(pool, 'pool.json'), 'utf8'), '{"formatVersion": 1, "poolUuid": ');
});

test('get into a file never leaves a partial file when the object cannot be read', async (t) => {
  const root = await makeTempDir(t, 'cli-partial');
  const pool = await makePoolWithDisks(root, 3, 'ec:2+1');
  await runCliOk(['put', '--pool', pool, 'k', '-'], { input: seededBytes(200 * 1024, 3) });
  // Break the last extent beyond repair: remove two of its three fragments.
  for (const disk of ['disk1', 'disk2']) {
    const entries = await fs.readdir(path.join(root, disk), { recursive: true });
    for (const entry of entries.filter((name) => /\.3\.\d\.frag$/.test(String(name)))) await fs.rm(path.join(root, disk, String(entry)));
  }
  const output = path.join(root, 'out.bin');
  const result = await runCli(['get', '--pool', pool, 'k', output]);
  assert.equal(result.code, 2, result.stderr);
  assertOneLineError(result.stderr, 'EXTENT_UNRECOVERABLE');
  assert.deepEqual((await fs.readdir(root)).filter((name) => name.startsWith('out.bin')), [], 'no partial or temp file');
});

test('get piped into a reader that stops early exits quietly', async (t) => {
  const root = await makeTempDir(t, 'cli-pipe');
  const pool = await makePoolWithDisks(root, 3, 'ec:2+1');
  await runCliOk(['put', '--pool', pool, 'big', '-'], { input: seededBytes(4 * 1024 * 1024, 1) });
  const { spawnSync } = await import('node:child_process');
  const { SHARDPOOL_BIN } = await import('../support/cli.js');
  const result = spawnSync('bash', ['-o', 'pipefail', '-c', `"${process.execPath}" "${SHARDPOOL_BIN}" get --pool "${pool}" big | head -c 10 >/dev/null`]);
  assert.equal(result.stderr.toString(), '', 'nothing on stderr');
  assert.equal(result.status, 0);
});

test('a reader that closes the pipe early ends the command quietly, not with an unhandled EPIPE', async () => {
  const { spawn } = await import('node:child_process');
  const { SHARDPOOL_BIN } = await import('../support/cli.js');
  const child = spawn(process.execPath, [SHARDPOOL_BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Unhandled/);
});
