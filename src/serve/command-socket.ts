// The daemon's end of the command socket (see command-protocol.ts): runs each client's command line in this process,
// against the daemon's open pool, with the client's streams, working directory and exit code. The socket file is
// private to the daemon's user (mode 0600): a client can do no more than that user could with the pool directly.
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { runInTerminal, type ServedPool, type Terminal, type TtyReadable, type TtyWritable } from '../cli/terminal.js';
import { FRAME, FrameReader, encodeFrame, type CommandHello } from './command-protocol.js';

export type CommandRunner = (argv: string[]) => Promise<number>;

/** What the socket logs (the daemon's pino logger; a hand-off logs nothing). */
export interface CommandLog {
  info(fields: object, message: string): void;
  warn(fieldsOrMessage: object | string, message?: string): void;
  error(fields: object, message: string): void;
}

/** The listening command socket. */
export interface CommandSocket {
  /**
   * Stops accepting commands, asks the running ones to stop where they can (as Ctrl-C would: a scrub saves its
   * position), waits up to timeoutMs for them, then cuts the connections that are left.
   */
  close(timeoutMs: number): Promise<void>;
  /** Stops accepting commands (a command whose hello comes later is declined) and waits for the running ones to end. */
  finish(): Promise<void>;
  /** Commands started so far, and running now. */
  readonly started: number;
  readonly running: number;
  /** Resolves once no command runs (at once when none does). */
  idle(): Promise<void>;
}

export async function listenForCommands(options: {
  socketPath: string;
  served: ServedPool;
  runCommand: CommandRunner;
  log: CommandLog;
  /** Whether to run this command; one refused is declined: its connection closes before `started`. Default: all. */
  accept?: (hello: CommandHello) => boolean;
}): Promise<CommandSocket> {
  await unlink(options.socketPath).catch(() => undefined);
  const connections = new Map<Socket, () => void>();
  const counts = { started: 0, running: 0 };
  const idleWaiters: Array<() => void> = [];
  let accepting = true;
  const admit = (hello: CommandHello): boolean => {
    if (!accepting || (options.accept !== undefined && !options.accept(hello))) return false;
    counts.started += 1;
    counts.running += 1;
    return true;
  };
  const ended = () => {
    counts.running -= 1;
    if (counts.running === 0) for (const waiter of idleWaiters.splice(0)) waiter();
  };
  const idle = () => (counts.running === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve)));
  const server: Server = createServer((socket) => {
    const interrupt = serveConnection(socket, { ...options, admit, ended });
    connections.set(socket, interrupt);
    socket.once('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(options.socketPath, 0o600);
  return {
    get started() {
      return counts.started;
    },
    get running() {
      return counts.running;
    },
    idle,
    finish: async () => {
      accepting = false;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await idle();
    },
    close: async (timeoutMs) => {
      accepting = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const interrupt of connections.values()) interrupt();
      const timer = setTimeout(() => {
        for (const socket of connections.keys()) socket.destroy();
      }, timeoutMs);
      await closed;
      clearTimeout(timer);
    },
  };
}

interface ConnectionOptions {
  served: ServedPool;
  runCommand: CommandRunner;
  log: CommandLog;
  /** Counts the command in, or declines it (false). */
  admit: (hello: CommandHello) => boolean;
  /** Called once a command admitted has ended. */
  ended: () => void;
}

/** Serves one client; returns what interrupts its command. */
function serveConnection(socket: Socket, options: ConnectionOptions): () => void {
  const reader = new FrameReader();
  const interruptHandlers = new Set<() => void>();
  let stdin: Readable | undefined;
  let started = false;
  const interrupt = () => {
    for (const handler of interruptHandlers) handler();
  };
  socket.on('data', (data: Buffer) => {
    let frames;
    try {
      frames = reader.push(data);
    } catch (error) {
      options.log.warn({ err: error }, 'bad frame on the command socket');
      socket.destroy();
      return;
    }
    for (const frame of frames) {
      if (!started) {
        if (frame.type !== FRAME.hello) {
          socket.destroy();
          return;
        }
        started = true;
        const hello = parseHello(frame.payload);
        if (!hello) {
          options.log.warn('a malformed command on the command socket was refused');
          socket.destroy();
          return;
        }
        if (!options.admit(hello)) {
          socket.destroy(); // declined: closed before `started`, so the client knows nothing ran
          return;
        }
        stdin = new Readable({ read: () => socket.resume() });
        void runCommand(socket, hello, stdin, interruptHandlers, options).finally(options.ended);
        continue;
      }
      if (frame.type === FRAME.stdin && stdin) {
        if (!stdin.push(Buffer.from(frame.payload))) socket.pause();
      } else if (frame.type === FRAME.stdinEnd) stdin?.push(null);
      else if (frame.type === FRAME.interrupt) interrupt();
    }
  });
  socket.on('close', () => {
    // The client went away (killed, or Ctrl-C twice): stop what can be stopped, end its input.
    interrupt();
    stdin?.push(null);
  });
  socket.on('error', () => undefined);
  return interrupt;
}

async function runCommand(
  socket: Socket,
  hello: CommandHello,
  stdin: Readable,
  interruptHandlers: Set<() => void>,
  options: ConnectionOptions,
): Promise<void> {
  socket.write(encodeFrame(FRAME.started));
  const output = (type: number, isTty: boolean, columns: number | undefined): TtyWritable => {
    const stream: TtyWritable = new Writable({
      write(chunk: Buffer, _encoding, done) {
        if (socket.destroyed) {
          done(Object.assign(new Error('the client closed the command socket'), { code: 'EPIPE' }));
          return;
        }
        if (socket.write(encodeFrame(type, chunk))) done();
        else socket.once('drain', () => done());
      },
    });
    stream.isTTY = isTty;
    if (columns !== undefined) stream.columns = columns;
    return stream;
  };
  const input: TtyReadable = stdin;
  input.isTTY = hello.stdinIsTty;
  let exitCode: number | undefined;
  const terminal: Terminal = {
    stdin: input,
    stdout: output(FRAME.stdout, hello.stdoutIsTty, hello.columns),
    stderr: output(FRAME.stderr, hello.stderrIsTty, hello.columns),
    cwd: hello.cwd,
    get exitCode() {
      return exitCode;
    },
    set exitCode(code: number | undefined) {
      exitCode = code;
    },
    onInterrupt(handler) {
      interruptHandlers.add(handler);
      return () => interruptHandlers.delete(handler);
    },
    served: options.served,
  };
  options.log.info({ argv: hello.argv, cwd: hello.cwd }, 'running a forwarded command');
  let code: number;
  try {
    code = await runInTerminal(terminal, () => options.runCommand(hello.argv));
  } catch (error) {
    options.log.error({ err: error }, 'a forwarded command failed unexpectedly');
    code = 3;
  }
  await Promise.all([finish(terminal.stdout), finish(terminal.stderr)]);
  if (!socket.destroyed) socket.end(encodeFrame(FRAME.exit, JSON.stringify({ exitCode: code })));
}

/** The client's first frame, or undefined when it is not a well-formed CommandHello. */
function parseHello(payload: Buffer): CommandHello | undefined {
  try {
    const hello = JSON.parse(payload.toString('utf8')) as Partial<CommandHello>;
    const valid =
      Array.isArray(hello.argv) &&
      hello.argv.every((arg) => typeof arg === 'string') &&
      typeof hello.cwd === 'string' &&
      typeof hello.stdinIsTty === 'boolean' &&
      typeof hello.stdoutIsTty === 'boolean' &&
      typeof hello.stderrIsTty === 'boolean';
    return valid ? (hello as CommandHello) : undefined;
  } catch {
    return undefined;
  }
}

function finish(stream: Writable): Promise<void> {
  return new Promise((resolve) => stream.end(() => resolve()));
}
