// Where a command's input and output go. Normally the process's own streams; inside the daemon a command forwarded
// from a `shardpool` process runs against the daemon's open pool, and its streams, working directory and exit code
// belong to that client (AsyncLocalStorage keeps concurrent forwarded commands apart).
import { AsyncLocalStorage } from 'node:async_hooks';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Pool } from '../pool/pool.js';

export type TtyReadable = Readable & { isTTY?: boolean };
export type TtyWritable = Writable & { isTTY?: boolean; columns?: number };

/** The daemon's open pool, handed to commands it runs for clients. */
export interface ServedPool {
  readonly pool: Pool;
  /** Runs an object write beside others (put, rm). */
  shared<T>(work: () => Promise<T>): Promise<T>;
  /** Runs maintenance (anything but an object write) after the maintenance before it, beside object writes. */
  maintenance<T>(work: () => Promise<T>): Promise<T>;
  /** Scrubs run one at a time (they share a resumable position file). */
  oneScrubAtATime<T>(work: () => Promise<T>): Promise<T>;
}

export interface Terminal {
  readonly stdin: TtyReadable;
  readonly stdout: TtyWritable;
  readonly stderr: TtyWritable;
  readonly cwd: string;
  exitCode: number | undefined;
  /** Calls `handler` on Ctrl-C / SIGTERM; a second one ends a local process at once. Returns the unsubscribe. */
  onInterrupt(handler: () => void): () => void;
  /** Set when the command runs inside the daemon. */
  readonly served: ServedPool | undefined;
}

const processTerminal: Terminal = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  get cwd() {
    return process.cwd();
  },
  get exitCode() {
    return process.exitCode === undefined ? undefined : Number(process.exitCode);
  },
  set exitCode(code: number | undefined) {
    process.exitCode = code;
  },
  onInterrupt(handler) {
    let interrupted = false;
    const listener = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      handler();
    };
    process.on('SIGINT', listener);
    process.on('SIGTERM', listener);
    return () => {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    };
  },
  served: undefined,
};

const current = new AsyncLocalStorage<Terminal>();

export function terminal(): Terminal {
  return current.getStore() ?? processTerminal;
}

export function runInTerminal<T>(target: Terminal, work: () => Promise<T>): Promise<T> {
  return current.run(target, work);
}

/** A path from the command line, relative to the working directory of whoever typed it. */
export function resolveUserPath(file: string): string {
  return path.resolve(terminal().cwd, file);
}
