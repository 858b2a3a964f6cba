// What every command shares: finding the pool, opening it with the right access, and printing results.
import { Option, type Command } from 'commander';
import { POOL_LOCK_WAIT_DEFAULT_MS } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { DIRECT_IO_MODES, type DirectIoMode } from '../io/direct-io-mode.js';
import type { Pool, PoolAccess } from '../pool/pool.js';
import type { CommandRunner } from '../serve/command-socket.js';
import type { HandOffOwner, HandOffRoute } from './hand-off.js';
import { resolveUserPath, terminal } from './terminal.js';

export interface CommonOptions {
  readonly pool?: string;
  readonly json?: boolean;
  readonly progress?: boolean;
  readonly wait?: string;
  readonly debug?: boolean;
  readonly directIo?: string;
}

export function poolOption(): Option {
  return new Option('--pool <dir>', 'the pool directory').env('SHARDPOOL_POOL');
}

export function jsonOption(): Option {
  return new Option('--json', 'print the result as JSON on stdout');
}

/** All options of a command, including the global ones given before its name. */
export function optionsOf(command: Command): CommonOptions & Record<string, unknown> {
  return command.optsWithGlobals();
}

export function poolDirectory(options: CommonOptions): string {
  if (!options.pool) {
    throw new ShardpoolError(
      'POOL_NOT_SPECIFIED',
      'no pool given: pass --pool DIR or set SHARDPOOL_POOL (create one with: shardpool init --pool DIR)',
    );
  }
  return resolveUserPath(options.pool);
}

/** A disk named on the command line: a catalog id or uuid as given, a path resolved against the caller's directory. */
export function diskReference(value: unknown): string {
  const text = String(value);
  return /^\d+$/.test(text) || /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(text) ? text : resolveUserPath(text);
}

/** The optional --disk of a command: undefined when not given. */
export function optionalDiskReference(value: unknown): string | undefined {
  return value === undefined ? undefined : diskReference(value);
}

export function lockWaitMs(options: CommonOptions): number {
  if (options.wait === undefined) return POOL_LOCK_WAIT_DEFAULT_MS;
  const seconds = Number(options.wait);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new ShardpoolError('USAGE_INVALID', `--wait takes a number of seconds, not "${options.wait}"`);
  }
  return seconds * 1000;
}

/** The global --direct-io flag (or SHARDPOOL_DIRECT_IO): how block devices are opened. */
export function directIoMode(options: CommonOptions): DirectIoMode {
  const mode = options.directIo ?? 'auto';
  if (!(DIRECT_IO_MODES as ReadonlyArray<string>).includes(mode)) {
    throw new ShardpoolError('USAGE_INVALID', `--direct-io takes auto, always or never, not "${mode}"`);
  }
  return mode as DirectIoMode;
}

/**
 * Opens the pool, runs `action`, and always closes it (releasing the lock) afterwards. Inside the daemon the command
 * uses the daemon's open pool instead: reads run at once, object writes (`shared`) beside other writes, and every
 * other change as maintenance (one at a time, beside the writes). A process that became the hand-off owner runs its
 * object write in the pool it shares with other CLI processes; main closes that one after the command.
 */
export async function withPool<T>(
  options: CommonOptions,
  access: PoolAccess,
  action: (pool: Pool) => Promise<T>,
  writeConcurrency: 'shared' | 'maintenance' = 'maintenance',
): Promise<T> {
  const served = terminal().served;
  if (served) {
    if (access === 'read') return action(served.pool);
    return writeConcurrency === 'shared' ? served.shared(() => action(served.pool)) : served.maintenance(() => action(served.pool));
  }
  if (handOff && access === 'write' && writeConcurrency === 'shared') {
    const { HandOffOwner } = await import('./hand-off.js');
    handOff.owner ??= await HandOffOwner.open(handOff.route, { directIo: directIoMode(options), runCommand: handOff.runCommand });
    return handOff.owner.runOwn(action);
  }
  const { Pool } = await import('../pool/pool.js');
  const pool = await Pool.open(poolDirectory(options), {
    access,
    lockWaitMs: lockWaitMs(options),
    directIo: directIoMode(options),
  });
  for (const notice of pool.notices) warn(notice);
  try {
    return await action(pool);
  } finally {
    await pool.close();
  }
}

/** This process holds the pool lock for its object write and takes others' (cli/hand-off.ts), once it is opened. */
let handOff: { route: Extract<HandOffRoute, { kind: 'owner' }>; runCommand: CommandRunner; owner?: HandOffOwner } | undefined;

/** Called by main when the hand-off made this process the owner: withPool then opens the pool with that lock. */
export function holdHandOff(route: Extract<HandOffRoute, { kind: 'owner' }>, runCommand: CommandRunner): void {
  handOff = { route, runCommand };
}

/** After the command: the owner finishes what it took for others and lets the pool (and its lock) go. */
export async function endHandOff(): Promise<void> {
  const ending = handOff;
  handOff = undefined;
  if (!ending) return;
  if (ending.owner) await ending.owner.close();
  else await ending.route.lock.unlock(); // the command ended before opening the pool (a usage error, a missing file)
}

/**
 * withPool for a command that reads the catalog alone (ls): not one disk is opened (in the daemon, its open pool
 * serves as it is).
 */
export async function withPoolCatalog<T>(options: CommonOptions, action: (pool: Pool) => Promise<T>): Promise<T> {
  const served = terminal().served;
  if (served) return action(served.pool);
  const { Pool } = await import('../pool/pool.js');
  const pool = await Pool.open(poolDirectory(options), { access: 'read', lockWaitMs: 0, disks: 'none' });
  try {
    return await action(pool);
  } finally {
    await pool.close();
  }
}

export function printJson(value: unknown): void {
  terminal().stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printLine(text: string): void {
  terminal().stdout.write(`${text}\n`);
}

export function warn(text: string): void {
  terminal().stderr.write(`shardpool: warning: ${text}\n`);
}

/** Progress bars are drawn only for people: not with --json, --no-progress, or when stderr is not a terminal. */
export function progressEnabled(options: CommonOptions): boolean {
  return options.json !== true && options.progress !== false;
}
