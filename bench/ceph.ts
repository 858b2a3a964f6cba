// A throw-away one-host Ceph cluster (Debian's Ceph 16 packages) on loop devices the bench created: 1 mon, 1 mgr and
// one BlueStore OSD per device, no authentication, small memory targets, every daemon bound to 127.0.0.1 only. Every
// daemon is started here in the foreground (-f) as a child of the bench and stopped by its pid; its data, logs and
// sockets live in one temporary directory that the rig removes.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { onCleanup } from './cleanup.js';
import { ensureTools, run } from './tools.js';

const MiB = 1024 * 1024;

/** The settings the cluster runs with (docs/benchmarks.md lists them); the paths and the mon port are added at start. */
export const CEPH_SETTINGS: ReadonlyArray<readonly [string, string]> = [
  // Networking: loopback only, messenger v2 only, no IPv6.
  ['public_addr', '127.0.0.1'],
  ['cluster_addr', '127.0.0.1'],
  ['ms_bind_ipv4', 'true'],
  ['ms_bind_ipv6', 'false'],
  ['ms_bind_msgr1', 'false'],
  // No authentication.
  ['auth_cluster_required', 'none'],
  ['auth_service_required', 'none'],
  ['auth_client_required', 'none'],
  // One host: the default CRUSH rule places replicas on distinct OSDs, not hosts.
  ['osd_crush_chooseleaf_type', '0'],
  ['osd_pool_default_pg_autoscale_mode', 'off'],
  ['mon_allow_pool_delete', 'true'],
  // No mgr module that listens (restful would bind every address); the always-on ones do not listen.
  ['mgr_initial_modules', ''],
  ['osd_objectstore', 'bluestore'],
  // Small memory: 6 OSDs on a 24 GiB machine beside the pool's own run.
  ['osd_memory_target', String(1024 * MiB)],
  ['bluestore_cache_autotune', 'false'],
  ['bluestore_cache_size', String(128 * MiB)],
  ['bluestore_fsck_on_mkfs', 'false'],
  // Quiet health: /tmp's free space and the legacy global_id reclaim would only add warnings.
  ['mon_data_avail_warn', '1'],
  ['mon_warn_on_insecure_global_id_reclaim_allowed', 'false'],
  ['mon_warn_on_pool_no_redundancy', 'false'],
];

export const CEPH_EC_PROFILE = ['k=4', 'm=2', 'crush-failure-domain=osd', 'plugin=jerasure', 'technique=reed_sol_van'] as const;
export const CEPH_PG_COUNT = 32;
export const CEPH_POOLS = { ec: 'sp-ec42', replicated: 'sp-rep3' } as const;

export interface RadosBenchRun {
  readonly bytesPerSecond: number;
  readonly opsPerSecond: number;
  readonly ops: number;
  readonly seconds: number;
}

interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export class CephCluster {
  readonly conf: string;
  private readonly daemons: Daemon[] = [];
  private readonly osdIds: number[] = [];
  private monPort = 0;
  private stopRegistered: (() => Promise<void>) | undefined;

  constructor(
    readonly root: string,
    readonly devices: ReadonlyArray<string>,
    private readonly log: (line: string) => void,
  ) {
    this.conf = path.join(root, 'ceph.conf');
  }

  static async ensureInstalled(log: (line: string) => void): Promise<void> {
    await ensureTools(['ceph-mon', 'ceph-mgr', 'ceph-osd', 'ceph', 'rados', 'monmaptool'], ['ceph-mon', 'ceph-mgr', 'ceph-osd', 'ceph-common'], log);
  }

  async version(): Promise<string> {
    return (await run('ceph-osd', ['--version'])).stdout.trim();
  }

  async start(): Promise<void> {
    this.stopRegistered = onCleanup(`ceph cluster in ${this.root}`, () => this.stopDaemons());
    for (const directory of ['run', 'log', 'crash', 'mon.a', 'mgr.x']) await fs.mkdir(path.join(this.root, directory), { recursive: true });
    const fsid = randomUUID();
    this.monPort = await freeLoopbackPort();
    await fs.writeFile(this.conf, this.configText(fsid));
    const monmap = path.join(this.root, 'monmap');
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${this.monPort}]`, monmap]);
    await run('ceph-mon', ['-c', this.conf, '--mkfs', '-i', 'a', '--monmap', monmap]);
    this.spawnDaemon('mon.a', 'ceph-mon', ['-c', this.conf, '-i', 'a', '-f']);
    await this.waitFor('the mon to form a quorum', 60, async () => {
      const status = (await this.cephJson(['quorum_status'])) as { quorum_names?: string[] };
      return (status.quorum_names ?? []).includes('a');
    });
    this.spawnDaemon('mgr.x', 'ceph-mgr', ['-c', this.conf, '-i', 'x', '-f']);
    // OSDs: one per device, BlueStore straight on the loop device (no LVM, no ceph-volume).
    for (const device of this.devices) {
      const uuid = randomUUID();
      const id = Number((await this.ceph(['osd', 'new', uuid])).trim());
      if (!Number.isInteger(id)) throw new Error(`ceph osd new printed no id`);
      const data = path.join(this.root, `osd.${id}`);
      await fs.mkdir(data);
      await fs.symlink(device, path.join(data, 'block'));
      await run('ceph-osd', ['-c', this.conf, '-i', String(id), '--mkfs', '--osd-uuid', uuid]);
      this.osdIds.push(id);
    }
    for (const id of this.osdIds) this.spawnDaemon(`osd.${id}`, 'ceph-osd', ['-c', this.conf, '-i', String(id), '-f']);
    await this.waitFor('every OSD to be up', 120, async () => {
      const stat = (await this.cephJson(['osd', 'stat'])) as { num_up_osds?: number; num_in_osds?: number; osdmap?: { num_up_osds?: number; num_in_osds?: number } };
      const up = stat.num_up_osds ?? stat.osdmap?.num_up_osds ?? 0;
      const inCount = stat.num_in_osds ?? stat.osdmap?.num_in_osds ?? 0;
      return up === this.osdIds.length && inCount === this.osdIds.length;
    });
    await this.ceph(['osd', 'erasure-code-profile', 'set', 'sp-ec42', ...CEPH_EC_PROFILE]);
    await this.ceph(['osd', 'pool', 'create', CEPH_POOLS.ec, String(CEPH_PG_COUNT), String(CEPH_PG_COUNT), 'erasure', 'sp-ec42']);
    await this.ceph(['osd', 'pool', 'create', CEPH_POOLS.replicated, String(CEPH_PG_COUNT), String(CEPH_PG_COUNT), 'replicated']);
    await this.ceph(['osd', 'pool', 'set', CEPH_POOLS.replicated, 'size', '3']);
    await this.ceph(['osd', 'pool', 'set', CEPH_POOLS.replicated, 'min_size', '2']);
    await this.waitForClean(180);
    await this.assertLoopbackOnly();
  }

  /** Waits until every placement group is active+clean (after pool creation, and after a cleanup between rounds). */
  async waitForClean(timeoutSeconds: number): Promise<void> {
    await this.waitFor('every placement group to be active+clean', timeoutSeconds, async () => {
      const status = (await this.cephJson(['status'])) as { pgmap?: { num_pgs?: number; pgs_by_state?: Array<{ state_name: string; count: number }> } };
      const pgs = status.pgmap?.num_pgs ?? 0;
      const clean = (status.pgmap?.pgs_by_state ?? []).filter((entry) => entry.state_name === 'active+clean').reduce((sum, entry) => sum + entry.count, 0);
      return pgs >= 2 * CEPH_PG_COUNT && clean === pgs;
    });
  }

  /**
   * `rados bench SECONDS write|seq`: `write` with objects of `objectBytes` (at most `maxObjects`), `concurrency` ops in
   * flight; `seq` reads back what the last `write` of `runName` left (--no-cleanup). Parses the JSON summary.
   */
  async radosBench(options: {
    readonly pool: string;
    readonly kind: 'write' | 'seq';
    readonly seconds: number;
    readonly objectBytes: number;
    readonly concurrency: number;
    readonly maxObjects: number;
    readonly runName: string;
  }): Promise<RadosBenchRun> {
    const args = ['-c', this.conf, '-p', options.pool, 'bench', String(options.seconds), options.kind, '-t', String(options.concurrency), '--run-name', options.runName, '--format', 'json'];
    if (options.kind === 'write') args.push('-b', String(options.objectBytes), '-O', String(options.objectBytes), '--max-objects', String(options.maxObjects), '--no-cleanup');
    // A cluster that filled up would block writes forever: bound the run.
    const { stdout } = await run('rados', args, { maxBuffer: 64 * MiB, timeout: (options.seconds * 10 + 120) * 1000, killSignal: 'SIGKILL' });
    return parseRadosBench(stdout, options.kind);
  }

  async radosCleanup(pool: string, runName: string): Promise<void> {
    await run('rados', ['-c', this.conf, '-p', pool, 'cleanup', '--run-name', runName], { maxBuffer: 16 * MiB, timeout: 300_000, killSignal: 'SIGKILL' });
  }

  /** Stops every daemon this cluster started, OSDs first, by pid: SIGTERM, then SIGKILL after 20 s. */
  async stop(): Promise<void> {
    const stop = this.stopRegistered;
    this.stopRegistered = undefined;
    await (stop ? stop() : this.stopDaemons());
  }

  private async stopDaemons(): Promise<void> {
    const order = [...this.daemons.filter((daemon) => daemon.name.startsWith('osd.')), ...this.daemons.filter((daemon) => !daemon.name.startsWith('osd.')).reverse()];
    const stopOne = async (daemon: Daemon) => {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
      daemon.child.kill('SIGTERM');
      const killed = await Promise.race([daemon.exited.then(() => false), sleep(20_000).then(() => true)]);
      if (killed) {
        daemon.child.kill('SIGKILL');
        await daemon.exited;
      }
    };
    // The OSDs together (each tells the mon it is going down), then the mgr, then the mon.
    await Promise.all(order.filter((daemon) => daemon.name.startsWith('osd.')).map(stopOne));
    for (const daemon of order.filter((daemon) => !daemon.name.startsWith('osd.'))) await stopOne(daemon);
    this.daemons.splice(0);
  }

  private configText(fsid: string): string {
    const lines = ['[global]', `fsid = ${fsid}`, `mon_host = [v2:127.0.0.1:${this.monPort}]`];
    for (const [name, value] of CEPH_SETTINGS) lines.push(`${name} = ${value}`);
    const r = this.root;
    lines.push(`run_dir = ${r}/run`, `admin_socket = ${r}/run/$name.asok`, `log_file = ${r}/log/$name.log`, `mon_cluster_log_file = ${r}/log/cluster.log`, `crash_dir = ${r}/crash`);
    lines.push('[mon]', `mon_data = ${r}/mon.$id`, '[mgr]', `mgr_data = ${r}/mgr.$id`, '[osd]', `osd_data = ${r}/osd.$id`, '');
    return lines.join('\n');
  }

  private spawnDaemon(name: string, binary: string, args: ReadonlyArray<string>): void {
    const logPath = path.join(this.root, 'log', `${name}.out`);
    const child = spawn(binary, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    const keep = (chunk: Buffer) => {
      chunks.push(chunk);
      if (chunks.length > 200) chunks.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        void fs.writeFile(logPath, Buffer.concat(chunks)).catch(() => undefined);
        if (this.daemons.some((daemon) => daemon.child === child) && signal !== 'SIGTERM' && signal !== 'SIGKILL' && code !== 0) {
          this.log(`ceph: ${name} (pid ${child.pid}) exited with ${code ?? signal}: ${Buffer.concat(chunks).toString('utf8').slice(-500)}`);
        }
        resolve();
      });
      child.once('error', () => resolve());
    });
    this.daemons.push({ name, child, exited });
  }

  /** Every socket our daemons listen on is on 127.0.0.1 (read from ss, by pid); otherwise the run stops. */
  private async assertLoopbackOnly(): Promise<void> {
    const { stdout } = await run('ss', ['-Hltnup']);
    const pids = new Set(this.daemons.map((daemon) => daemon.child.pid));
    for (const line of stdout.split('\n')) {
      const pid = /pid=(\d+),/.exec(line)?.[1];
      if (pid === undefined || !pids.has(Number(pid))) continue;
      const local = line.trim().split(/\s+/)[4] ?? '';
      if (!local.startsWith('127.0.0.1:')) throw new Error(`a ceph daemon listens on ${local}, not only 127.0.0.1: ${line.trim()}`);
    }
  }

  async ceph(args: ReadonlyArray<string>): Promise<string> {
    const { stdout } = await run('ceph', ['-c', this.conf, '--connect-timeout', '15', ...args], { maxBuffer: 16 * MiB, timeout: 60_000, killSignal: 'SIGKILL' });
    return stdout;
  }

  private async cephJson(args: ReadonlyArray<string>): Promise<unknown> {
    return JSON.parse(await this.ceph([...args, '--format', 'json'])) as unknown;
  }

  private async waitFor(what: string, timeoutSeconds: number, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + timeoutSeconds * 1000;
    let lastError = '';
    while (Date.now() < deadline) {
      const dead = this.daemons.find((daemon) => daemon.child.exitCode !== null || daemon.child.signalCode !== null);
      if (dead) throw new Error(`ceph: ${dead.name} exited while waiting for ${what}`);
      try {
        if (await ready()) return;
      } catch (error: unknown) {
        lastError = error instanceof Error ? error.message : String(error);
      }
      await sleep(1000);
    }
    throw new Error(`ceph: timed out after ${timeoutSeconds} s waiting for ${what}${lastError ? ` (${lastError.slice(0, 300)})` : ''}`);
  }
}

export function parseRadosBench(stdout: string, kind: 'write' | 'seq'): RadosBenchRun {
  // rados prints "hints = 1" before its JSON.
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`rados bench printed no JSON: ${stdout.slice(0, 200)}`);
  const report = JSON.parse(stdout.slice(start)) as Record<string, unknown>;
  const seconds = Number(report.total_time_run);
  const ops = Number(kind === 'write' ? report.total_writes_made : report.total_reads_made);
  const opBytes = Number(kind === 'write' ? report.write_size : report.read_size);
  if (!(seconds > 0) || !(ops > 0) || !(opBytes > 0)) throw new Error(`rados bench ${kind} moved nothing: ${stdout.slice(start, start + 300)}`);
  return { bytesPerSecond: (ops * opBytes) / seconds, opsPerSecond: ops / seconds, ops, seconds };
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
