// The shardpool command line: one file per command group registers its commands; this file wires them together and
// turns every failure into one clear line on stderr and a stable exit code (never a stack trace unless --debug).
import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { AssertionFailure } from '../assert.js';
import { ShardpoolError } from '../errors.js';
import { commandName, forwardToDaemon } from './forward.js';
import { handsOff } from './hand-off.js';

import { EXIT_ERROR, EXIT_INTERNAL_ERROR, EXIT_OK } from './exit-codes.js';
import { terminal } from './terminal.js';

/**
 * Start-up is part of every command's latency, so each command group's module (and what it pulls in: the pool, the
 * disks, the codecs, the daemon) is loaded only when one of its commands runs. Help, and a name that is no command,
 * load them all. A test checks this table against what each group registers.
 */
export const COMMAND_GROUPS: ReadonlyArray<{ readonly commands: ReadonlyArray<string>; readonly register: (program: Command) => Promise<void> }> = [
  { commands: ['init', 'config', 'status'], register: async (program) => (await import('./pool-commands.js')).registerPoolCommands(program) },
  { commands: ['add-disk', 'list-disks', 'fail-disk', 'remove-disk', 'replace-disk', 'disk'], register: async (program) => (await import('./disk-commands.js')).registerDiskCommands(program) },
  { commands: ['put', 'get', 'ls', 'stat', 'rm'], register: async (program) => (await import('./object-commands.js')).registerObjectCommands(program) },
  { commands: ['scrub', 'rebuild', 'trim', 'defrag', 'recover'], register: async (program) => (await import('./maintain-commands.js')).registerMaintainCommands(program) },
  { commands: ['serve', 'user'], register: async (program) => (await import('./serve-commands.js')).registerServeCommands(program, main) },
  { commands: ['catalog'], register: async (program) => (await import('./catalog-commands.js')).registerCatalogCommands(program) },
  { commands: ['import'], register: async (program) => (await import('./import-commands.js')).registerImportCommands(program) },
  { commands: ['sse'], register: async (program) => (await import('./sse-commands.js')).registerSseCommands(program) },
];

/** commander, once a command line is parsed (`--version` alone, or a forwarded command, needs none of it). */
let commander: typeof import('commander') | undefined;

/** The program with the commands `argv` names registered (none for --version; all when it names none, or no known one). */
export async function buildProgram(argv: ReadonlyArray<string> = []): Promise<Command> {
  commander ??= await import('commander');
  const { Command, Option } = commander;
  const program = new Command('shardpool')
    .description(
      'A storage pool: objects are cut into extents, each stored as replicated or Reed–Solomon erasure-coded\n' +
        'fragments on distinct disks, verified on every read and rebuilt from redundancy when a disk fails.',
    )
    .version(packageVersion())
    .option('--debug', 'print stack traces of errors')
    .option('--wait <seconds>', 'how long a changing command waits for another process holding the pool lock', '30')
    .addOption(
      new Option('--direct-io <mode>', 'how block devices are opened: auto (O_DIRECT, O_SYNC if refused), always, never')
        .env('SHARDPOOL_DIRECT_IO')
        .default('auto'),
    )
    .configureOutput({ outputError: () => undefined })
    .exitOverride();
  program.addHelpText(
    'after',
    `
Every command takes --pool DIR (or the SHARDPOOL_POOL environment variable).
Example, a pool on six directories:
  $ export SHARDPOOL_POOL=/srv/pool
  $ shardpool init --policy ec:4+2
  $ for i in 1 2 3 4 5 6; do shardpool add-disk --disk /mnt/disk$i; done
  $ shardpool put photos/cat.jpg ./cat.jpg
  $ shardpool get photos/cat.jpg > cat-copy.jpg

Exit codes: 0 success, 1 problems found (recover), 2 error (usage or operation), 3 internal error (a bug: please report it).`,
  );
  const name = commandName(argv);
  const group = name === undefined ? undefined : COMMAND_GROUPS.find((candidate) => candidate.commands.includes(name));
  const versionOnly = name === undefined && argv.some((arg) => arg === '--version' || arg === '-V');
  for (const each of group ? [group] : versionOnly ? [] : COMMAND_GROUPS) await each.register(program);
  const quiet = (command: Command): void => {
    for (const sub of command.commands) {
      sub.exitOverride().configureOutput({ outputError: () => undefined });
      quiet(sub);
    }
  };
  quiet(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  let owner = false;
  let exitCode: number;
  try {
    // While `shardpool serve` holds the pool, the daemon runs the command (but never forwards what it runs itself).
    // Tried before anything else is loaded: a forwarded command needs nothing here but the socket.
    if (terminal().served === undefined) {
      const forwardedExitCode = await forwardToDaemon(argv);
      if (forwardedExitCode !== undefined) return forwardedExitCode;
      // Without a daemon, an object write runs in the process that holds the pool for one, or becomes that process.
      if (handsOff(argv)) {
        const { handOff } = await import('./hand-off.js');
        const route = await handOff(argv);
        if (route.kind === 'ran-elsewhere') return route.exitCode;
        if (route.kind === 'owner') {
          (await import('./context.js')).holdHandOff(route, main);
          owner = true;
        }
      }
    }
    if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
      terminal().stdout.write(`${packageVersion()}\n`); // what commander prints, without loading it
      return EXIT_OK;
    }
    const program = await buildProgram(argv);
    await program.parseAsync(argv, { from: 'user' });
    exitCode = terminal().exitCode ?? EXIT_OK;
  } catch (error) {
    exitCode = reportError(error, debug);
  }
  if (owner) {
    // The owner's own output is out; it now finishes the commands it took for others and lets the pool go.
    try {
      await (await import('./context.js')).endHandOff();
    } catch (error) {
      const closeExitCode = reportError(error, debug);
      if (exitCode === EXIT_OK) exitCode = closeExitCode;
    }
  }
  return exitCode;
}

function reportError(error: unknown, debug: boolean): number {
  if (commander && error instanceof commander.CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
      return EXIT_OK;
    }
    terminal().stderr.write(`shardpool: error USAGE_INVALID: ${error.message.replace(/^error: /, '')}\n`);
    terminal().stderr.write('(run with --help for usage)\n');
    return EXIT_ERROR;
  }
  if (error instanceof ShardpoolError) {
    terminal().stderr.write(`shardpool: error ${error.code}: ${error.message}\n`);
    if (debug) terminal().stderr.write(`${error.stack ?? ''}\n`);
    return EXIT_ERROR;
  }
  const what = error instanceof AssertionFailure ? 'internal error (a bug in shardpool)' : 'internal error';
  terminal().stderr.write(`shardpool: ${what}: ${error instanceof Error ? error.message : String(error)}\n`);
  if (debug) terminal().stderr.write(`${error instanceof Error ? (error.stack ?? '') : ''}\n`);
  else terminal().stderr.write('(run with --debug for details, and please report it)\n');
  return EXIT_INTERNAL_ERROR;
}

function packageVersion(): string {
  // dist/src/cli/main.js → the package root holds package.json.
  const manifest = createRequire(import.meta.url)('../../../package.json') as { version: string };
  return manifest.version;
}
