// A throw-away PostgreSQL 15 cluster: initdb and pg_ctl from Debian's postgresql-15, run as the `postgres` OS user
// when the process runs as root (PostgreSQL refuses root), in a temp directory of its own, listening on a unix socket
// in that directory only (listen_addresses=''), so parallel processes never meet. No node:test here: the tests use it
// through support/postgres.ts (which adds their hooks), the bench (bench/catalog-engines.ts) directly. The cluster is
// stopped — by the pid in its postmaster.pid — and its directory removed by stop(), or, failing that, when the
// process exits. The tests' cluster runs with fsync=off (throw-away data, speed); `durable: true` keeps PostgreSQL's
// defaults (fsync=on, synchronous_commit=on, full_page_writes=on) and syncs initdb's files, for figures that count.
// The network lab (support/net-lab.ts) runs one inside a network namespace (`commandPrefix`), listening on that
// namespace's address as well (`listenAddress`, trusted for `trustedNetwork`); the socket stays for the test process.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
/** The port names the socket file (.s.PGSQL.PORT) in the cluster's own directory: any fixed one serves. */
const PORT = 5432;
const START_TIMEOUT_S = 60;

export interface PostgresClusterOptions {
  /** fsync=on and synchronous_commit=on (PostgreSQL's defaults) instead of the tests' fsync=off. */
  readonly durable?: boolean;
  /** Where the cluster's directory is made (default os.tmpdir()); the postgres user must be able to enter it. */
  readonly parentDirectory?: string;
  /** Database names are `${prefix}_${pid}_${n}` (default "test"). */
  readonly databasePrefix?: string;
  /** Prepended to every command (initdb, pg_ctl), e.g. `ip netns exec NS` to run the server in a namespace. */
  readonly commandPrefix?: ReadonlyArray<string>;
  /** Also listen on this IPv4 address, port 5432 (default: the unix socket only). */
  readonly listenAddress?: string;
  /** A CIDR whose TCP clients are trusted without a password (a pg_hba.conf line); needs listenAddress. */
  readonly trustedNetwork?: string;
}

export class PostgresCluster {
  private stopped = false;
  private databases = 0;

  private constructor(
    /** Owned by the cluster's user; holds data/, the socket and the log. */
    readonly directory: string,
    private readonly asUser: ReadonlyArray<string>,
    readonly durable: boolean,
    private readonly databasePrefix: string,
    private readonly listenAddress: string,
  ) {}

  static async start(options: PostgresClusterOptions = {}): Promise<PostgresCluster> {
    if (!fs.existsSync(path.join(POSTGRES_BIN, 'initdb'))) throw new Error(`PostgreSQL 15 is not installed (no ${POSTGRES_BIN}/initdb; apt-get install postgresql)`);
    const directory = fs.mkdtempSync(path.join(options.parentDirectory ?? os.tmpdir(), 'shardpool-pg-'));
    const root = process.getuid?.() === 0;
    const asUser = [...(options.commandPrefix ?? []), ...(root ? ['runuser', '-u', 'postgres', '--'] : [])];
    const durable = options.durable ?? false;
    if (options.trustedNetwork !== undefined && options.listenAddress === undefined) throw new Error('trustedNetwork needs a listenAddress');
    const cluster = new PostgresCluster(directory, asUser, durable, options.databasePrefix ?? 'test', options.listenAddress ?? '');
    registerExitCleanup(cluster);
    try {
      if (root) {
        const { uid, gid } = postgresUser();
        fs.chownSync(directory, uid, gid);
      }
      await cluster.command(path.join(POSTGRES_BIN, 'initdb'), ['-D', cluster.dataDirectory, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', ...(durable ? [] : ['--no-sync'])]);
      if (options.trustedNetwork !== undefined) {
        fs.appendFileSync(path.join(cluster.dataDirectory, 'pg_hba.conf'), `host all all ${options.trustedNetwork} trust\n`);
      }
      await cluster.startServer();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get dataDirectory(): string {
    return path.join(this.directory, 'data');
  }

  /** The address of `database` on this cluster (no password: the cluster trusts its socket). */
  url(database: string): string {
    return `postgresql://postgres@/${database}?host=${encodeURIComponent(this.directory)}&port=${PORT}`;
  }

  /** The TCP address of `database` on listenAddress (the cluster must have been started with one). */
  networkUrl(database: string): string {
    if (this.listenAddress === '') throw new Error('this cluster listens on its unix socket only (no listenAddress)');
    return `postgresql://postgres@${this.listenAddress}:${PORT}/${database}`;
  }

  /** A new, empty database; returns its address. */
  async createDatabase(): Promise<string> {
    return this.url(await this.addDatabase());
  }

  /** A new, empty database (made through the socket); returns its name. */
  async addDatabase(): Promise<string> {
    this.databases += 1;
    const name = `${this.databasePrefix}_${process.pid}_${this.databases}`;
    const client = new pg.Client({ connectionString: this.url('postgres') });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
    } finally {
      await client.end();
    }
    return name;
  }

  /** pg_ctl start, waiting until the server accepts connections. */
  async startServer(): Promise<void> {
    const options = `-c listen_addresses='${this.listenAddress}' -c unix_socket_directories='${this.directory}' -c port=${PORT} ${this.durable ? '-c fsync=on -c synchronous_commit=on -c full_page_writes=on' : '-c fsync=off'} -c max_connections=100`;
    await this.command(path.join(POSTGRES_BIN, 'pg_ctl'), ['-D', this.dataDirectory, '-l', path.join(this.directory, 'log'), '-o', options, '-w', '-t', String(START_TIMEOUT_S), 'start']);
  }

  /** pg_ctl stop (fast: connections are cut, as when a server is restarted). */
  async stopServer(): Promise<void> {
    await this.command(path.join(POSTGRES_BIN, 'pg_ctl'), ['-D', this.dataDirectory, '-m', 'fast', '-w', 'stop']);
  }

  /** Stops the server (if running) by the pid it recorded, and removes the directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const pid = this.postmasterPid();
    if (pid !== undefined) {
      await this.stopServer().catch(() => killAndWait(pid));
    }
    fs.rmSync(this.directory, { recursive: true, force: true });
  }

  /** Synchronous, for the exit hook: SIGQUIT (immediate shutdown) to the postmaster, then the directory. */
  stopNow(): void {
    if (this.stopped) return;
    this.stopped = true;
    const pid = this.postmasterPid();
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    fs.rmSync(this.directory, { recursive: true, force: true });
  }

  private postmasterPid(): number | undefined {
    try {
      const first = fs.readFileSync(path.join(this.dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0];
      const pid = Number(first);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async command(file: string, args: ReadonlyArray<string>): Promise<void> {
    const [program, ...rest] = [...this.asUser, file, ...args] as [string, ...string[]];
    try {
      await run(program, rest, { cwd: this.directory });
    } catch (error) {
      const log = (() => {
        try {
          return fs.readFileSync(path.join(this.directory, 'log'), 'utf8').slice(-2000);
        } catch {
          return '';
        }
      })();
      const { stderr } = error as { stderr?: string };
      throw new Error(`${path.basename(file)} failed: ${stderr ?? String(error)}${log ? `\nserver log:\n${log}` : ''}`, { cause: error });
    }
  }
}

const clusters = new Set<PostgresCluster>();
let exitHookInstalled = false;

function registerExitCleanup(cluster: PostgresCluster): void {
  clusters.add(cluster);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const each of clusters) each.stopNow();
  });
}

function postgresUser(): { uid: number; gid: number } {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  if (line === undefined) throw new Error('no postgres user (the postgresql package makes it)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

async function killAndWait(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    return;
  }
  for (let waited = 0; waited < 100; waited += 1) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
