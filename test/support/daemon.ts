// Runs `shardpool serve` in a child process, as an operator (or systemd) does, and reads its JSON log.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { runCliOk, SHARDPOOL_BIN } from './cli.js';

export interface RunningDaemon {
  /** http://127.0.0.1:PORT of the S3 API. */
  readonly s3Endpoint: string;
  /** http://127.0.0.1:PORT of /metrics and /health. */
  readonly opsEndpoint: string;
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>;
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Resolves with the first log line whose msg matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the signal that ended the process (null if it exited on its own), without sending one. */
  exited(): Promise<NodeJS.Signals | null>;
}

/** Whatever runs clean-up when the caller ends: a node:test TestContext, or the torture runner's own list. */
export interface AfterHooks {
  after(fn: () => unknown): void;
}

export async function startDaemon(
  t: AfterHooks,
  pool: string,
  extraArgs: ReadonlyArray<string> = [],
  options: { env?: Record<string, string | undefined> } = {},
): Promise<RunningDaemon> {
  const child = spawn(
    process.execPath,
    [SHARDPOOL_BIN, 'serve', '--pool', pool, '--listen', '127.0.0.1:0', '--metrics-listen', '127.0.0.1:0', ...extraArgs],
    { env: { ...process.env, SHARDPOOL_POOL: undefined, SHARDPOOL_KILL_AT: undefined, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const logs: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pattern: RegExp; resolve: (line: Record<string, unknown>) => void }> = [];
  let stderr = '';
  let pending = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      for (const waiter of [...waiters]) {
        if (waiter.pattern.test(String(entry['msg']))) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(entry);
        }
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const endedBy = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const waitForLog = (pattern: RegExp, timeoutMs = 20_000) => {
    const found = logs.find((entry) => pattern.test(String(entry['msg'])));
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({
        pattern,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`shardpool serve exited before logging ${pattern}; stderr: ${stderr}`));
      });
    });
  };
  const ready = await waitForLog(/ready/);
  return {
    s3Endpoint: `http://${String(ready['s3'])}`,
    opsEndpoint: `http://${String(ready['metrics'])}`,
    logs,
    child,
    waitForLog,
    stop: async (signal = 'SIGTERM') => {
      child.kill(signal);
      return exited;
    },
    exited: () => endedBy,
  };
}

export async function addUser(pool: string, name = 'tester', options: { admin?: boolean } = {}): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const result = await runCliOk(['user', 'add', '--pool', pool, name, ...(options.admin ? ['--admin'] : []), '--json']);
  return JSON.parse(result.stdout.toString('utf8')) as { accessKeyId: string; secretAccessKey: string };
}
