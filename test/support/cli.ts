// Runs the real command line (bin/shardpool) in a child process, as users and external scripts do.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SHARDPOOL_BIN = fileURLToPath(new URL('../../../bin/shardpool', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export interface CliOptions {
  readonly env?: Record<string, string | undefined>;
  /** Bytes for standard input; stdin is closed empty when absent. */
  readonly input?: Buffer | string;
  /** Working directory of the command (relative paths on its command line resolve against it). */
  readonly cwd?: string;
}

export function runCli(args: ReadonlyArray<string>, options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SHARDPOOL_BIN, ...args], {
      env: { ...process.env, SHARDPOOL_POOL: undefined, SHARDPOOL_KILL_AT: undefined, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: options.cwd,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

/** Runs the CLI and fails the test with its stderr unless it exits 0. */
export async function runCliOk(args: ReadonlyArray<string>, options: CliOptions = {}): Promise<CliResult> {
  const result = await runCli(args, options);
  if (result.code !== 0) {
    throw new Error(`shardpool ${args.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return result;
}

