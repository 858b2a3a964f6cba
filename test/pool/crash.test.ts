// Crash tests: the real CLI is SIGKILLed at every named step of the put, garbage-collection and drain protocols
// (SHARDPOOL_KILL_AT), then the pool is checked: acknowledged data reads back exactly, nothing half-written is
// visible, no catalog row points at a missing fragment, and the next write-open leaves no orphan behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KILL_POINTS } from '../../src/pool/kill-points.js';
import { Pool } from '../../src/pool/pool.js';
import { auditPool } from '../support/pool-audit.js';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { runCli, runCliOk } from '../support/cli.js';
import { testCatalogArgs } from '../support/test-catalog.js';
import { createCliPool } from '../support/cli-pool.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

const EXTENT_BYTES = 64 * 1024;
const execFileAsync = promisify(execFile);
const DISKS = 7;

function makePool(root: string): Promise<string> {
  return createCliPool(root, { disks: DISKS, policy: 'ec:4+2' });
}

/** Puts record their progress every 2 extents here, so a crash also strikes puts that have recorded some. */
const PROGRESS_EVERY_2 = { SHARDPOOL_PUT_PROGRESS_EXTENTS: '2' };

async function crash(args: string[], killAt: string, input?: Buffer): Promise<void> {
  const result = await runCli(args, { env: { SHARDPOOL_KILL_AT: killAt, ...PROGRESS_EVERY_2 }, ...(input ? { input } : {}) });
  assert.equal(result.signal, 'SIGKILL', `${args[0]} must be killed at ${killAt} (exit ${result.code}: ${result.stderr})`);
}

/**
 * `shardpool import` of the disks as a crash left them (copies, so the pool under test goes on untouched) gives back
 * one of `states`: the acknowledged state, or, for an operation in flight at the crash, the state with it landed.
 */
async function importGivesBack(root: string, disks: ReadonlyArray<string>, states: ReadonlyArray<ReadonlyMap<string, Buffer>>, context: string): Promise<void> {
  const scratch = await fs.mkdtemp(path.join(root, 'import-'));
  try {
    const copies: string[] = [];
    for (const disk of disks) {
      const copy = path.join(scratch, path.basename(disk));
      await execFileAsync('cp', ['-r', '--sparse=always', disk, copy]);
      copies.push(copy);
    }
    const imported = path.join(scratch, 'pool');
    const result = await runCliOk(['import', '--pool', imported, ...copies.flatMap((copy) => ['--disk', copy]), '--json', ...(await testCatalogArgs())]);
    // A put torn by the crash with enough of its fragments flushed to be read lands, degraded (its missing fragments
    // on a failed stand-in disk): rebuild gives it full redundancy, as for any failed disk.
    if ((JSON.parse(result.stdout.toString()) as { degraded: string[] }).degraded.length > 0) await runCliOk(['rebuild', '--pool', imported]);
    const failures: string[] = [];
    for (const expected of states) {
      try {
        await auditPool(imported, { expected, noOrphans: false, context: `import ${context}` });
        return;
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    assert.fail(`import ${context} gave back none of the states allowed: ${failures.join(' | ')}`);
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}

function diskDirectories(root: string): string[] {
  return Array.from({ length: DISKS }, (_, index) => path.join(root, `disk${index + 1}`));
}

/** Opens the pool for writing and closes it: the open finishes whatever the crash interrupted. */
async function recoverByWriteOpen(pool: string): Promise<void> {
  await (await Pool.open(pool, { access: 'write', lockWaitMs: 10_000 })).close();
}

/** Where an rm is killed, and whether it had been acknowledged (its removal committed) by then. */
const RM_CRASHES: Array<{ killAt: string; removed: boolean }> = [
  { killAt: 'remove.marker-written', removed: false },
  { killAt: 'remove.committed', removed: true },
  { killAt: 'gc.fragment-deleted', removed: true },
  { killAt: 'gc.fragment-deleted@9', removed: true },
  { killAt: 'gc.version-finished', removed: true },
  // The marker itself, collected once the removed version is gone.
  { killAt: 'gc.version-finished@2', removed: true },
];
// On device disks the group commit and the checkpoint add their own steps; @n reaches later batches (the old
// version's garbage collection after a commit, or the checkpoint when the pool closes).
const DEVICE_CRASHES = [
  'device.data-flushed',
  'device.data-flushed@4',
  'device.journal-written',
  'device.journal-written@5',
  'device.journal-flushed',
  'device.journal-flushed@6',
  'device.checkpoint-written',
  'device.checkpoint-written@2',
  'device.label-written',
  'device.label-written@3',
];
const DRAIN_CRASHES = ['drain.fragment-copied@2', 'drain.fragment-moved@3'];
// Kill points of the S3 layer, exercised against the daemon in test/serve/s3-multipart.test.ts.
const SERVE_CRASHES = ['multipart.completed'];

const PUT_CRASHES: Array<{ killAt: string; acknowledged: boolean }> = [
  { killAt: 'put.intent-recorded', acknowledged: false },
  { killAt: 'put.fragment-written', acknowledged: false },
  { killAt: 'put.fragment-written@17', acknowledged: false },
  { killAt: 'put.progress-recorded', acknowledged: false },
  { killAt: 'put.manifest-written', acknowledged: false },
  { killAt: 'put.fragments-flushed', acknowledged: false },
  { killAt: 'put.committed', acknowledged: true },
  { killAt: 'gc.fragment-deleted', acknowledged: true },
  { killAt: 'gc.fragment-deleted@11', acknowledged: true },
  { killAt: 'gc.version-finished', acknowledged: true },
];

test('a put overwriting a key, killed at any step, leaves the old object or the new one, never a mix', async (t) => {
  const root = await makeTempDir(t, 'crash-put');
  const pool = await makePool(root);
  const other = seededBytes(2 * EXTENT_BYTES + 1, 99);
  await runCliOk(['put', '--pool', pool, 'bystander', '-'], { input: other });
  let current = seededBytes(5 * EXTENT_BYTES + 7, 1);
  await runCliOk(['put', '--pool', pool, 'key', '-'], { input: current });
  for (const [index, { killAt, acknowledged }] of PUT_CRASHES.entries()) {
    const next = seededBytes(4 * EXTENT_BYTES + index * 1000, index + 2);
    await crash(['put', '--pool', pool, 'key', '-'], killAt, next);
    const landed = new Map([['bystander', other], ['key', next]]);
    const states = acknowledged ? [landed] : [new Map([['bystander', other], ['key', current]]), landed];
    await importGivesBack(root, diskDirectories(root), states, `after kill at ${killAt}`);
    if (acknowledged) current = next;
    const expected = new Map([['bystander', other], ['key', current]]);
    // Straight after the crash, before any cleanup: the catalog names only durable, verified fragments.
    await auditPool(pool, { expected, noOrphans: false, context: `after kill at ${killAt}` });
    await recoverByWriteOpen(pool);
    await auditPool(pool, { expected, noOrphans: true, context: `after recovery from ${killAt}` });
  }
});

test('a first put of a new key, killed before commit, leaves no object and no fragment', async (t) => {
  const root = await makeTempDir(t, 'crash-new');
  const pool = await makePool(root);
  for (const killAt of ['put.intent-recorded', 'put.fragment-written@5', 'put.progress-recorded', 'put.fragments-flushed']) {
    await crash(['put', '--pool', pool, `new-${killAt}`, '-'], killAt, seededBytes(3 * EXTENT_BYTES, 5));
    await auditPool(pool, { expected: new Map(), noOrphans: false, context: `after kill at ${killAt}` });
    await recoverByWriteOpen(pool);
    await auditPool(pool, { expected: new Map(), noOrphans: true, context: `after recovery from ${killAt}` });
  }
});

test('rm killed while deleting fragments leaves the object removed and, after recovery, no fragment behind', async (t) => {
  const root = await makeTempDir(t, 'crash-rm');
  const pool = await makePool(root);
  const kept = seededBytes(EXTENT_BYTES, 3);
  await runCliOk(['put', '--pool', pool, 'kept', '-'], { input: kept });
  for (const { killAt, removed } of RM_CRASHES) {
    const doomed = seededBytes(3 * EXTENT_BYTES, 4);
    await runCliOk(['put', '--pool', pool, 'doomed', '-'], { input: doomed });
    await crash(['rm', '--pool', pool, 'doomed'], killAt);
    const expected = new Map(removed ? [['kept', kept]] : [['kept', kept], ['doomed', doomed]]);
    await importGivesBack(root, diskDirectories(root), removed ? [expected] : [expected, new Map([['kept', kept]])], `after kill at ${killAt}`);
    await auditPool(pool, { expected, noOrphans: false, context: `after kill at ${killAt}` });
    await recoverByWriteOpen(pool);
    await auditPool(pool, { expected, noOrphans: true, context: `after recovery from ${killAt}` });
    if (!removed) await runCliOk(['rm', '--pool', pool, 'doomed']);
  }
});

test('remove-disk killed mid-drain resumes on rerun and loses nothing', async (t) => {
  const root = await makeTempDir(t, 'crash-drain');
  const pool = await makePool(root);
  const expected = new Map<string, Buffer>();
  for (let index = 0; index < 4; index += 1) {
    const data = seededBytes((index + 2) * EXTENT_BYTES + index, 20 + index);
    expected.set(`object-${index}`, data);
    await runCliOk(['put', '--pool', pool, `object-${index}`, '-'], { input: data });
  }
  for (const killAt of DRAIN_CRASHES) {
    await crash(['remove-disk', '--pool', pool, '--disk', '1'], killAt);
    await importGivesBack(root, diskDirectories(root), [expected], `after kill at ${killAt}`);
    await auditPool(pool, { expected, noOrphans: false, context: `after kill at ${killAt}` });
    await recoverByWriteOpen(pool);
    await auditPool(pool, { expected, noOrphans: true, context: `after recovery from ${killAt}` });
  }
  await runCliOk(['remove-disk', '--pool', pool, '--disk', '1']);
  await auditPool(pool, { expected, noOrphans: true, context: 'after the resumed drain' });
  const disks = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as unknown[];
  assert.equal(disks.length, DISKS - 1);
});

test('on device disks, a put or rm killed at any step of the group commit or checkpoint loses nothing and leaks nothing', async (t) => {
  const root = await makeTempDir(t, 'crash-device');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'ec:2+1', '--extent-size', '64KiB']);
  for (let index = 1; index <= 3; index += 1) {
    const image = path.join(root, `device${index}.img`);
    await fs.writeFile(image, '');
    await fs.truncate(image, 96 * 1024 * 1024);
    await runCliOk(['add-disk', '--pool', pool, '--disk', image, '--device', '--yes']);
  }
  const bystander = seededBytes(3 * EXTENT_BYTES + 5, 77);
  await runCliOk(['put', '--pool', pool, 'bystander', '-'], { input: bystander });
  let current = seededBytes(6 * EXTENT_BYTES + 1, 78);
  await runCliOk(['put', '--pool', pool, 'key', '-'], { input: current });
  for (const [index, killAt] of DEVICE_CRASHES.entries()) {
    const next = seededBytes(5 * EXTENT_BYTES + index * 999, 100 + index);
    // Checkpoints come when a closing writer finds the journal a quarter full: small puts fill it first, until one
    // of them reaches the kill point (every put before it completed normally).
    let result = await runCli(['put', '--pool', pool, 'key', '-'], { env: { SHARDPOOL_KILL_AT: killAt, ...PROGRESS_EVERY_2 }, input: next });
    for (let filler = 0; result.signal !== 'SIGKILL' && killAt.startsWith('device.') && filler < 80; filler += 1) {
      current = next;
      result = await runCli(['put', '--pool', pool, 'key', '-'], { env: { SHARDPOOL_KILL_AT: killAt, ...PROGRESS_EVERY_2 }, input: next });
    }
    assert.equal(result.signal, 'SIGKILL', `a put reached ${killAt}: ${result.stderr}`);
    const stored = (await runCliOk(['get', '--pool', pool, 'key'])).stdout;
    assert.ok(stored.equals(current) || stored.equals(next), `after a kill at ${killAt}: the old or the new object, never a mix`);
    const images = [1, 2, 3].map((index) => path.join(root, `device${index}.img`));
    await importGivesBack(root, images, [new Map([['bystander', bystander], ['key', stored]]), new Map([['bystander', bystander], ['key', next]])], `after kill at ${killAt}`);
    current = stored;
    const expected = new Map([['bystander', bystander], ['key', current]]);
    await auditPool(pool, { expected, noOrphans: false, context: `after kill at ${killAt}` });
    await recoverByWriteOpen(pool);
    await auditPool(pool, { expected, noOrphans: true, context: `after recovery from ${killAt}` });
    const recovered = await runCli(['recover', '--pool', pool, '--json']);
    assert.equal(recovered.code, 0, `recover finds nothing to clean after ${killAt}: ${recovered.stdout.toString()}`);
  }
  // rm, killed in its garbage collection's group commit (the first two, one per copy, flush its removal marker).
  const removed = await runCli(['rm', '--pool', pool, 'key'], { env: { SHARDPOOL_KILL_AT: 'device.journal-written@3' } });
  assert.equal(removed.signal, 'SIGKILL');
  await recoverByWriteOpen(pool);
  await auditPool(pool, { expected: new Map([['bystander', bystander]]), noOrphans: true, context: 'after a killed rm' });
  assert.equal((await runCli(['recover', '--pool', pool])).code, 0);
});

test('every kill point of the protocols is exercised by a crash test above', () => {
  const exercised = new Set(
    [...PUT_CRASHES.map((crash) => crash.killAt), ...RM_CRASHES.map((crash) => crash.killAt), ...DRAIN_CRASHES, ...DEVICE_CRASHES, ...SERVE_CRASHES].map(
      (spec) => spec.split('@')[0],
    ),
  );
  assert.deepEqual([...KILL_POINTS].filter((step) => !exercised.has(step)), []);
});
