// The paths users run (issue 17, item 3): `shardpool` processes beside what they are measured against, in one run,
// rounds alternating so the machine's noise meets both sides alike.
// - start-up: `shardpool --version`, `ls` and `stat KEY` wall time ÷ a bare `node -e 0` in the same round (each the
//   median of 5 interleaved runs);
// - a large put: `shardpool put KEY FILE` (the whole process: start-up, pool open, put, close) ÷ the same put
//   in-process (pool.put of the same file on a pool already open), and beside a fresh node process doing the same
//   put with the library directly (what start-up and cold code cost, CLI or not);
// - concurrent small puts: 32 `shardpool put` processes of 4 KiB started at once, with `shardpool serve` running
//   (they forward to its command socket) and without one (they hand off to the first of them that takes the pool
//   lock), and 32 concurrent `node -e 0` beside them: no node-based client can start faster than that.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { openInputStream } from '../src/io/durable-files.js';
import { Pool } from '../src/pool/pool.js';
import { SHARDPOOL_BIN } from '../test/support/cli.js';
import { startDaemon } from '../test/support/daemon.js';
import { onCleanup } from './cleanup.js';
import { type Figure, figureOf, formatFigure, seconds } from './stats.js';
import { trackChild } from './cleanup.js';

const MiB = 1024 * 1024;
/** Runs of each start-up command per round (their median is the round's figure). */
const STARTUP_RUNS_PER_ROUND = 5;
const COLD_PUT_CHILD = fileURLToPath(new URL('./cold-put-child.js', import.meta.url));
/** Issue 17's figure: 32 processes at once (the smoke run uses fewer). */
export const CONCURRENT_CLI_PUTS = 32;
const SMALL_PUT_BYTES = 4096;

export interface CliReport {
  readonly rounds: number;
  /** Wall seconds of each command and of `node -e 0`, and each command's ratio to node in the same round. */
  readonly startupSeconds: { readonly node: Figure; readonly version: Figure; readonly ls: Figure; readonly stat: Figure };
  readonly startupVsNode: { readonly version: Figure; readonly ls: Figure; readonly stat: Figure };
  readonly largePut: {
    readonly objectBytes: number;
    readonly cliMiBps: Figure;
    readonly inProcessMiBps: Figure;
    readonly cliVsInProcess: Figure;
    /** A fresh node process putting with the library (start-up, open, put, close), whole-process MiB/s. */
    readonly freshProcessMiBps: Figure;
    readonly cliVsFreshProcess: Figure;
  };
  readonly concurrentPuts: {
    readonly count: number;
    readonly withDaemonPerSecond: Figure;
    readonly withoutDaemonPerSecond: Figure;
    /** 32 concurrent `node -e 0` per second: the ceiling of any node-based client on this machine. */
    readonly bareNodePerSecond: Figure;
  };
}

/**
 * Measures on the pool in `poolDirectory` (which must not be open in this process: the CLI takes its lock), in
 * `rounds` alternating rounds. `scratch` holds the input files.
 */
export async function measureCli(options: {
  readonly poolDirectory: string;
  readonly scratch: string;
  readonly rounds: number;
  readonly largeObjectBytes: number;
  /** Processes started at once in the concurrent small puts (CONCURRENT_CLI_PUTS but in --smoke). */
  readonly concurrentPuts: number;
  readonly log: (line: string) => void;
}): Promise<CliReport> {
  const count = options.concurrentPuts;
  const { poolDirectory, scratch, rounds } = options;
  const largeFile = path.join(scratch, 'cli-large.bin');
  const smallFile = path.join(scratch, 'cli-small.bin');
  await fs.writeFile(largeFile, randomBytes(options.largeObjectBytes));
  await fs.writeFile(smallFile, randomBytes(SMALL_PUT_BYTES));
  const env = { SHARDPOOL_POOL: poolDirectory };
  await runShardpool(['put', 'cli/stat-me', smallFile, '--no-progress'], env);

  const startup = { node: [] as number[], version: [] as number[], ls: [] as number[], stat: [] as number[] };
  const ratios = { version: [] as number[], ls: [] as number[], stat: [] as number[] };
  const cliPut: number[] = [];
  const inProcessPut: number[] = [];
  const freshProcessPut: number[] = [];
  const withDaemon: number[] = [];
  const withoutDaemon: number[] = [];
  const bareNode: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    // Start-up: each command once, in an order that rotates with the round.
    const runs: Array<[keyof typeof startup, () => Promise<number>]> = [
      ['node', () => timed(process.execPath, ['-e', '0'], {})],
      ['version', () => timed(process.execPath, [SHARDPOOL_BIN, '--version'], env)],
      ['ls', () => timed(process.execPath, [SHARDPOOL_BIN, 'ls', 'cli/'], env)],
      ['stat', () => timed(process.execPath, [SHARDPOOL_BIN, 'stat', 'cli/stat-me'], env)],
    ];
    // Interleaved, several times each: one process start on a shared machine is noise; the round's figure for a
    // command is the median of its runs, and its ratio is to node's median of the same round.
    const samples: Record<keyof typeof startup, number[]> = { node: [], version: [], ls: [], stat: [] };
    for (let repeat = 0; repeat < STARTUP_RUNS_PER_ROUND; repeat += 1) {
      for (let index = 0; index < runs.length; index += 1) {
        const [name, run] = runs[(index + round + repeat) % runs.length] as [keyof typeof startup, () => Promise<number>];
        samples[name].push(await run());
      }
    }
    const times: Partial<Record<keyof typeof startup, number>> = {};
    for (const name of Object.keys(samples) as Array<keyof typeof startup>) {
      times[name] = figureOf(samples[name]).median;
      startup[name].push(times[name]);
    }
    for (const name of ['version', 'ls', 'stat'] as const) ratios[name].push((times[name] as number) / (times.node as number));

    // The large put, the CLI first in even rounds and in-process first in odd ones.
    const sides = [
      async () => cliPut.push(options.largeObjectBytes / MiB / (await timed(process.execPath, [SHARDPOOL_BIN, 'put', `cli/large-${round}`, largeFile, '--no-progress'], env))),
      async () => inProcessPut.push(options.largeObjectBytes / MiB / (await inProcessPutSeconds(poolDirectory, `cli/in-process-${round}`, largeFile))),
      async () => freshProcessPut.push(options.largeObjectBytes / MiB / (await timed(process.execPath, [COLD_PUT_CHILD, poolDirectory, `cli/fresh-${round}`, largeFile], {}))),
    ];
    for (let index = 0; index < sides.length; index += 1) await (sides[(index + round) % sides.length] as () => Promise<number>)();

    // Concurrent small puts: without a daemon, with one, and bare node beside them (order rotating).
    const concurrent = [
      async () => withoutDaemon.push(count / (await concurrentPuts(count, smallFile, `cli/alone-${round}`, env))),
      async () => withDaemon.push(count / (await withServe(poolDirectory, () => concurrentPuts(count, smallFile, `cli/served-${round}`, env)))),
      async () => bareNode.push(count / (await concurrently(count, () => [process.execPath, ['-e', '0']]))),
    ];
    for (let index = 0; index < concurrent.length; index += 1) await (concurrent[(index + round) % concurrent.length] as () => Promise<number>)();
    options.log(
      `cli round ${round + 1}/${rounds}: node -e 0 ${ms(times.node)}, --version ${ms(times.version)}, ls ${ms(times.ls)}, stat ${ms(times.stat)}; ` +
        `put ${(options.largeObjectBytes / MiB).toFixed(0)} MiB cli ${(cliPut.at(-1) as number).toFixed(0)} vs in-process ${(inProcessPut.at(-1) as number).toFixed(0)} (fresh process ${(freshProcessPut.at(-1) as number).toFixed(0)}) MiB/s; ` +
        `${count} concurrent 4 KiB puts/s: served ${(withDaemon.at(-1) as number).toFixed(1)}, alone ${(withoutDaemon.at(-1) as number).toFixed(1)} (bare node ${(bareNode.at(-1) as number).toFixed(1)}/s)`,
    );
  }
  const cliVsInProcess = cliPut.map((rate, index) => rate / (inProcessPut[index] as number));
  const cliVsFreshProcess = cliPut.map((rate, index) => rate / (freshProcessPut[index] as number));
  return {
    rounds,
    startupSeconds: { node: figureOf(startup.node), version: figureOf(startup.version), ls: figureOf(startup.ls), stat: figureOf(startup.stat) },
    startupVsNode: { version: figureOf(ratios.version), ls: figureOf(ratios.ls), stat: figureOf(ratios.stat) },
    largePut: {
      objectBytes: options.largeObjectBytes,
      cliMiBps: figureOf(cliPut),
      inProcessMiBps: figureOf(inProcessPut),
      cliVsInProcess: figureOf(cliVsInProcess),
      freshProcessMiBps: figureOf(freshProcessPut),
      cliVsFreshProcess: figureOf(cliVsFreshProcess),
    },
    concurrentPuts: { count, withDaemonPerSecond: figureOf(withDaemon), withoutDaemonPerSecond: figureOf(withoutDaemon), bareNodePerSecond: figureOf(bareNode) },
  };
}

export function formatCli(report: CliReport): string {
  const r = (figure: Figure) => formatFigure(figure, 2);
  const n = (figure: Figure) => formatFigure(figure, 1);
  return [
    `the paths users run (issue 17 item 3; medians of ${report.rounds} alternating rounds, min–max):`,
    `  start-up ÷ node -e 0 (${formatFigure({ median: report.startupSeconds.node.median * 1000, min: report.startupSeconds.node.min * 1000, max: report.startupSeconds.node.max * 1000 })} ms): ` +
      `--version ${r(report.startupVsNode.version)}, ls ${r(report.startupVsNode.ls)}, stat ${r(report.startupVsNode.stat)}   (target ≤ 2)`,
    `  ${(report.largePut.objectBytes / MiB).toFixed(0)} MiB put: CLI ${n(report.largePut.cliMiBps)} MiB/s, in-process ${n(report.largePut.inProcessMiBps)} MiB/s → ${r(report.largePut.cliVsInProcess)}   (target ≥ 0.8); ` +
      `a fresh node process with the library ${n(report.largePut.freshProcessMiBps)} MiB/s → CLI ${r(report.largePut.cliVsFreshProcess)} of it`,
    `  ${report.concurrentPuts.count} concurrent CLI puts of 4 KiB: ${n(report.concurrentPuts.withDaemonPerSecond)}/s with shardpool serve (target ≥ 100), ` +
      `${n(report.concurrentPuts.withoutDaemonPerSecond)}/s without (target ≥ 20); ${report.concurrentPuts.count} concurrent bare node -e 0: ${n(report.concurrentPuts.bareNodePerSecond)}/s`,
  ].join('\n');
}

function ms(secondsValue: number | undefined): string {
  return `${((secondsValue ?? 0) * 1000).toFixed(0)} ms`;
}

/** One child process's wall time in seconds; it must exit 0. */
async function timed(file: string, args: ReadonlyArray<string>, env: Record<string, string>): Promise<number> {
  const started = process.hrtime.bigint();
  await runChild(file, args, env);
  return seconds(started);
}

function runShardpool(args: ReadonlyArray<string>, env: Record<string, string>): Promise<void> {
  return runChild(process.execPath, [SHARDPOOL_BIN, ...args], env);
}

function runChild(file: string, args: ReadonlyArray<string>, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    trackChild(child);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(String(args[0] ?? file))} ${args.slice(1).join(' ')} exited ${code}: ${stderr}`))));
  });
}

/** `count` processes started at once; seconds until the last has exited. */
async function concurrently(count: number, command: (index: number) => [string, ReadonlyArray<string>], env: Record<string, string> = {}): Promise<number> {
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: count }, (_, index) => runChild(...command(index), env)));
  return seconds(started);
}

function concurrentPuts(count: number, file: string, prefix: string, env: Record<string, string>): Promise<number> {
  return concurrently(count, (index) => [process.execPath, [SHARDPOOL_BIN, 'put', `${prefix}/${index}`, file, '--no-progress']], env);
}

/** Seconds of pool.put of `file` (read as the CLI reads it) on a pool opened before the clock starts. */
async function inProcessPutSeconds(poolDirectory: string, key: string, file: string): Promise<number> {
  const pool = await Pool.open(poolDirectory, { access: 'write', lockWaitMs: 30_000 });
  try {
    const started = process.hrtime.bigint();
    await pool.put(key, openInputStream(file));
    return seconds(started);
  } finally {
    await pool.close();
  }
}

/** Runs `work` while `shardpool serve` holds the pool (started before, stopped after; neither is timed). */
async function withServe<T>(poolDirectory: string, work: () => Promise<T>): Promise<T> {
  const hooks: Array<() => unknown> = [];
  const stopAll = onCleanup(`bench daemon on ${poolDirectory}`, async () => {
    for (const hook of hooks.splice(0).reverse()) await hook();
  });
  try {
    const daemon = await startDaemon({ after: (fn) => hooks.push(fn) }, poolDirectory, ['--scrub-interval', 'off', '--metrics-listen', 'off']);
    await daemon.waitForLog(/ready/);
    try {
      return await work();
    } finally {
      await daemon.stop('SIGTERM');
    }
  } finally {
    await stopAll();
  }
}
