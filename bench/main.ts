// `npm run bench [-- --quick] [-- --json]`: the pool measured against the physical limit of the same devices, in
// one run, side by side. Needs root for loop devices (it creates and removes them itself). The limit is fio (Debian's
// package, installed with apt-get when missing) on all six devices at once: O_DIRECT, iodepth 32, at the pool's record
// size and at 1 MiB; every pool figure is a ratio to it. `--smoke` (used by the test suite so this file cannot rot)
// runs every scenario in seconds on device image files without root; it skips fio (saying why) and divides by dd.
// Every run also measures the catalog engines side by side (bench/catalog-engines.ts: SQLite vs a durable PostgreSQL).
// `--peer ceph [--quick] [--json]` (root) is the Ceph BlueStore comparison of bench/peer-ceph.ts.
// `--only cli [--quick|--smoke]` runs only the paths users run (bench/cli.ts: CLI start-up, CLI put vs in-process,
// concurrent CLI puts with and without a daemon) on a pool of its own; `--help` lists the modes.
// `--torture [--seconds N] [--seed S]` is the long mode of the torture test (test/torture): 10 minutes of 24 S3 and
// 2 CLI clients with maintenance on loop devices (device image files without root), then the checker and the audit.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { FRAGMENT_HEADER_FIXED_BYTES } from '../src/constants.js';
import { drainDisk } from '../src/maintain/drain.js';
import { scrubPool } from '../src/maintain/scrub.js';
import { checksum128 } from '../src/redundancy/checksum.js';
import { createCodec } from '../src/redundancy/create-codec.js';
import { parsePolicy } from '../src/redundancy/policy.js';
import { formatReport, runTorture } from '../test/torture/workload.js';
import { type CatalogEnginesReport, formatCatalogEngines, measureCatalogEngines } from './catalog-engines.js';
import { formatManifestCost, measureImport, measureManifestCost, type ManifestCost } from './manifests.js';
import { type CliReport, CONCURRENT_CLI_PUTS, formatCli, measureCli } from './cli.js';
import { cleanupAll } from './cleanup.js';
import { type FioLimit, measureFioLimit } from './fio.js';
import { peerCephMode } from './peer-ceph.js';
import { Rig } from './rig.js';
import { type Figure, figureOf, measure, scale, seconds } from './stats.js';
import { isRoot, run } from './tools.js';
import { largeGet, largePut, makePool, openPool, smallPuts } from './workloads.js';

const MiB = 1024 * 1024;

interface Mode {
  readonly name: 'full' | 'quick' | 'smoke';
  readonly deviceBytes: number;
  readonly rawBytesPerDevice: number;
  readonly largeTotalBytes: number;
  readonly largeObjectBytes: number;
  readonly smallPuts: number;
  readonly rssStreamBytes: number;
  readonly repeats: number;
  readonly loopDevices: boolean;
  /** Each fio run's length; fio always runs 3 rounds of its four workloads (median of 3). */
  readonly fioRuntimeSeconds: number;
  /** Alternating rounds of the CLI workloads (bench/cli.ts), and how many CLI puts each starts at once. */
  readonly cliRounds: number;
  readonly cliConcurrentPuts: number;
}

const MODES: Record<Mode['name'], Mode> = {
  full: { name: 'full', deviceBytes: 1536 * MiB, rawBytesPerDevice: 256 * MiB, largeTotalBytes: 1024 * MiB, largeObjectBytes: 64 * MiB, smallPuts: 2048, rssStreamBytes: 10 * 1024 * MiB, repeats: 3, loopDevices: true, fioRuntimeSeconds: 4, cliRounds: 5, cliConcurrentPuts: CONCURRENT_CLI_PUTS },
  quick: { name: 'quick', deviceBytes: 768 * MiB, rawBytesPerDevice: 64 * MiB, largeTotalBytes: 256 * MiB, largeObjectBytes: 64 * MiB, smallPuts: 512, rssStreamBytes: 1024 * MiB, repeats: 1, loopDevices: true, fioRuntimeSeconds: 1, cliRounds: 3, cliConcurrentPuts: CONCURRENT_CLI_PUTS },
  smoke: { name: 'smoke', deviceBytes: 96 * MiB, rawBytesPerDevice: 4 * MiB, largeTotalBytes: 8 * MiB, largeObjectBytes: 4 * MiB, smallPuts: 32, rssStreamBytes: 16 * MiB, repeats: 1, loopDevices: false, fioRuntimeSeconds: 0, cliRounds: 1, cliConcurrentPuts: 4 },
};

const FIO_REPEATS = 3;
const EXTENT_BYTES = MiB;
const K = 4;
const M = 2;
const RECORD_ALIGNMENT_BYTES = 4096;

/**
 * The bytes one fragment record of a large put occupies on a device: its header (fixed part and the key) and one
 * shard of a 1 MiB extent, rounded up to 4 KiB (as src/disk/device/device-disk.ts lays a record out): 260 KiB.
 */
function poolRecordBytes(): number {
  const keyBytes = Buffer.byteLength('large/1/0');
  const raw = FRAGMENT_HEADER_FIXED_BYTES + keyBytes + EXTENT_BYTES / K;
  return Math.ceil(raw / RECORD_ALIGNMENT_BYTES) * RECORD_ALIGNMENT_BYTES;
}

/** Aggregate sequential O_DIRECT bandwidth of all devices at once, with dd (coreutils, queue depth 1), in bytes per second. */
async function ddBandwidth(devices: ReadonlyArray<string>, bytesPerDevice: number, direction: 'write' | 'read'): Promise<number> {
  const count = Math.max(1, Math.floor(bytesPerDevice / MiB));
  const started = process.hrtime.bigint();
  await Promise.all(
    devices.map((device) =>
      direction === 'write'
        ? run('dd', ['if=/dev/zero', `of=${device}`, 'bs=1M', `count=${count}`, 'oflag=direct', 'conv=notrunc,fdatasync', 'status=none'])
        : run('dd', [`if=${device}`, 'of=/dev/null', 'bs=1M', `count=${count}`, 'iflag=direct', 'status=none']),
    ),
  );
  return (count * MiB * devices.length) / seconds(started);
}

/** Synchronous 4 KiB writes per second on one device (each write followed by its flush). */
async function rawFlushRate(device: string, writes: number): Promise<number> {
  const started = process.hrtime.bigint();
  await run('dd', ['if=/dev/zero', `of=${device}`, 'bs=4k', `count=${writes}`, 'oflag=direct,dsync', 'conv=notrunc', 'status=none']);
  return writes / seconds(started);
}

async function codecThroughput(policyText: string): Promise<{ encodeMBps: number; decodeMBps: number }> {
  const codec = createCodec(parsePolicy(policyText));
  const extent = randomBytes(4 * MiB);
  const rounds = 20;
  let started = process.hrtime.bigint();
  let fragments: Buffer[] = [];
  for (let round = 0; round < rounds; round += 1) fragments = await codec.encode(extent);
  const encodeMBps = (rounds * extent.length) / MiB / seconds(started);
  // Decode with two data fragments lost: real Reed–Solomon work, not the copy-only fast path.
  const damaged = fragments.map((fragment, index) => (index < 2 ? undefined : fragment));
  started = process.hrtime.bigint();
  for (let round = 0; round < rounds; round += 1) await codec.decode(damaged, extent.length);
  const decodeMBps = (rounds * extent.length) / MiB / seconds(started);
  return { encodeMBps, decodeMBps };
}

/** The run whose encode rate is the median of `repeats`. */
async function medianOf(repeats: number, once: () => Promise<{ encodeMBps: number; decodeMBps: number }>): Promise<{ encodeMBps: number; decodeMBps: number }> {
  const runs = [];
  for (let index = 0; index < repeats; index += 1) runs.push(await once());
  runs.sort((a, b) => a.encodeMBps - b.encodeMBps);
  return runs[Math.floor(runs.length / 2)] as { encodeMBps: number; decodeMBps: number };
}

function hashGBps(): number {
  const data = randomBytes(64 * MiB);
  const started = process.hrtime.bigint();
  for (let round = 0; round < 8; round += 1) checksum128(data);
  return (8 * data.length) / 1e9 / seconds(started);
}

function catalogCommitsPerSecond(directory: string): number {
  const file = path.join(directory, `commits-${Date.now()}-${Math.random()}.sqlite`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)');
  const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
  const commits = 500;
  const started = process.hrtime.bigint();
  for (let index = 0; index < commits; index += 1) db.transaction(() => insert.run(`k${index}`, Buffer.alloc(64)))();
  const rate = commits / seconds(started);
  db.close();
  return rate;
}

/** Peak RSS of a child process that puts a stream of `bytes` into a pool on directory disks. */
async function peakRssMiB(root: string, bytes: number): Promise<number> {
  const child = fileURLToPath(new URL('./rss-child.js', import.meta.url));
  const { stdout } = await run(process.execPath, [child, root, String(bytes)], { maxBuffer: 1024 * 1024 });
  return Number(stdout.trim());
}

const TORTURE_SECONDS = 600;

/** The torture test's long mode: its report, op counts first; exits 1 when the checker or the audit found something. */
async function tortureMode(args: ReadonlyArray<string>): Promise<void> {
  const valueOf = (flag: string) => {
    const index = args.indexOf(flag);
    return index < 0 ? undefined : args[index + 1];
  };
  const report = await runTorture({
    seconds: Number(valueOf('--seconds') ?? TORTURE_SECONDS),
    seed: Number(valueOf('--seed') ?? Math.floor(Math.random() * 1_000_000)),
    disks: isRoot() ? 'loop' : 'image',
    clients: 24,
    cliClients: 2,
    keys: 8,
    log: args.includes('--json') ? undefined : (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  process.exitCode = report.passed ? 0 : 1;
}

/** What every pool figure is divided by: fio's limit (loop devices), or dd's when fio was skipped (--smoke). */
interface Limit {
  readonly source: 'fio' | 'dd';
  readonly writeBytesPerSecond: number;
  readonly readBytesPerSecond: number;
  /** fio at the pool's record size only (the stricter limit is the better of record size and 1 MiB). */
  readonly writeAtRecordBytesPerSecond: number | null;
  readonly readAtRecordBytesPerSecond: number | null;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--torture')) return tortureMode(args);
  const peerIndex = args.indexOf('--peer');
  if (peerIndex >= 0) {
    const peer = args[peerIndex + 1];
    if (peer !== 'ceph') throw new Error(`--peer ${peer ?? ''}: the only peer is ceph (npm run bench -- --peer ceph)`);
    if (args.includes('--smoke')) {
      // Ceph needs root, loop devices and minutes; the smoke run is for the test suite. Say so, do not fail.
      process.stderr.write('shardpool bench: --peer ceph skipped in --smoke (it needs root, loop devices and a Ceph cluster; run npm run bench -- --peer ceph as root)\n');
      if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ mode: 'smoke', peer: 'ceph', skipped: 'needs root, loop devices and a Ceph cluster' })}\n`);
      return;
    }
    return peerCephMode({ quick: args.includes('--quick'), json: args.includes('--json'), rounds: roundsArgument(args) });
  }
  if (args.includes('--help')) {
    process.stdout.write(HELP);
    return;
  }
  const mode = MODES[args.includes('--smoke') ? 'smoke' : args.includes('--quick') ? 'quick' : 'full'];
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  if (only !== undefined && only !== 'cli') throw new Error(`--only ${only}: the only part that runs alone is cli (npm run bench -- --only cli [--quick])`);
  const json = args.includes('--json');
  if (mode.loopDevices && !isRoot()) {
    process.stderr.write('shardpool bench: needs root to create loop devices (run with sudo, or --smoke for a tiny run on image files)\n');
    process.exitCode = 2;
    return;
  }
  const log = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  // A skipped part is always said, on stderr when stdout carries the JSON.
  const note = (line: string) => (json ? process.stderr.write(`shardpool bench: ${line}\n`) : process.stdout.write(`${line}\n`));
  const rig = new Rig(await fs.mkdtemp(path.join(os.tmpdir(), 'shardpool-bench-')), { deviceBytes: mode.deviceBytes, loopDevices: mode.loopDevices });
  try {
    if (only === 'cli') {
      await rig.createDevices(6);
      const cli = await cliOnFreshPool(rig, mode, log);
      if (json) process.stdout.write(`${JSON.stringify({ mode: mode.name, only: 'cli', machine: machineFacts(), cli }, null, 2)}\n`);
      else process.stdout.write(`\n${formatCli(cli)}\n`);
      return;
    }
    // CPU microbenchmarks first, before the I/O phases leave the machine busy with writeback.
    const rs42 = await medianOf(3, () => codecThroughput('ec:4+2'));
    const rs83 = await medianOf(3, () => codecThroughput('ec:8+3'));
    const hash = (await measure(3, async () => hashGBps())).median;
    const commits = (await measure(3, async () => catalogCommitsPerSecond(rig.root))).median;
    await rig.createDevices(6);
    log(`shardpool bench (${mode.name}): 6 ${mode.loopDevices ? 'loop devices (512/4096-byte sectors alternating, direct I/O)' : 'device image files'}, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}`);
    let fio: FioLimit | undefined;
    if (mode.loopDevices) {
      fio = await measureFioLimit(rig.devices, { recordBytes: poolRecordBytes(), regionBytes: mode.rawBytesPerDevice, runtimeSeconds: mode.fioRuntimeSeconds, repeats: FIO_REPEATS, log });
      const f = (figure: Figure) => `${(figure.median / MiB).toFixed(0)} (${(figure.min / MiB).toFixed(0)}–${(figure.max / MiB).toFixed(0)})`;
      log(`fio (${fio.engine}, iodepth ${fio.iodepth}, O_DIRECT, 6 devices at once, MiB/s): write ${f(fio.writeAtRecord)} at ${fio.recordBytes / 1024} KiB, ${f(fio.write1MiB)} at 1 MiB; read ${f(fio.readAtRecord)} at ${fio.recordBytes / 1024} KiB, ${f(fio.read1MiB)} at 1 MiB`);
    } else {
      note('fio skipped in --smoke (image files without root, and a seconds-long run): ratios are to dd at queue depth 1, not the real limit');
    }
    const ddWrite = await measure(mode.repeats, () => ddBandwidth(rig.devices, mode.rawBytesPerDevice, 'write'));
    const ddRead = await measure(mode.repeats, () => ddBandwidth(rig.devices, mode.rawBytesPerDevice, 'read'));
    const rawFlushes = await measure(mode.repeats, () => rawFlushRate(rig.devices[0] as string, mode.name === 'smoke' ? 50 : 500));
    log(`dd (1 MiB O_DIRECT, queue depth 1 per device): write ${(ddWrite.median / MiB).toFixed(0)} MiB/s, read ${(ddRead.median / MiB).toFixed(0)} MiB/s (6 devices at once), ${rawFlushes.median.toFixed(0)} synced 4 KiB writes/s on one`);
    const limit: Limit = fio
      ? { source: 'fio', writeBytesPerSecond: fio.write.median, readBytesPerSecond: fio.read.median, writeAtRecordBytesPerSecond: fio.writeAtRecord.median, readAtRecordBytesPerSecond: fio.readAtRecord.median }
      : { source: 'dd', writeBytesPerSecond: ddWrite.median, readBytesPerSecond: ddRead.median, writeAtRecordBytesPerSecond: null, readAtRecordBytesPerSecond: null };

    const poolDir = path.join(rig.root, 'pool');
    await makePool(poolDir, rig.devices, 'device');
    const pool = await openPool(poolDir);
    const large = { totalBytes: mode.largeTotalBytes, objectBytes: mode.largeObjectBytes };
    let results: { put: Figure; get: Figure; small: Figure; perFlush: number; scrubRate: number; degraded: Figure; rebuildRate: number; failedUsed: number };
    let manifestCost: ManifestCost | undefined;
    let importDisks: string[] = [];
    try {
      // Each round reads back what it just wrote, as the raw baseline reads what it just wrote: the host under these
      // loop devices may cache recent writes, and both sides must meet it alike.
      let round = 0;
      const putRates: number[] = [];
      const getRates: number[] = [];
      for (let repeat = 0; repeat < mode.repeats; repeat += 1) {
        round += 1;
        putRates.push(await largePut(pool, large, round));
        getRates.push(await largeGet(pool, large, round));
      }
      const put = figureOf(putRates);
      const get = figureOf(getRates);
      let getRound = 0;
      // Scrub while the pool holds the large objects only: sequential verification throughput, not small-object IOPS.
      const scrubStarted = process.hrtime.bigint();
      const scrub = await scrubPool(pool, { repair: false, restart: true });
      const scrubRate = scrub.bytesRead / seconds(scrubStarted);
      const small = await measure(mode.repeats, async () => (await smallPuts(pool, mode.smallPuts, `small/${(round += 1)}`)).putsPerSecond);
      const perFlush = (await smallPuts(pool, mode.smallPuts, 'small/flush')).putsPerFlush;
      // What the commit records on the disks cost: the same puts with and without them, rounds alternating.
      manifestCost = await measureManifestCost(pool, { rounds: Math.max(3, mode.repeats), smallPuts: mode.smallPuts, largeObjectBytes: mode.largeObjectBytes, largeObjects: Math.max(1, Math.floor(mode.largeTotalBytes / mode.largeObjectBytes / 2)) });
      // Degraded: one device failed (reads rebuild around it), then rebuilt by draining it onto... the others are
      // full-width for ec:4+2, so the rebuild target is a seventh disk added now.
      await pool.failDisk('1');
      const degraded = await measure(mode.repeats, async () => largeGet(pool, large, 1 + ((getRound += 1) % mode.repeats)));
      const failedUsed = (await pool.catalog.diskUsage()).get(1)?.storedBytes ?? 0;
      const spare = path.join(rig.root, 'spare.img');
      await fs.writeFile(spare, '');
      await fs.truncate(spare, mode.deviceBytes);
      await pool.addDisk(spare, { device: true, force: true, confirm: async () => true });
      const rebuildStarted = process.hrtime.bigint();
      await drainDisk(pool, '1', { forget: false });
      const rebuildRate = failedUsed / seconds(rebuildStarted);
      results = { put, get, small, perFlush, scrubRate, degraded, rebuildRate, failedUsed };
      importDisks = pool.listMembers().filter((member) => member.row.state === 'healthy').map((member) => member.row.path);
    } finally {
      await pool.close();
    }
    // And what they buy: the pool rebuilt from its disks alone.
    const importCost = await measureImport(importDisks, rig.root);
    for (const line of formatManifestCost(manifestCost as ManifestCost, importCost)) log(line);

    // The paths users run: CLI processes beside node -e 0 and beside the same put in-process, on a fresh pool.
    const cli = await cliOnFreshPool(rig, mode, log);

    // The catalog engines side by side, on the same devices (each round remakes the pool on them), rounds alternating.
    const catalogEngines: CatalogEnginesReport = await measureCatalogEngines({ root: rig.root, devices: rig.devices, putsPerRound: mode.smallPuts, rounds: Math.max(3, mode.repeats), log, note });

    // The other peer: the same workloads on directory disks on ext4 made on the same devices.
    let directorySmall: Figure | undefined;
    let directoryPut: Figure | undefined;
    if (mode.loopDevices) {
      const dirs: string[] = [];
      for (const [index, device] of rig.devices.entries()) {
        await run('wipefs', ['--all', '--quiet', device]);
        // nodiscard: mkfs would otherwise punch the images full of holes again (see makePool).
        await run('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard', device]);
        const mount = path.join(rig.root, `mnt${index}`);
        await fs.mkdir(mount);
        await run('mount', [device, mount]);
        rig.mounts.push(mount);
        dirs.push(mount);
      }
      const dirPoolDir = path.join(rig.root, 'dir-pool');
      for (const dir of dirs) await fs.rm(path.join(dir, 'lost+found'), { recursive: true, force: true });
      await makePool(dirPoolDir, dirs, 'directory');
      const dirPool = await openPool(dirPoolDir);
      try {
        let round = 100;
        directoryPut = await measure(mode.repeats, async () => largePut(dirPool, large, (round += 1)));
        directorySmall = await measure(mode.repeats, async () => (await smallPuts(dirPool, mode.smallPuts, `small/${(round += 1)}`)).putsPerSecond);
      } finally {
        await dirPool.close();
      }
    }

    const rss = await peakRssMiB(path.join(rig.root, 'rss'), mode.rssStreamBytes);

    const r = results;
    const ratios = {
      largePut: r.put.median / ((limit.writeBytesPerSecond * K) / (K + M)),
      largeGet: r.get.median / limit.readBytesPerSecond,
      degradedGet: r.degraded.median / limit.readBytesPerSecond,
      smallPutsPerFlush: r.perFlush,
      deviceVsDirectorySmallPut: directorySmall ? r.small.median / directorySmall.median : null,
      deviceVsDirectoryLargePut: directoryPut ? r.put.median / directoryPut.median : null,
      scrubVsRawRead: r.scrubRate / limit.readBytesPerSecond,
      // A raw copy of the failed device's used bytes: read them at one device's read rate, write at one device's.
      rebuildVsRawCopy: r.rebuildRate / Math.min(limit.readBytesPerSecond / 6, limit.writeBytesPerSecond / 6),
    };
    // The same figures against fio at the pool's own request size (the limit above is the better block size).
    const ratiosAtRecordSize =
      limit.writeAtRecordBytesPerSecond !== null && limit.readAtRecordBytesPerSecond !== null
        ? {
            largePut: r.put.median / ((limit.writeAtRecordBytesPerSecond * K) / (K + M)),
            largeGet: r.get.median / limit.readAtRecordBytesPerSecond,
            degradedGet: r.degraded.median / limit.readAtRecordBytesPerSecond,
            scrubVsRawRead: r.scrubRate / limit.readAtRecordBytesPerSecond,
          }
        : null;
    const report = {
      mode: mode.name,
      machine: machineFacts(),
      limit: { source: limit.source, writeMiBps: limit.writeBytesPerSecond / MiB, readMiBps: limit.readBytesPerSecond / MiB },
      fio: fio
        ? {
            engine: fio.engine,
            iodepth: fio.iodepth,
            recordBytes: fio.recordBytes,
            runtimeSeconds: fio.runtimeSeconds,
            repeats: fio.repeats,
            writeAtRecordMiBps: scale(fio.writeAtRecord, MiB),
            readAtRecordMiBps: scale(fio.readAtRecord, MiB),
            write1MiBMiBps: scale(fio.write1MiB, MiB),
            read1MiBMiBps: scale(fio.read1MiB, MiB),
          }
        : { skipped: 'fio is not run in --smoke (image files without root); ratios are to dd' },
      raw: { ddWriteMiBps: scale(ddWrite, MiB), ddReadMiBps: scale(ddRead, MiB), syncedWritesPerSecond: rawFlushes },
      largePutMiBps: scale(r.put, MiB),
      largeGetMiBps: scale(r.get, MiB),
      degradedGetMiBps: scale(r.degraded, MiB),
      smallPutsPerSecond: r.small,
      directorySmallPutsPerSecond: directorySmall ?? null,
      directoryLargePutMiBps: directoryPut ? scale(directoryPut, MiB) : null,
      scrubMiBps: r.scrubRate / MiB,
      rebuildMiBps: r.rebuildRate / MiB,
      rsEncodeMBpsPerCore: rs42.encodeMBps,
      rsDecodeMBps: { 'ec:4+2': rs42.decodeMBps, 'ec:8+3': rs83.decodeMBps },
      rsEncodeMBps83: rs83.encodeMBps,
      hashGBps: hash,
      catalogCommitsPerSecond: commits,
      catalogEngines,
      versionManifests: { ...manifestCost, import: importCost },
      cli,
      peakRssMiB: rss,
      peakRssStreamBytes: mode.rssStreamBytes,
      ratios,
      ratiosAtRecordSize,
      // Issue 17's targets (ratios to fio).
      targets: {
        largePut: 0.9,
        largeGet: 0.9,
        degradedGet: 0.7,
        smallPutsPerFlush: 20,
        deviceVsDirectorySmallPut: 1.5,
        scrubVsRawRead: 0.9,
        rsEncodeMBpsPerCore: 2000,
        peakRssMiB: 256,
      },
    };
    if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printTable(report);
  } finally {
    await rig.teardown();
  }
}

const HELP = `npm run bench [-- OPTIONS]: the pool beside the physical limit of the same devices (root: loop devices)
  (none)         the full run: fio, dd, large put/get, degraded get, scrub, small puts, rebuild, ext4 peer,
                 the CLI (start-up, put, concurrent puts), the catalog engines, peak RSS
  --quick        the same, smaller (about a minute or two)
  --smoke        seconds, on image files without root (part of npm test; ratios to dd)
  --only cli     only the paths users run (bench/cli.ts), on a pool of its own; with --quick or --smoke
  --json         one JSON object on stdout
  --peer ceph    Ceph BlueStore side by side (root; --quick, --rounds N)
  --torture      the torture test's long mode (--seconds N, --seed S)
`;

function machineFacts(): Record<string, unknown> {
  return { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))) };
}

/** The CLI workloads on a pool made afresh on the rig's six devices (ec:4+2, 1 MiB extents). */
async function cliOnFreshPool(rig: Rig, mode: Mode, log: (line: string) => void): Promise<CliReport> {
  const poolDirectory = path.join(rig.root, `cli-pool-${Date.now()}`);
  await makePool(poolDirectory, rig.devices, 'device', { fillBytes: 256 * MiB });
  return measureCli({ poolDirectory, scratch: rig.root, rounds: mode.cliRounds, largeObjectBytes: mode.largeObjectBytes, concurrentPuts: mode.cliConcurrentPuts, log });
}

function roundsArgument(args: ReadonlyArray<string>): number | undefined {
  const index = args.indexOf('--rounds');
  if (index < 0) return undefined;
  const rounds = Number(args[index + 1]);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 9) throw new Error('--rounds takes 1 to 9');
  return rounds;
}

function printTable(report: Record<string, unknown> & { ratios: Record<string, number | null>; targets: Record<string, number>; limit: { source: string } }): void {
  const rows: Array<[string, string, string]> = [];
  for (const [name, value] of Object.entries(report.ratios)) {
    const target = report.targets[name];
    rows.push([name, value === null ? 'n/a' : value.toFixed(2), target === undefined ? '' : `≥ ${target}`]);
  }
  const rss = report.peakRssMiB as number;
  rows.push(['peakRssMiB', rss.toFixed(0), '≤ 256']);
  rows.push(['rsEncodeMBpsPerCore (4+2)', (report.rsEncodeMBpsPerCore as number).toFixed(0), '≥ 2000']);
  rows.push(['hashGBps', (report.hashGBps as number).toFixed(2), '']);
  rows.push(['catalogCommitsPerSecond', (report.catalogCommitsPerSecond as number).toFixed(0), '']);
  process.stdout.write(`\nratios to ${report.limit.source === 'fio' ? 'fio (iodepth 32, the better of the record size and 1 MiB)' : 'dd (queue depth 1: fio was skipped)'}\n`);
  process.stdout.write('figure                        value     target\n');
  for (const [name, value, target] of rows) process.stdout.write(`${name.padEnd(30)}${value.padEnd(10)}${target}\n`);
  if (report.ratiosAtRecordSize) process.stdout.write(`\nratios to fio at the pool's record size: ${JSON.stringify(report.ratiosAtRecordSize, (_key, value: unknown) => (typeof value === 'number' ? Number(value.toFixed(2)) : value))}\n`);
  process.stdout.write(`\n${formatCatalogEngines(report.catalogEngines as CatalogEnginesReport)}\n`);
  process.stdout.write(`\n${formatCli(report.cli as CliReport)}\n`);
  process.stdout.write(`\nabsolute figures in MiB/s or per second (median, min, max): ${JSON.stringify({ limit: report.limit, fio: report.fio, raw: report.raw, largePutMiBps: report.largePutMiBps, largeGetMiBps: report.largeGetMiBps, degradedGetMiBps: report.degradedGetMiBps, scrubMiBps: report.scrubMiBps, rebuildMiBps: report.rebuildMiBps, smallPutsPerSecond: report.smallPutsPerSecond, directorySmallPutsPerSecond: report.directorySmallPutsPerSecond }, (_key, value: unknown) => (typeof value === 'number' ? Number(value.toFixed(1)) : value))}\n`);
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`shardpool bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
