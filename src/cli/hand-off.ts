// Object writes from many CLI processes at once, without a daemon (docs/architecture.md § Many CLI writers).
//
// The pool lock stays what it is: one process at a time owns the pool's writers — the allocator and journal of every
// block device, the collector, the cleanup of interrupted puts at open. What no longer waits for it is a put or rm
// started while another one runs: the CLI process that holds the lock for an object write (the owner) also listens
// on <pool>/handoff.sock while it runs, and the put and rm commands of other CLI processes run in it, beside its own,
// exactly as they would in `shardpool serve` (the same ServedPool, the same gate). A waiting process connects there
// instead of polling the lock; when the owner is gone, the first waiter to take the lock becomes the next owner.
//
// Nothing is run twice and nothing is lost: a client sends its standard input only after the owner said `started`,
// and an owner that will not run a command (another kind, or it is finishing) closes the connection before that, so
// the client tries again elsewhere with its input untouched. A client whose owner dies mid-command fails with
// DAEMON_UNREACHABLE, as with a daemon; nothing was acknowledged, and the next write-open cleans up what it left.
import * as path from 'node:path';
import { POOL_LOCK_WAIT_DEFAULT_MS } from '../constants.js';
import { directoryChangeOrTimeout, removeFileIfExists } from '../io/durable-files.js';
import type { Pool } from '../pool/pool.js';
import type { PoolLock } from '../pool/pool-lock.js';
import { COMMAND_SOCKET_NAME, HAND_OFF_SOCKET_NAME, SOCKET_PATH_MAX_BYTES } from '../serve/command-protocol.js';
import type { CommandRunner, CommandSocket } from '../serve/command-socket.js';
import { commandName, connectToDaemon, poolOf, runRemotely } from './forward.js';
import { terminal, type ServedPool } from './terminal.js';

/** The commands one CLI process may run for another: object writes, which share an open pool (PoolGate.shared). */
const HAND_OFF_COMMANDS = new Set(['put', 'rm']);
/**
 * A process waiting for the pool looks again for an owner or the lock when the pool directory changes (an owner's
 * socket appears or goes), and at least this often (a lock released by a process that had no socket).
 */
const HAND_OFF_POLL_INTERVAL_MS = 50;
/**
 * An owner that ran commands for others keeps taking them once its own is done while they keep coming: until none
 * has run for HAND_OFF_IDLE_MS, and at most HAND_OFF_LINGER_MAX_MS. An owner nobody handed a command to leaves at once.
 */
const HAND_OFF_IDLE_MS = 50;
const HAND_OFF_LINGER_MAX_MS = 1000;

export type HandOffRoute =
  | { readonly kind: 'ran-elsewhere'; readonly exitCode: number }
  | { readonly kind: 'owner'; readonly lock: PoolLock; readonly poolDirectory: string }
  | { readonly kind: 'local' };

/** True for the commands a hand-off carries. */
export function handsOff(argv: ReadonlyArray<string>): boolean {
  const name = commandName(argv);
  return name !== undefined && HAND_OFF_COMMANDS.has(name) && !argv.some((arg) => arg === '--help' || arg === '-h');
}

/**
 * For put and rm when no daemon serves the pool: runs the command in the pool's owner, or takes the pool lock and
 * becomes the owner; POOL_BUSY when neither happened within --wait (another command holds the pool for maintenance);
 * 'local' when the command line names no pool or a malformed --wait (the command then says what is wrong).
 */
export async function handOff(argv: string[]): Promise<HandOffRoute> {
  const poolDirectory = poolOf(argv);
  const waitMs = waitOf(argv);
  if (poolDirectory === undefined || waitMs === undefined) return { kind: 'local' };
  const deadline = Date.now() + waitMs;
  for (;;) {
    // A daemon may have started meanwhile: it holds the lock, and takes the command on its own socket.
    const daemon = await connectToDaemon(path.join(poolDirectory, COMMAND_SOCKET_NAME)).catch(() => undefined);
    if (daemon) {
      const exitCode = await runRemotely(daemon, argv);
      if (exitCode !== undefined) return { kind: 'ran-elsewhere', exitCode };
    }
    const owner = await connectToDaemon(path.join(poolDirectory, HAND_OFF_SOCKET_NAME)).catch(() => undefined);
    if (owner) {
      const exitCode = await runRemotely(owner, argv, { awaitStart: true });
      if (exitCode !== undefined) return { kind: 'ran-elsewhere', exitCode };
      continue; // declined (the owner is finishing): look again at once
    }
    // Loaded only now: a process that found an owner at once never loads the lock's native code.
    const { PoolLock } = await import('../pool/pool-lock.js');
    let lock: PoolLock | undefined;
    try {
      lock = await PoolLock.tryAcquire(poolDirectory);
    } catch {
      return { kind: 'local' }; // no pool there (or no access): the command itself reports it
    }
    if (lock) return { kind: 'owner', lock, poolDirectory };
    if (Date.now() >= deadline) throw PoolLock.busy(poolDirectory, waitMs);
    await directoryChangeOrTimeout(poolDirectory, [HAND_OFF_SOCKET_NAME, COMMAND_SOCKET_NAME], HAND_OFF_POLL_INTERVAL_MS);
  }
}

/** The owner's side: its open pool, and the socket other processes' commands come in on. */
export class HandOffOwner {
  private constructor(
    private readonly pool: Pool,
    private readonly socket: CommandSocket | undefined,
    private readonly socketPath: string,
    readonly served: ServedPool,
  ) {}

  /** Opens the pool with the lock `route` took and starts taking other processes' put and rm. */
  static async open(
    route: Extract<HandOffRoute, { kind: 'owner' }>,
    options: { readonly directIo: import('../io/block-io.js').DirectIoMode; readonly runCommand: CommandRunner },
  ): Promise<HandOffOwner> {
    const [{ Pool }, { PoolGate }, { listenForCommands }] = await Promise.all([
      import('../pool/pool.js'),
      import('../serve/pool-gate.js'),
      import('../serve/command-socket.js'),
    ]);
    let pool: Pool;
    try {
      pool = await Pool.open(route.poolDirectory, { access: 'write', lockWaitMs: 0, directIo: options.directIo, lock: route.lock });
    } catch (error) {
      await route.lock.unlock();
      throw error;
    }
    for (const notice of pool.notices) terminal().stderr.write(`shardpool: warning: ${notice}\n`);
    const gate = new PoolGate();
    const served: ServedPool = {
      pool,
      shared: (work) => gate.shared(work),
      maintenance: (work) => gate.maintenance(work),
      oneScrubAtATime: (work) => gate.maintenance(work),
    };
    const socketPath = path.join(route.poolDirectory, HAND_OFF_SOCKET_NAME);
    let socket: CommandSocket | undefined;
    // A longer path cannot be bound: such a pool's writers take turns on the lock, as before.
    if (Buffer.byteLength(socketPath) <= SOCKET_PATH_MAX_BYTES) {
      socket = await listenForCommands({
        socketPath,
        served,
        runCommand: options.runCommand,
        log: SILENT_LOG,
        // The client found this socket in its pool's directory: it is this pool, whatever its command line says.
        accept: (hello) => handsOff(hello.argv),
      }).catch(() => undefined); // cannot listen (a read-only pool directory): this process writes alone
    }
    return new HandOffOwner(pool, socket, socketPath, served);
  }

  /** The owner's own command runs beside the ones it takes for others. */
  runOwn<T>(work: (pool: Pool) => Promise<T>): Promise<T> {
    return this.served.shared(() => work(this.pool));
  }

  /**
   * After the owner's own command: keeps taking others' while they keep coming (see HAND_OFF_IDLE_MS), then stops
   * taking any, lets the running ones end, removes the socket (still holding the lock, so it is never another
   * owner's) and closes the pool, which releases the lock.
   */
  async close(): Promise<void> {
    if (this.socket) {
      const socket = this.socket;
      if (socket.started > 0) {
        const deadline = Date.now() + HAND_OFF_LINGER_MAX_MS;
        for (;;) {
          await socket.idle();
          const before = socket.started;
          await new Promise((resolve) => setTimeout(resolve, Math.min(HAND_OFF_IDLE_MS, Math.max(0, deadline - Date.now()))));
          if (Date.now() >= deadline || (socket.started === before && socket.running === 0)) break;
        }
      }
      await socket.finish();
      await removeFileIfExists(this.socketPath).catch(() => false);
    }
    await this.pool.close();
  }
}

const SILENT_LOG = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** --wait as given before or after the command name (default 30 s); undefined when malformed (commander says so). */
function waitOf(argv: ReadonlyArray<string>): number | undefined {
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    if (arg === '--') break;
    const text = arg === '--wait' ? argv[index + 1] : arg.startsWith('--wait=') ? arg.slice('--wait='.length) : undefined;
    if (text === undefined) continue;
    const seconds = Number(text);
    return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
  }
  return POOL_LOCK_WAIT_DEFAULT_MS;
}
