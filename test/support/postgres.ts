// A throw-away PostgreSQL 15 cluster for one test process: initdb and pg_ctl from Debian's postgresql-15, run as the
// `postgres` OS user when the tests run as root (PostgreSQL refuses root), in a temp directory of its own, listening
// on a unix socket in that directory only (listen_addresses=''), so parallel test processes never meet. Each test
// gets a database of its own (createDatabase). The cluster is stopped — by the pid in its postmaster.pid — and its
// directory removed when the process's tests end (node:test's after) or, failing that, when the process exits.
// Under CI=true a missing or failing PostgreSQL is an error; elsewhere the tests that need it skip with the reason.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
/** The port names the socket file (.s.PGSQL.PORT) in the cluster's own directory: any fixed one serves. */
const PORT = 5432;
const START_TIMEOUT_S = 60;

export class PostgresCluster {
  private stopped = false;
  private databases = 0;

  private constructor(
    /** Owned by the cluster's user; holds data/, the socket and the log. */
    readonly directory: string,
    private readonly asUser: ReadonlyArray<string>,
  ) {}

  static async start(): Promise<PostgresCluster> {
    if (!fs.existsSync(path.join(POSTGRES_BIN, 'initdb'))) throw new Error(`PostgreSQL 15 is not installed (no ${POSTGRES_BIN}/initdb; apt-get install postgresql)`);
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'shardpool-pg-'));
    const root = process.getuid?.() === 0;
    const asUser = root ? ['runuser', '-u', 'postgres', '--'] : [];
    const cluster = new PostgresCluster(directory, asUser);
    registerExitCleanup(cluster);
    try {
      if (root) {
        const { uid, gid } = postgresUser();
        fs.chownSync(directory, uid, gid);
      }
      await cluster.command(path.join(POSTGRES_BIN, 'initdb'), ['-D', cluster.dataDirectory, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
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

  /** A new, empty database; returns its address. */
  async createDatabase(): Promise<string> {
    this.databases += 1;
    const name = `test_${process.pid}_${this.databases}`;
    const client = new pg.Client({ connectionString: this.url('postgres') });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** pg_ctl start, waiting until the server accepts connections. */
  async startServer(): Promise<void> {
    const options = `-c listen_addresses='' -c unix_socket_directories='${this.directory}' -c port=${PORT} -c fsync=off -c max_connections=100`;
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

let shared: Promise<PostgresCluster | string> | undefined;

/**
 * The cluster of this test process, started on first use (stopped after the process's tests); or, outside CI when
 * it cannot start, the reason why — and the test is skipped with it.
 */
export async function postgresCluster(t: TestContext): Promise<PostgresCluster | undefined> {
  shared ??= PostgresCluster.start().then(
    (cluster) => cluster,
    (error: unknown) => {
      if (process.env.CI === 'true') throw error;
      const reason = `PostgreSQL cannot be started here: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
      process.stderr.write(`skipping PostgreSQL tests: ${reason}\n`);
      return reason;
    },
  );
  const cluster = await shared;
  if (typeof cluster === 'string') {
    t.skip(cluster);
    return undefined;
  }
  return cluster;
}

/** The process's cluster for a pass of the suite on PostgreSQL: it must start (no skipping there). */
export async function requiredPostgresCluster(): Promise<PostgresCluster> {
  shared ??= PostgresCluster.start();
  const cluster = await shared;
  if (typeof cluster === 'string') throw new Error(cluster);
  return cluster;
}

/** A new database on the process's cluster, or undefined when the test was skipped (see postgresCluster). */
export async function postgresDatabase(t: TestContext): Promise<string | undefined> {
  const cluster = await postgresCluster(t);
  return cluster?.createDatabase();
}

// Registered when a test file imports this module (top level: the hook belongs to the file's root).
after(async () => {
  const cluster = await shared?.catch(() => undefined);
  if (cluster instanceof PostgresCluster) await cluster.stop();
});

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
