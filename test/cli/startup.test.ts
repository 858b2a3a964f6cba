// What a command loads: start-up is part of every command's latency, so each command loads only what it needs (the
// command group table of cli/main.ts, the pool's lazy imports). Checked by behaviour — which modules a run loaded —
// never by timing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { COMMAND_GROUPS } from '../../src/cli/main.js';
import { SHARDPOOL_BIN, runCliOk } from '../support/cli.js';
import { makeTempDir } from '../support/temp-dir.js';

test('each command group registers exactly the commands the start-up table names for it', async () => {
  const seen = new Set<string>();
  for (const group of COMMAND_GROUPS) {
    const program = new Command('shardpool');
    await group.register(program);
    assert.deepEqual(program.commands.map((command) => command.name()).sort(), [...group.commands].sort());
    for (const name of group.commands) {
      assert.ok(!seen.has(name), `${name} is in one group only`);
      seen.add(name);
    }
  }
});

/**
 * Runs the CLI with a preloaded module that records every module it loads: ES modules through a loader hook, and
 * CommonJS ones (addons, packages required lazily) from require.cache at exit.
 */
async function modulesLoadedBy(root: string, args: ReadonlyArray<string>): Promise<string[]> {
  const hook = path.join(root, 'record-modules.mjs');
  const record = path.join(root, `loaded-${Date.now()}-${Math.random()}.txt`);
  await fs.writeFile(
    hook,
    `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
const out = process.env.RECORD_MODULES;
register('data:text/javascript,' + encodeURIComponent(
  'import { appendFileSync } from "node:fs";' +
  'export async function load(url, context, next) { appendFileSync(' + JSON.stringify(out) + ', url + "\\\\n"); return next(url, context); }'));
const require = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(out, Object.keys(require.cache).map((file) => 'file://' + file + '\\n').join('')));
`,
  );
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(hook).href, SHARDPOOL_BIN, ...args], {
      env: { ...process.env, SHARDPOOL_POOL: undefined, RECORD_MODULES: record },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('close', resolve);
  });
  assert.equal(code, 0, `shardpool ${args.join(' ')} succeeded`);
  return (await fs.readFile(record, 'utf8')).split('\n').filter((line) => line !== '');
}

function loadedAny(modules: ReadonlyArray<string>, fragment: string): string[] {
  return modules.filter((url) => url.includes(fragment));
}

test('ls on a SQLite pool opens no disk and loads neither pg, the disk code, the codecs, the writer nor the daemon', async (t) => {
  const root = await makeTempDir(t, 'startup');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'replica:2', '--extent-size', '64KiB', '--catalog', 'sqlite']);
  for (const name of ['disk1', 'disk2']) {
    await fs.mkdir(path.join(root, name));
    await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, name)]);
  }
  await fs.writeFile(path.join(root, 'input'), 'hello');
  await runCliOk(['put', '--pool', pool, 'greeting', path.join(root, 'input')]);

  const modules = await modulesLoadedBy(root, ['ls', '--pool', pool]);
  assert.ok(loadedAny(modules, '/node_modules/better-sqlite3/').length > 0, 'the SQLite catalog was read');
  for (const unwanted of [
    '/node_modules/pg/',
    '/node_modules/cli-progress/',
    '/node_modules/pino/',
    '/node_modules/prom-client/',
    '/node_modules/fast-xml-parser/',
    '/node_modules/hash-wasm/',
    '/node_modules/xxhash-addon/',
    '/node_modules/@ronomon/reed-solomon/',
    'shardpool_io.node',
    '/dist/src/disk/directory/',
    '/dist/src/disk/device/',
    '/dist/src/pool/object-writer.js',
    '/dist/src/pool/garbage.js',
    '/dist/src/pool/object-reader.js',
    '/dist/src/io/native.js',
    '/dist/src/pool/catalog/sqlite-dump.js',
    '/dist/src/maintain/',
    '/dist/src/serve/s3/',
    '/dist/src/serve/daemon.js',
    'node:net', // no daemon socket in the pool directory: nothing to connect to
  ]) {
    assert.deepEqual(loadedAny(modules, unwanted), [], `ls loads nothing of ${unwanted}`);
  }

  const version = await modulesLoadedBy(root, ['--version']);
  assert.deepEqual(loadedAny(version, '/node_modules/commander/'), [], '--version alone parses nothing');
  assert.deepEqual(loadedAny(version, '/dist/src/pool/'), [], '--version opens no pool');
});
