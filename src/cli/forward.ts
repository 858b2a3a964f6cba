// The client end of the daemon's command socket: when `shardpool serve` holds the pool named on the command line,
// the command is sent to it and run there (see serve/command-protocol.ts) instead of failing with POOL_BUSY.
import type { Socket } from 'node:net';
import * as path from 'node:path';
import { ShardpoolError } from '../errors.js';
import { pathKind } from '../io/durable-files.js';
import { COMMAND_SOCKET_NAME, FRAME, FrameReader, encodeFrame, type CommandHello } from '../serve/command-protocol.js';

/**
 * Commands that never go to the daemon: they start it, create a pool, only touch the catalog's key table or the SSE
 * key file (which the daemon reads afresh), or (catalog dump) read a snapshot through a connection of their own;
 * catalog load refuses a served pool itself.
 */
const LOCAL_COMMANDS = new Set(['serve', 'init', 'user', 'catalog', 'sse', 'help']);
/** Global options that take a value (their value is not the command name). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--wait', '--direct-io']);
const STDIN_PIECE_BYTES = 1024 * 1024;

/** Runs the command in the daemon serving its pool and returns the exit code, or undefined when no daemon serves it. */
export async function forwardToDaemon(argv: string[]): Promise<number | undefined> {
  const command = commandName(argv);
  if (command === undefined || LOCAL_COMMANDS.has(command)) return undefined;
  if (argv.some((arg) => arg === '--help' || arg === '-h' || arg === '--version' || arg === '-V')) return undefined;
  const poolDirectory = poolOf(argv);
  if (poolDirectory === undefined) return undefined;
  const socket = await connectToDaemon(path.join(poolDirectory, COMMAND_SOCKET_NAME));
  if (!socket) return undefined;
  const exitCode = await runRemotely(socket, argv);
  if (exitCode === undefined) throw new Error('a daemon socket never declines'); // unreachable: no awaitStart
  return exitCode;
}

/** True while `shardpool serve` holds the pool in `poolDirectory` (its command socket answers, whoever owns it). */
export async function poolIsServed(poolDirectory: string): Promise<boolean> {
  let socket: Socket | undefined;
  try {
    socket = await connectToDaemon(path.join(poolDirectory, COMMAND_SOCKET_NAME));
  } catch {
    return true;
  }
  socket?.destroy();
  return socket !== undefined;
}

/** The command an argument list names (its first word that is no global option or its value). */
export function commandName(argv: ReadonlyArray<string>): string | undefined {
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) {
      index += 1;
      continue;
    }
    if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** The pool directory an argument list names (--pool, else SHARDPOOL_POOL), resolved. */
export function poolOf(argv: ReadonlyArray<string>): string | undefined {
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    if (arg === '--') break;
    if (arg === '--pool' && index + 1 < argv.length) return path.resolve(argv[index + 1] as string);
    if (arg.startsWith('--pool=')) return path.resolve(arg.slice('--pool='.length));
  }
  const fromEnvironment = process.env['SHARDPOOL_POOL'];
  return fromEnvironment ? path.resolve(fromEnvironment) : undefined;
}

export async function connectToDaemon(socketPath: string): Promise<Socket | undefined> {
  // No socket file, no daemon: most commands run where no daemon is, and need no networking code at all.
  if ((await pathKind(socketPath).catch(() => 'other')) === 'missing') return undefined;
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // No socket, or one left by a daemon that is gone: the pool is not served; run the command here.
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK') resolve(undefined);
      else {
        reject(
          new ShardpoolError(
            'DAEMON_UNREACHABLE',
            `the pool is served by shardpool serve, but its command socket ${socketPath} cannot be used (${error.code ?? error.message}); ` +
              'run the command as the user the daemon runs as',
            { path: socketPath },
          ),
        );
      }
    });
  });
}

/**
 * Runs `argv` over a connected command socket and returns its exit code. With `awaitStart` (a hand-off socket),
 * standard input is sent only once the server said `started`, and a connection closed before that returns undefined:
 * the command ran nowhere and its input is untouched, so it may be taken elsewhere.
 */
export async function runRemotely(socket: Socket, argv: string[], options: { awaitStart: boolean } = { awaitStart: false }): Promise<number | undefined> {
  const hello: CommandHello = {
    argv,
    cwd: process.cwd(),
    stdinIsTty: process.stdin.isTTY === true,
    stdoutIsTty: process.stdout.isTTY === true,
    stderrIsTty: process.stderr.isTTY === true,
    columns: process.stderr.columns,
  };
  socket.write(encodeFrame(FRAME.hello, JSON.stringify(hello)));
  const reader = new FrameReader();
  const onInterrupt = () => {
    if (!socket.destroyed) socket.write(encodeFrame(FRAME.interrupt));
    // A second Ctrl-C leaves at once; the daemon sees the socket close and stops the command where it can.
    process.once('SIGINT', () => process.exit(130));
  };
  process.once('SIGINT', onInterrupt);
  // Standard input is sent only when it is not a terminal (a pipe or a file), or when the command asks to prompt.
  const sendsInput = !process.stdin.isTTY || argv.includes('add-disk') || argv.includes('replace-disk');
  let inputStarted = false;
  const sendInput = () => {
    if (inputStarted) return;
    inputStarted = true;
    if (!sendsInput) {
      socket.write(encodeFrame(FRAME.stdinEnd));
      return;
    }
    process.stdin.on('data', (chunk: Buffer) => {
      for (let offset = 0; offset < chunk.length; offset += STDIN_PIECE_BYTES) {
        if (!socket.write(encodeFrame(FRAME.stdin, chunk.subarray(offset, offset + STDIN_PIECE_BYTES)))) {
          process.stdin.pause();
          socket.once('drain', () => process.stdin.resume());
        }
      }
    });
    process.stdin.once('end', () => socket.write(encodeFrame(FRAME.stdinEnd)));
  };
  if (!options.awaitStart) sendInput();
  let started = false;
  try {
    return await new Promise<number | undefined>((resolve, reject) => {
      let exitCode: number | undefined;
      socket.on('data', (data: Buffer) => {
        for (const frame of reader.push(data)) {
          if (frame.type === FRAME.started) {
            started = true;
            sendInput();
          } else if (frame.type === FRAME.stdout || frame.type === FRAME.stderr) {
            const target = frame.type === FRAME.stdout ? process.stdout : process.stderr;
            if (!target.write(frame.payload)) {
              socket.pause();
              target.once('drain', () => socket.resume());
            }
          } else if (frame.type === FRAME.exit) {
            exitCode = (JSON.parse(frame.payload.toString('utf8')) as { exitCode: number }).exitCode;
          }
        }
      });
      socket.once('close', () => {
        if (exitCode !== undefined) resolve(exitCode);
        else if (options.awaitStart && !started) resolve(undefined); // declined: nothing ran
        else reject(new ShardpoolError('DAEMON_UNREACHABLE', 'the daemon closed the command socket before the command finished (see its log)'));
      });
      socket.once('error', () => undefined);
    });
  } finally {
    process.off('SIGINT', onInterrupt);
    if (sendsInput && inputStarted) {
      process.stdin.pause();
      process.stdin.destroy();
    }
  }
}
