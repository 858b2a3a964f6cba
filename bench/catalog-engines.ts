// The catalog engines side by side: the small-puts workload (32 concurrent 4 KiB puts, bench/workloads.ts) on a pool
// whose catalog is SQLite (catalog.sqlite in the pool directory, WAL, synchronous=FULL) and on one whose catalog is
// PostgreSQL (a throw-away, durable cluster: fsync=on, synchronous_commit=on), on the same six devices, in the same
// run. Rounds alternate the order (SQLite first, then PostgreSQL first, ...) so the machine's noise meets both; each
// round makes a fresh pool on the devices (the devices can hold one pool at a time), with a new catalog: a new
// pool directory for SQLite, a new database on the one cluster for PostgreSQL. The cluster's directory is made next
// to the rig's (the same filesystem as the pool directory and so the SQLite file, checked by device number), never on
// a tmpfs; it is stopped and removed by the bench's teardown (bench/cleanup.ts), on failure or signal too.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setCatalogBatchObserver } from '../src/pool/catalog/catalog.js';
import type { CatalogLocation } from '../src/format/pool-config.js';
import { PostgresCluster } from '../test/support/postgres-cluster.js';
import { onCleanup } from './cleanup.js';
import { type Figure, figureOf, formatFigure } from './stats.js';
import { makePool, openPool, smallPuts } from './workloads.js';

const MiB = 1024 * 1024;

export type Engine = 'sqlite' | 'postgresql';

export interface EngineFigures {
  /** Acknowledged 4 KiB puts per second. */
  readonly putsPerSecond: Figure;
  /** Pieces of catalog work per group commit (one transaction, one durable commit): the mean of each round. */
  readonly piecesPerGroupCommit: Figure;
  /** Group commits (catalog transactions of the batcher) per put. */
  readonly groupCommitsPerPut: Figure;
  readonly rounds: ReadonlyArray<{ readonly putsPerSecond: number; readonly piecesPerGroupCommit: number; readonly groupCommits: number }>;
}

export interface CatalogEnginesReport {
  readonly workload: string;
  readonly putsPerRound: number;
  readonly rounds: number;
  readonly order: ReadonlyArray<ReadonlyArray<Engine>>;
  readonly sqlite: EngineFigures & { readonly settings: string; readonly filesystem: string };
  readonly postgresql:
    | (EngineFigures & { readonly settings: string; readonly filesystem: string; readonly sameFilesystemAsPool: boolean; readonly version: string })
    | { readonly skipped: string };
}

export interface CatalogEnginesOptions {
  readonly root: string;
  readonly devices: ReadonlyArray<string>;
  readonly putsPerRound: number;
  readonly rounds: number;
  readonly log: (line: string) => void;
  readonly note: (line: string) => void;
}

/** Bytes of each device's data region filled again after each pool is made: more than a round of small puts writes. */
const FILL_BYTES = 64 * MiB;
const WARM_UP_PUTS = 32;

export async function measureCatalogEngines(options: CatalogEnginesOptions): Promise<CatalogEnginesReport> {
  const parent = path.dirname(options.root);
  let cluster: PostgresCluster | undefined;
  let skipped: string | undefined;
  let removeCluster: (() => Promise<void>) | undefined;
  try {
    // Next to the rig's directory, not in it: the rig's is root's 0700 and the server runs as postgres.
    cluster = await PostgresCluster.start({ durable: true, parentDirectory: parent, databasePrefix: 'bench' });
    const started = cluster;
    removeCluster = onCleanup(`PostgreSQL cluster ${started.directory}`, () => started.stop());
  } catch (error) {
    skipped = `PostgreSQL cannot be started here: ${error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error)}`;
    options.note(`catalog engines: PostgreSQL skipped (${skipped}); SQLite measured alone`);
  }
  try {
    const engines: Engine[] = cluster ? ['sqlite', 'postgresql'] : ['sqlite'];
    const order: Engine[][] = [];
    const results: Record<Engine, Array<{ putsPerSecond: number; piecesPerGroupCommit: number; groupCommits: number }>> = { sqlite: [], postgresql: [] };
    for (let round = 0; round < options.rounds; round += 1) {
      const thisRound = round % 2 === 0 ? engines : [...engines].reverse();
      order.push(thisRound);
      for (const engine of thisRound) {
        const result = await oneRound(options, engine, round, cluster);
        results[engine].push(result);
        options.log(`catalog engines round ${round + 1}/${options.rounds} ${engine}: ${result.putsPerSecond.toFixed(0)} puts/s, ${result.piecesPerGroupCommit.toFixed(1)} pieces per group commit (${result.groupCommits} commits)`);
      }
    }
    const poolFilesystem = filesystemOf(options.root);
    const sqlite = { ...figuresOf(results.sqlite, options.putsPerRound), settings: 'WAL, synchronous=FULL (an fsync of the WAL per commit)', filesystem: poolFilesystem };
    if (!cluster) return { workload: '32 concurrent 4 KiB puts, ec:4+2', putsPerRound: options.putsPerRound, rounds: options.rounds, order, sqlite, postgresql: { skipped: skipped ?? 'not started' } };
    const sameFilesystemAsPool = fs.statSync(cluster.dataDirectory).dev === fs.statSync(options.root).dev;
    const postgresql = {
      ...figuresOf(results.postgresql, options.putsPerRound),
      ...(await serverSettings(cluster)),
      filesystem: filesystemOf(cluster.dataDirectory),
      sameFilesystemAsPool,
    };
    return { workload: '32 concurrent 4 KiB puts, ec:4+2', putsPerRound: options.putsPerRound, rounds: options.rounds, order, sqlite, postgresql };
  } finally {
    await removeCluster?.();
  }
}

async function oneRound(options: CatalogEnginesOptions, engine: Engine, round: number, cluster: PostgresCluster | undefined): Promise<{ putsPerSecond: number; piecesPerGroupCommit: number; groupCommits: number }> {
  const directory = path.join(options.root, `engines-${engine}-${round}`);
  const catalog: CatalogLocation | undefined = engine === 'postgresql' ? { engine: 'postgresql', url: await (cluster as PostgresCluster).createDatabase() } : undefined;
  await makePool(directory, options.devices, 'device', { ...(catalog ? { catalog } : {}), fillBytes: FILL_BYTES });
  const pool = await openPool(directory);
  const sizes: number[] = [];
  try {
    // Not counted: the first puts open the connections (PostgreSQL) and warm the statement caches.
    await smallPuts(pool, WARM_UP_PUTS, 'warm');
    setCatalogBatchObserver((size) => sizes.push(size));
    const { putsPerSecond } = await smallPuts(pool, options.putsPerRound, 'small');
    setCatalogBatchObserver(undefined);
    const pieces = sizes.reduce((sum, size) => sum + size, 0);
    return { putsPerSecond, piecesPerGroupCommit: sizes.length === 0 ? 0 : pieces / sizes.length, groupCommits: sizes.length };
  } finally {
    setCatalogBatchObserver(undefined);
    await pool.close();
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

function figuresOf(rounds: ReadonlyArray<{ putsPerSecond: number; piecesPerGroupCommit: number; groupCommits: number }>, putsPerRound: number): EngineFigures {
  return {
    putsPerSecond: figureOf(rounds.map((round) => round.putsPerSecond)),
    piecesPerGroupCommit: figureOf(rounds.map((round) => round.piecesPerGroupCommit)),
    groupCommitsPerPut: figureOf(rounds.map((round) => round.groupCommits / putsPerRound)),
    rounds,
  };
}

/** The type of the filesystem holding `target` (from /proc/self/mountinfo: the longest mount point above it). */
function filesystemOf(target: string): string {
  try {
    const real = fs.realpathSync(target);
    let best: { mount: string; type: string; source: string } | undefined;
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [left, right] = line.split(' - ');
      if (!left || !right) continue;
      const mount = (left.split(' ')[4] ?? '').replace(/\\040/g, ' ');
      const [type = '', source = ''] = right.split(' ');
      const inside = mount === '/' || real === mount || real.startsWith(`${mount}/`);
      if (inside && (!best || mount.length >= best.mount.length)) best = { mount, type, source };
    }
    return best ? `${best.type} (${best.source} on ${best.mount})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The server's version and the settings that make its commits durable, as the server reports them. */
async function serverSettings(cluster: PostgresCluster): Promise<{ version: string; settings: string }> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: cluster.url('postgres') });
  await client.connect();
  try {
    const names = ['fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method'];
    const { rows } = await client.query<{ name: string; setting: string }>('SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name', [names]);
    const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? 'unknown';
    return { version, settings: `${rows.map((row) => `${row.name}=${row.setting}`).join(', ')}; unix socket` };
  } finally {
    await client.end();
  }
}

/** The table of the report, one row per engine. */
export function formatCatalogEngines(report: CatalogEnginesReport): string {
  const lines = [`catalog engines (${report.workload}, ${report.putsPerRound} puts a round, ${report.rounds} rounds alternating; median (min–max)):`];
  lines.push(`${'engine'.padEnd(12)}${'puts/s'.padEnd(24)}${'pieces per group commit'.padEnd(26)}${'group commits per put'.padEnd(22)}catalog on`);
  const row = (name: string, figures: EngineFigures & { filesystem: string }) =>
    `${name.padEnd(12)}${formatFigure(figures.putsPerSecond).padEnd(24)}${formatFigure(figures.piecesPerGroupCommit, 1).padEnd(26)}${formatFigure(figures.groupCommitsPerPut, 2).padEnd(22)}${figures.filesystem}`;
  lines.push(row('SQLite', report.sqlite));
  if ('skipped' in report.postgresql) lines.push(`${'PostgreSQL'.padEnd(12)}skipped: ${report.postgresql.skipped}`);
  else {
    lines.push(row('PostgreSQL', report.postgresql));
    lines.push(`(PostgreSQL ${report.postgresql.version}: ${report.postgresql.settings}; data directory ${report.postgresql.sameFilesystemAsPool ? 'on the same filesystem as the pool directory' : 'NOT on the pool directory\'s filesystem'})`);
  }
  return lines.join('\n');
}
