// The network lab (support/net-lab.ts): routing between its namespaces, PostgreSQL inside it, partitions, kill, and
// that nothing with the lab's tag is left afterwards, however the test process ends.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { canUseNetLab, createNetLab, withNetLab, type NetLab, type NetLabIdentity } from './net-lab.js';
import type { ProbeOutput } from './net-lab-probe.js';
import { makeTempDir } from './temp-dir.js';

const PROBE = fileURLToPath(new URL('./net-lab-probe.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./net-lab-fixture.js', import.meta.url));
const SERVER = `require('node:http').createServer((request, response) => response.end(request.socket.remoteAddress)).listen(8080, process.argv[1], () => console.log('listening'))`;

const get = (lab: NetLab, from: string, to: string, timeoutMs = 1000) =>
  lab.runNodeScript<ProbeOutput>(from, PROBE, { url: `http://${lab.address(to)}:8080/`, timeoutMs });

test('a three-node lab routes between its namespaces only, partitions and heals a node, and leaves nothing behind', async (t) => {
  if (!canUseNetLab(t)) return;
  const tempDir = await makeTempDir(t, 'netlab');
  const lab = await createNetLab({ nodes: ['n1', 'n2', 'n3'], withPostgres: true, tempDir });
  t.after(() => lab.close());
  assert.deepEqual(lab.names, ['client', 'pg', 'n1', 'n2', 'n3']);
  const addresses = lab.names.map((name) => lab.address(name));
  assert.equal(new Set(addresses).size, addresses.length);
  for (const address of addresses) assert.match(address, /^198\.(18|19)\.\d+\.\d+$/);

  // Nothing leaves the lab: one connected route, no IPv6 address, nothing of the lab in the root namespace.
  const routes = await lab.run('n2', 'ip', ['-4', 'route', 'show']);
  assert.equal(routes.stdout.trim().split('\n').length, 1, routes.stdout);
  assert.match(routes.stdout, /^198\.18\.0\.0\/15 dev /);
  assert.equal((await lab.run('n2', 'ip', ['-6', 'addr', 'show'])).stdout.trim(), '');
  assert.doesNotMatch(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }), new RegExp(lab.tag));

  const server = lab.spawn('n1', process.execPath, ['-e', SERVER, lab.address('n1')]);
  await server.waitForOutput(/listening/);
  assert.deepEqual(await get(lab, 'n2', 'n1'), { ok: true, status: 200, body: lab.address('n2') });
  assert.deepEqual(await get(lab, 'client', 'n1'), { ok: true, status: 200, body: lab.address('client') });

  const whoami = await lab.run('n3', 'psql', [lab.postgresUrl(), '-tAc', 'select inet_server_addr(), inet_client_addr()']);
  assert.equal(whoami.stdout.trim(), `${lab.address('pg')}|${lab.address('n3')}`, whoami.stderr);
  const database = await lab.createDatabase();
  const created = await lab.run('n1', 'psql', [database, '-tAc', 'create table t (v int); insert into t values (7); select v from t']);
  assert.equal(created.stdout.trim().split('\n').at(-1), '7', created.stderr);

  const disk = await lab.createLoopDevice('n2', { sizeBytes: 16 * 1024 * 1024, sectorBytes: 4096 });
  assert.match(execFileSync('losetup', ['--associated', disk.imagePath], { encoding: 'utf8' }), new RegExp(disk.path));

  const cutAt = Date.now();
  await lab.cutNetwork('n1');
  const cut = await get(lab, 'n2', 'n1');
  assert.equal(cut.ok, false);
  assert.ok(Date.now() - cutAt < 5000, `the cut took ${Date.now() - cutAt} ms to show`);
  assert.equal(server.child.exitCode, null, 'the partitioned node keeps its processes');
  assert.deepEqual(await get(lab, 'n1', 'n1'), { ok: true, status: 200, body: lab.address('n1') });

  await lab.restoreNetwork('n1');
  let healed: ProbeOutput = { ok: false, error: 'not tried' };
  for (const deadline = Date.now() + 5000; !healed.ok && Date.now() < deadline; ) healed = await get(lab, 'n2', 'n1');
  assert.deepEqual(healed, { ok: true, status: 200, body: lab.address('n2') });

  await lab.kill('n1', 'SIGTERM');
  assert.equal((await server.exited).signal, 'SIGTERM');
  assert.equal(execFileSync('ip', ['netns', 'pids', lab.netns('n1')], { encoding: 'utf8' }).trim(), '');

  const identity = lab.identity();
  assert.ok(identity.postgresDirectory !== undefined && fs.existsSync(identity.postgresDirectory));
  await lab.close();
  await lab.close();
  assert.deepEqual(remnants(identity), []);
});

test('a lab whose test throws midway is still removed', async (t) => {
  if (!canUseNetLab(t)) return;
  const tempDir = await makeTempDir(t, 'netlab');
  let identity: NetLabIdentity | undefined;
  await assert.rejects(
    withNetLab({ nodes: ['n1', 'n2'], tempDir }, async (lab) => {
      identity = lab.identity();
      lab.spawn('n1', 'sleep', ['600']);
      throw new Error('midway');
    }),
    /midway/,
  );
  assert.ok(identity !== undefined);
  assert.deepEqual(remnants(identity), []);
});

test('a lab is refused names it could not keep apart, before anything is made', async (t) => {
  if (!canUseNetLab(t)) return;
  const tempDir = await makeTempDir(t, 'netlab');
  await assert.rejects(createNetLab({ nodes: ['client'], tempDir }), /lab's own/);
  await assert.rejects(createNetLab({ nodes: ['n1', 'n1'], tempDir }), /repeat/);
  await assert.rejects(createNetLab({ nodes: ['N-1'], tempDir }), /lower-case/);
  assert.deepEqual(fs.readdirSync(tempDir), []);
});

for (const ending of ['an uncaught error', 'SIGTERM', 'SIGKILL'] as const) {
  test(`a test process that ends by ${ending} without close() leaves nothing of its lab`, async (t) => {
    if (!canUseNetLab(t)) return;
    const tempDir = await makeTempDir(t, 'netlab');
    const { child, identity } = await startFixture(tempDir, ending === 'an uncaught error' ? 'throw' : 'wait');
    if (ending !== 'an uncaught error') child.kill(ending);
    await new Promise((resolve) => child.on('close', resolve));
    // The exit hook and the signal handler remove it before the process ends; after SIGKILL the reaper does.
    await eventually(() => remnants(identity), ending === 'SIGKILL' ? 10_000 : 0);
  });
}

test('a lab given the temp dir of a killed one (reaper killed too) removes its recorded leftovers first', async (t) => {
  if (!canUseNetLab(t)) return;
  const tempDir = await makeTempDir(t, 'netlab');
  const { child, identity } = await startFixture(tempDir, 'wait');
  assert.ok(identity.reaperPid !== undefined);
  process.kill(identity.reaperPid, 'SIGKILL');
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('close', resolve));
  assert.ok(remnants(identity).some((line) => line.startsWith('namespace')), 'the killed lab left its namespaces');
  const lab = await createNetLab({ nodes: ['n1'], tempDir });
  t.after(() => lab.close());
  // The state file is the new lab's now (same temp dir); the rest of the old lab is gone.
  assert.deepEqual(remnants(identity).filter((line) => !line.startsWith('state file')), []);
  await lab.close();
  assert.deepEqual(remnants(lab.identity()), []);
});

async function startFixture(tempDir: string, mode: 'throw' | 'wait') {
  const child = spawn(process.execPath, [FIXTURE, tempDir, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const closed = new Promise((resolve) => child.on('close', resolve));
  for (const deadline = Date.now() + 20_000; !output.includes('\n'); ) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      await closed;
      assert.fail(`the lab fixture printed no identity: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const { identity } = JSON.parse(output.split('\n')[0]!) as { identity: NetLabIdentity };
  return { child, identity };
}

async function eventually(check: () => string[], waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const left = check();
    if (left.length === 0 || Date.now() >= deadline) return assert.deepEqual(left, []);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whatever of the lab still exists: namespaces, interfaces (in any namespace), processes in its namespaces, files. */
function remnants(identity: NetLabIdentity): string[] {
  const left: string[] = [];
  const tag = identity.tag;
  for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) if (line.includes(tag)) left.push(`namespace ${line}`);
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }) + everyNamespacesLinks();
  for (const line of links.split('\n')) if (line.includes(tag) && !line.startsWith('netns:')) left.push(`link ${line}`);
  const inodes = new Set(identity.namespaces.map((each) => `net:[${each.inode}]`));
  for (const pid of fs.readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      if (inodes.has(fs.readlinkSync(path.join('/proc', pid, 'ns', 'net')))) left.push(`process ${pid}`);
    } catch {
      // ended meanwhile, or a zombie
    }
  }
  if (identity.reaperPid !== undefined && fs.existsSync(`/proc/${identity.reaperPid}`)) {
    const state = fs.readFileSync(`/proc/${identity.reaperPid}/stat`, 'utf8').split(') ')[1]?.[0];
    if (state !== 'Z' && fs.readFileSync(`/proc/${identity.reaperPid}/cmdline`, 'utf8').includes('reap-net-lab')) left.push(`reaper ${identity.reaperPid}`);
  }
  if (identity.postgresDirectory !== undefined && fs.existsSync(identity.postgresDirectory)) left.push(`directory ${identity.postgresDirectory}`);
  for (const image of identity.loopImages) {
    if (fs.existsSync(image)) left.push(`image ${image}`);
    const attached = execFileSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' });
    if (attached.split('\n').some((line) => line.trim().endsWith(` ${image}`))) left.push(`loop device of ${image}`);
  }
  if (fs.existsSync(identity.statePath)) left.push(`state file ${identity.statePath}`);
  return left;
}

/** `ip -o link` in every namespace; a namespace removed meanwhile (by anyone) makes ip exit 1 with the rest printed. */
function everyNamespacesLinks(): string {
  try {
    return execFileSync('ip', ['-all', 'netns', 'exec', 'ip', '-o', 'link'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? '');
  }
}
