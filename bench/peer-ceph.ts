// `npm run bench -- --peer ceph [--quick] [--rounds N] [--json]` (root): Ceph BlueStore as the peer. A throw-away
// one-host Ceph 16 cluster (bench/ceph.ts) on six loop devices, and a shardpool pool (ec:4+2, in-process) on six other
// loop devices of the same size, run the same workloads — rados bench's, mirrored on the pool by bench/workloads.ts —
// pair by pair, the side that goes first alternating from round to round so the shared machine's noise hits both.
// Prints shardpool ÷ Ceph for each workload (medians of the rounds, with min and max). Everything it created (daemons
// by pid, loop devices by name, the temporary directory) is removed at the end, on failure and on SIGINT/SIGTERM.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Pool } from '../src/pool/pool.js';
import { parsePolicy } from '../src/redundancy/policy.js';
import { CEPH_EC_PROFILE, CEPH_PG_COUNT, CEPH_POOLS, CEPH_SETTINGS, CephCluster } from './ceph.js';
import { Rig } from './rig.js';
import { figureOf, formatFigure, scale } from './stats.js';
import { isRoot } from './tools.js';
import { makePool, openPool, readAllOf, removeAllOf, timedPuts } from './workloads.js';

const MiB = 1024 * 1024;

interface Workload {
  readonly name: string;
  readonly kind: 'write' | 'read';
  readonly redundancy: 'ec:4+2' | 'replica:3';
  readonly objectBytes: number;
  readonly concurrency: number;
}

// Each write workload is followed by its read where there is one (the read needs the objects the write left).
const WORKLOADS: ReadonlyArray<Workload> = [
  { name: 'ec 64 MiB write', kind: 'write', redundancy: 'ec:4+2', objectBytes: 64 * MiB, concurrency: 4 },
  { name: 'ec 64 MiB read', kind: 'read', redundancy: 'ec:4+2', objectBytes: 64 * MiB, concurrency: 4 },
  { name: 'ec 4 MiB write', kind: 'write', redundancy: 'ec:4+2', objectBytes: 4 * MiB, concurrency: 16 },
  { name: 'ec 4 MiB read', kind: 'read', redundancy: 'ec:4+2', objectBytes: 4 * MiB, concurrency: 16 },
  { name: 'ec 4 KiB write', kind: 'write', redundancy: 'ec:4+2', objectBytes: 4096, concurrency: 32 },
  { name: 'replica:3 4 MiB write', kind: 'write', redundancy: 'replica:3', objectBytes: 4 * MiB, concurrency: 16 },
  { name: 'replica:3 4 MiB read', kind: 'read', redundancy: 'replica:3', objectBytes: 4 * MiB, concurrency: 16 },
  { name: 'replica:3 4 KiB write', kind: 'write', redundancy: 'replica:3', objectBytes: 4096, concurrency: 32 },
];

interface PeerMode {
  readonly name: 'full' | 'quick';
  readonly deviceBytes: number;
  readonly seconds: number;
  readonly rounds: number;
}

const PEER_MODES: Record<PeerMode['name'], PeerMode> = {
  full: { name: 'full', deviceBytes: 1536 * MiB, seconds: 5, rounds: 3 },
  quick: { name: 'quick', deviceBytes: 768 * MiB, seconds: 2, rounds: 1 },
};

/** At most this share of the six devices' raw bytes is written by one write workload (after redundancy). */
const FILL_SHARE_MAX = 0.3;

function maxObjects(mode: PeerMode, workload: Workload): number {
  const expansion = workload.redundancy === 'ec:4+2' ? 6 / 4 : 3;
  const logicalBytes = (FILL_SHARE_MAX * 6 * mode.deviceBytes) / expansion;
  // 4 KiB objects cost far more than 4 KiB each in metadata and allocation units on both sides: a fixed count.
  if (workload.objectBytes <= 64 * 1024) return 200_000;
  return Math.max(workload.concurrency, Math.floor(logicalBytes / workload.objectBytes));
}

type Side = 'ceph' | 'shardpool';

export async function peerCephMode(options: { readonly quick: boolean; readonly json: boolean; readonly rounds: number | undefined }): Promise<void> {
  const base = PEER_MODES[options.quick ? 'quick' : 'full'];
  const mode: PeerMode = { ...base, rounds: options.rounds ?? base.rounds };
  const log = (line: string) => {
    if (!options.json) process.stdout.write(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  };
  if (!isRoot()) {
    process.stderr.write('shardpool bench: --peer ceph needs root (loop devices, a Ceph cluster; it installs Debian\'s Ceph if missing)\n');
    process.exitCode = 2;
    return;
  }
  await CephCluster.ensureInstalled(log);
  const rig = new Rig(await fs.mkdtemp(path.join(os.tmpdir(), 'shardpool-bench-ceph-')), { deviceBytes: mode.deviceBytes, loopDevices: true });
  let cluster: CephCluster | undefined;
  let pool: Pool | undefined;
  try {
    const poolDevices = await rig.createDevices(6, 'shardpool');
    const cephDevices = await rig.createDevices(6, 'ceph');
    // The image files sit on a disk the kernel calls rotational, and loop devices inherit that; BlueStore would then
    // pick its HDD settings (deferred small writes, fewer op shards) for what is flash underneath. All twelve are
    // marked non-rotational (the pool does not look).
    for (const device of rig.loops) await fs.writeFile(`/sys/block/${path.basename(device)}/queue/rotational`, '0');
    const cephRoot = path.join(rig.root, 'ceph');
    await fs.mkdir(cephRoot);
    cluster = new CephCluster(cephRoot, cephDevices, log);
    const version = await cluster.version();
    log(`peer ceph (${mode.name}): ${version}; 1 mon, 1 mgr, 6 BlueStore OSDs on loop devices of ${mode.deviceBytes / MiB} MiB; shardpool ec:4+2 on six others`);
    const started = Date.now();
    await cluster.start();
    log(`ceph cluster up in ${((Date.now() - started) / 1000).toFixed(0)} s (pools ${CEPH_POOLS.ec}: EC ${CEPH_EC_PROFILE.join(' ')}, ${CEPH_POOLS.replicated}: replicated size 3; ${CEPH_PG_COUNT} PGs each)`);
    const poolDir = path.join(rig.root, 'pool');
    await makePool(poolDir, poolDevices, 'device');
    pool = await openPool(poolDir);

    const values = new Map<string, Record<Side, number[]>>(WORKLOADS.map((workload) => [workload.name, { ceph: [], shardpool: [] }]));
    for (let round = 0; round < mode.rounds; round += 1) {
      const order: Side[] = round % 2 === 0 ? ['ceph', 'shardpool'] : ['shardpool', 'ceph'];
      log(`round ${round + 1} of ${mode.rounds} (${order.join(' first, then ')})`);
      for (let index = 0; index < WORKLOADS.length; index += 1) {
        const write = WORKLOADS[index] as Workload;
        if (write.kind !== 'write') continue;
        const read = WORKLOADS[index + 1]?.kind === 'read' ? WORKLOADS[index + 1] : undefined;
        // Each side writes, reads back what it wrote, and removes it before the other side's turn.
        for (const side of order) {
          const runName = `sp-${round}-${index}`;
          if (side === 'ceph') {
            const cephPool = write.redundancy === 'ec:4+2' ? CEPH_POOLS.ec : CEPH_POOLS.replicated;
            const common = { pool: cephPool, seconds: mode.seconds, objectBytes: write.objectBytes, concurrency: write.concurrency, maxObjects: maxObjects(mode, write), runName };
            const written = await cluster.radosBench({ ...common, kind: 'write' });
            record(values, write, side, written);
            if (read) record(values, read, side, await cluster.radosBench({ ...common, kind: 'seq' }));
            await cluster.radosCleanup(cephPool, runName);
          } else {
            const policy = parsePolicy(write.redundancy);
            const written = await timedPuts(pool, { objectBytes: write.objectBytes, concurrency: write.concurrency, durationSeconds: mode.seconds, prefix: runName, policy, maxObjects: maxObjects(mode, write) });
            record(values, write, side, written);
            if (read) record(values, read, side, await readAllOf(pool, written.keys, read.concurrency));
            await removeAllOf(pool, written.keys);
          }
        }
        const last = (workload: Workload) => {
          const entry = values.get(workload.name) as Record<Side, number[]>;
          return `${workload.name}: ceph ${describe(workload, entry.ceph.at(-1) as number)}, shardpool ${describe(workload, entry.shardpool.at(-1) as number)}`;
        };
        log(`  ${last(write)}${read ? `; ${last(read)}` : ''}`);
      }
    }

    const rows = WORKLOADS.map((workload) => {
      const entry = values.get(workload.name) as Record<Side, number[]>;
      const unit = workload.objectBytes <= 64 * 1024 ? 1 : MiB;
      const ceph = scale(figureOf(entry.ceph), unit);
      const shardpool = scale(figureOf(entry.shardpool), unit);
      // The ratio of each round's pair, so a slow moment that hit both sides cancels.
      const ratio = figureOf(entry.shardpool.map((value, round) => value / (entry.ceph[round] as number)));
      return { workload: workload.name, unit: unit === 1 ? 'ops/s' : 'MiB/s', concurrency: workload.concurrency, ceph, shardpool, ratio };
    });
    const report = {
      mode: mode.name,
      peer: 'ceph',
      cephVersion: version,
      machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version },
      deviceBytes: mode.deviceBytes,
      secondsPerRun: mode.seconds,
      rounds: mode.rounds,
      cephSettings: Object.fromEntries(CEPH_SETTINGS),
      cephPools: { [CEPH_POOLS.ec]: `erasure ${CEPH_EC_PROFILE.join(' ')}, pg_num ${CEPH_PG_COUNT}`, [CEPH_POOLS.replicated]: `replicated size 3 min_size 2, pg_num ${CEPH_PG_COUNT}` },
      target: 2,
      rows,
    };
    if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      process.stdout.write(`\nshardpool ÷ ceph, median of ${mode.rounds} round(s) (min–max); target ≥ 2\n`);
      process.stdout.write(`${'workload'.padEnd(24)}${'t'.padEnd(4)}${'ceph'.padEnd(24)}${'shardpool'.padEnd(24)}ratio\n`);
      for (const row of rows) {
        process.stdout.write(`${row.workload.padEnd(24)}${String(row.concurrency).padEnd(4)}${`${formatFigure(row.ceph)} ${row.unit}`.padEnd(24)}${`${formatFigure(row.shardpool)} ${row.unit}`.padEnd(24)}${formatFigure(row.ratio, 2)}\n`);
      }
    }
  } finally {
    if (pool) await pool.close().catch(() => undefined);
    if (cluster) await cluster.stop();
    await rig.teardown();
  }
}

function record(values: Map<string, Record<Side, number[]>>, workload: Workload, side: Side, result: { readonly bytesPerSecond: number; readonly opsPerSecond: number }): void {
  const entry = values.get(workload.name) as Record<Side, number[]>;
  entry[side].push(workload.objectBytes <= 64 * 1024 ? result.opsPerSecond : result.bytesPerSecond);
}

function describe(workload: Workload, value: number): string {
  return workload.objectBytes <= 64 * 1024 ? `${value.toFixed(0)} ops/s` : `${(value / MiB).toFixed(0)} MiB/s`;
}

