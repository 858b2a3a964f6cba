// `npm run bench [-- --quick] [-- --json]`: the pool measured against the physical limit of the same devices, in
// one run, side by side. Needs root for loop devices (it creates and removes them itself). `--smoke` (used by the
// test suite so this file cannot rot) runs every scenario in seconds on device image files without root.
// `--torture [--seconds N] [--seed S]` is the long mode of the torture test (test/torture): 10 minutes of 24 S3 and
// 2 CLI clients with maintenance on loop devices (device image files without root), then the checker and the audit.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { DeviceDisk } from '../src/disk/device/device-disk.js';
import { drainDisk } from '../src/maintain/drain.js';
import { scrubPool } from '../src/maintain/scrub.js';
import { Pool } from '../src/pool/pool.js';
import { checksum128 } from '../src/redundancy/checksum.js';
import { createCodec } from '../src/redundancy/create-codec.js';
import { parsePolicy } from '../src/redundancy/policy.js';
import { formatReport, runTorture } from '../test/torture/workload.js';

const run = promisify(execFile);
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
}

const MODES: Record<Mode['name'], Mode> = {
  full: { name: 'full', deviceBytes: 1536 * MiB, rawBytesPerDevice: 256 * MiB, largeTotalBytes: 1024 * MiB, largeObjectBytes: 64 * MiB, smallPuts: 2048, rssStreamBytes: 10 * 1024 * MiB, repeats: 3, loopDevices: true },
  quick: { name: 'quick', deviceBytes: 768 * MiB, rawBytesPerDevice: 64 * MiB, largeTotalBytes: 256 * MiB, largeObjectBytes: 64 * MiB, smallPuts: 512, rssStreamBytes: 1024 * MiB, repeats: 1, loopDevices: true },
  smoke: { name: 'smoke', deviceBytes: 96 * MiB, rawBytesPerDevice: 4 * MiB, largeTotalBytes: 8 * MiB, largeObjectBytes: 4 * MiB, smallPuts: 32, rssStreamBytes: 16 * MiB, repeats: 1, loopDevices: false },
};

interface Figure {
  median: number;
  min: number;
  max: number;
}

async function measure(repeats: number, once: () => Promise<number>): Promise<Figure> {
  const values: number[] = [];
  for (let index = 0; index < repeats; index += 1) values.push(await once());
  return figureOf(values);
}

function figureOf(values: ReadonlyArray<number>): Figure {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)] as number, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

function seconds(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9;
}

class Rig {
  readonly devices: string[] = [];
  private readonly loops: string[] = [];

  constructor(
    readonly root: string,
    readonly mode: Mode,
  ) {}

  async createDevices(count: number): Promise<void> {
    const images = Array.from({ length: count }, (_, index) => path.join(this.root, `device${index}.img`));
    for (const image of images) {
      await fs.writeFile(image, '');
      await fs.truncate(image, this.mode.deviceBytes);
    }
    // A sparse image is not a disk: its first write to each block allocates it in the filesystem underneath (about
    // half the speed of writing it again, measured here). Filled, every block exists, as on a disk.
    if (this.mode.loopDevices) await Promise.all(images.map((image) => fillWithZeros(image, 0, this.mode.deviceBytes)));
    for (const [index, image] of images.entries()) {
      if (this.mode.loopDevices) {
        const sector = index % 2 === 0 ? '512' : '4096';
        const { stdout } = await run('losetup', ['--find', '--show', '--sector-size', sector, '--direct-io=on', image]);
        this.loops.push(stdout.trim());
        this.devices.push(stdout.trim());
      } else {
        this.devices.push(image);
      }
    }
  }

  async teardown(): Promise<void> {
    for (const mount of this.mounts.splice(0)) await run('umount', [mount]).catch(() => undefined);
    for (const loop of this.loops.splice(0)) await run('losetup', ['-d', loop]).catch(() => undefined);
    await fs.rm(this.root, { recursive: true, force: true });
  }

  readonly mounts: string[] = [];
}

/** Aggregate sequential O_DIRECT bandwidth of all devices at once, with dd (coreutils), in bytes per second. */
async function rawBandwidth(devices: string[], bytesPerDevice: number, direction: 'write' | 'read'): Promise<number> {
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

/** Writes zeros over a byte range of a file or device, in 4 MiB direct writes (bypassing the page cache). */
async function fillWithZeros(target: string, offsetBytes: number, lengthBytes: number): Promise<void> {
  await run('dd', ['if=/dev/zero', `of=${target}`, 'bs=4M', `seek=${offsetBytes}`, `count=${lengthBytes}`, 'iflag=count_bytes', 'oflag=seek_bytes,direct', 'conv=notrunc,fdatasync', 'status=none']);
}

async function openPool(directory: string): Promise<Pool> {
  return Pool.open(directory, { access: 'write', lockWaitMs: 10_000 });
}

async function makePool(directory: string, disks: string[], kind: 'device' | 'directory'): Promise<void> {
  await Pool.create(directory, { policy: parsePolicy('ec:4+2'), extentSizeBytes: MiB });
  const pool = await openPool(directory);
  const dataRegions: Array<{ device: string; offsetBytes: number; lengthBytes: number }> = [];
  try {
    for (const disk of disks) {
      await pool.addDisk(disk, kind === 'device' ? { device: true, force: true, confirm: async () => true } : { device: false });
    }
    for (const member of pool.listMembers()) {
      if (member.disk instanceof DeviceDisk) dataRegions.push({ device: member.disk.path, ...member.disk.dataRegion });
    }
  } finally {
    await pool.close();
  }
  // Adding a device discards its data region, and a loop device turns a discard into a hole in its image file: the
  // pool would then write into holes while the raw baseline wrote over allocated blocks. Zeros written back over the
  // (empty) data region make both write to blocks that exist, as on a disk (where TRIM costs later writes nothing).
  if (kind === 'device' && disks.every((disk) => disk.startsWith('/dev/'))) {
    await Promise.all(dataRegions.map((region) => fillWithZeros(region.device, region.offsetBytes, region.lengthBytes)));
  }
}

function* chunksOf(totalBytes: number, chunkBytes: number, seed: number): Generator<Buffer> {
  const block = randomBytes(chunkBytes);
  block.writeUInt32LE(seed, 0);
  for (let done = 0; done < totalBytes; done += chunkBytes) yield block.subarray(0, Math.min(chunkBytes, totalBytes - done));
}

async function largePut(pool: Pool, mode: Mode, round: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let offset = 0, index = 0; offset < mode.largeTotalBytes; offset += mode.largeObjectBytes, index += 1) {
    await pool.put(`large/${round}/${index}`, chunksOf(mode.largeObjectBytes, 4 * MiB, index));
  }
  return mode.largeTotalBytes / seconds(started);
}

async function largeGet(pool: Pool, mode: Mode, round: number): Promise<number> {
  const started = process.hrtime.bigint();
  let bytes = 0;
  for (let offset = 0, index = 0; offset < mode.largeTotalBytes; offset += mode.largeObjectBytes, index += 1) {
    for await (const chunk of (await pool.openObject(`large/${round}/${index}`)).chunks()) bytes += chunk.length;
  }
  return bytes / seconds(started);
}

/** 4 KiB puts, 32 at a time; returns puts per second and acknowledged puts per device flush. */
async function smallPuts(pool: Pool, count: number, prefix: string): Promise<{ putsPerSecond: number; putsPerFlush: number }> {
  const devices = pool.listMembers().map((member) => member.disk).filter((disk): disk is DeviceDisk => disk instanceof DeviceDisk);
  const flushesBefore = devices.reduce((sum, disk) => sum + disk.stats.flushes, 0);
  const started = process.hrtime.bigint();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < count) {
        const index = next;
        next += 1;
        await pool.put(`${prefix}/${index}`, [randomBytes(4096)]);
      }
    }),
  );
  const elapsed = seconds(started);
  const flushes = devices.reduce((sum, disk) => sum + disk.stats.flushes, 0) - flushesBefore;
  // Each put touches every device once (ec:4+2 on 6 devices): flushes per device = flushes / devices.
  const perDeviceFlushes = devices.length === 0 ? 0 : flushes / devices.length;
  return { putsPerSecond: count / elapsed, putsPerFlush: perDeviceFlushes === 0 ? 0 : count / perDeviceFlushes };
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
    disks: process.getuid?.() === 0 ? 'loop' : 'image',
    clients: 24,
    cliClients: 2,
    keys: 8,
    log: args.includes('--json') ? undefined : (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  process.exitCode = report.passed ? 0 : 1;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--torture')) return tortureMode(args);
  const mode = MODES[args.includes('--smoke') ? 'smoke' : args.includes('--quick') ? 'quick' : 'full'];
  const json = args.includes('--json');
  if (mode.loopDevices && process.getuid?.() !== 0) {
    process.stderr.write('shardpool bench: needs root to create loop devices (run with sudo, or --smoke for a tiny run on image files)\n');
    process.exitCode = 2;
    return;
  }
  const log = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`);
  };
  const rig = new Rig(await fs.mkdtemp(path.join(os.tmpdir(), 'shardpool-bench-')), mode);
  try {
    // CPU microbenchmarks first, before the I/O phases leave the machine busy with writeback.
    const rs42 = await medianOf(3, () => codecThroughput('ec:4+2'));
    const rs83 = await medianOf(3, () => codecThroughput('ec:8+3'));
    const hash = (await measure(3, async () => hashGBps())).median;
    const commits = (await measure(3, async () => catalogCommitsPerSecond(rig.root))).median;
    await rig.createDevices(6);
    log(`shardpool bench (${mode.name}): 6 ${mode.loopDevices ? 'loop devices (512/4096-byte sectors alternating, direct I/O)' : 'device image files'}, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}`);
    const rawWrite = await measure(mode.repeats, () => rawBandwidth(rig.devices, mode.rawBytesPerDevice, 'write'));
    const rawRead = await measure(mode.repeats, () => rawBandwidth(rig.devices, mode.rawBytesPerDevice, 'read'));
    const rawFlushes = await measure(mode.repeats, () => rawFlushRate(rig.devices[0] as string, mode.name === 'smoke' ? 50 : 500));
    log(`raw: write ${(rawWrite.median / MiB).toFixed(0)} MiB/s, read ${(rawRead.median / MiB).toFixed(0)} MiB/s (6 devices at once), ${rawFlushes.median.toFixed(0)} synced 4 KiB writes/s on one`);

    const poolDir = path.join(rig.root, 'pool');
    await makePool(poolDir, rig.devices, 'device');
    const pool = await openPool(poolDir);
    let results: Record<string, unknown>;
    try {
      // Each round reads back what it just wrote, as the raw baseline reads what dd just wrote: the host under these
      // loop devices may cache recent writes, and both sides must meet it alike.
      let round = 0;
      const putRates: number[] = [];
      const getRates: number[] = [];
      for (let repeat = 0; repeat < mode.repeats; repeat += 1) {
        round += 1;
        putRates.push(await largePut(pool, mode, round));
        getRates.push(await largeGet(pool, mode, round));
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
      // Degraded: one device failed (reads rebuild around it), then rebuilt by draining it onto... the others are
      // full-width for ec:4+2, so the rebuild target is a seventh disk added now.
      await pool.failDisk('1');
      const degraded = await measure(mode.repeats, async () => largeGet(pool, mode, 1 + ((getRound += 1) % mode.repeats)));
      const failedUsed = (await pool.catalog.diskUsage()).get(1)?.storedBytes ?? 0;
      const spare = path.join(rig.root, 'spare.img');
      await fs.writeFile(spare, '');
      await fs.truncate(spare, mode.deviceBytes);
      await pool.addDisk(spare, { device: true, force: true, confirm: async () => true });
      const rebuildStarted = process.hrtime.bigint();
      await drainDisk(pool, '1', { forget: false });
      const rebuildRate = failedUsed / seconds(rebuildStarted);
      results = { put, get, small, perFlush, scrubRate, degraded, rebuildRate, failedUsed };
    } finally {
      await pool.close();
    }

    // The peer: the same workloads on directory disks on ext4 made on the same devices.
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
        directoryPut = await measure(mode.repeats, async () => largePut(dirPool, mode, (round += 1)));
        directorySmall = await measure(mode.repeats, async () => (await smallPuts(dirPool, mode.smallPuts, `small/${(round += 1)}`)).putsPerSecond);
      } finally {
        await dirPool.close();
      }
    }

    const rss = await peakRssMiB(path.join(rig.root, 'rss'), mode.rssStreamBytes);

    const r = results as { put: Figure; get: Figure; small: Figure; perFlush: number; scrubRate: number; degraded: Figure; rebuildRate: number; failedUsed: number };
    const k = 4;
    const m = 2;
    const ratios = {
      largePut: r.put.median / ((rawWrite.median * k) / (k + m)),
      largeGet: r.get.median / rawRead.median,
      degradedGet: r.degraded.median / rawRead.median,
      smallPutsPerFlush: r.perFlush,
      deviceVsDirectorySmallPut: directorySmall ? r.small.median / directorySmall.median : null,
      deviceVsDirectoryLargePut: directoryPut ? r.put.median / directoryPut.median : null,
      scrubVsRawRead: r.scrubRate / rawRead.median,
      // A raw copy of the failed device's used bytes: read them at one device's read rate, write at one device's.
      rebuildVsRawCopy: r.rebuildRate / Math.min(rawRead.median / 6, rawWrite.median / 6),
    };
    const report = {
      mode: mode.name,
      machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version },
      raw: { writeMiBps: scale(rawWrite, MiB), readMiBps: scale(rawRead, MiB), syncedWritesPerSecond: rawFlushes },
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
      peakRssMiB: rss,
      peakRssStreamBytes: mode.rssStreamBytes,
      ratios,
      targets: {
        largePut: 0.8,
        largeGet: 0.8,
        degradedGet: 0.6,
        smallPutsPerFlush: 10,
        deviceVsDirectorySmallPut: 1.5,
        scrubVsRawRead: 0.8,
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

function scale(figure: Figure, unit: number): Figure {
  return { median: figure.median / unit, min: figure.min / unit, max: figure.max / unit };
}

function printTable(report: Record<string, unknown> & { ratios: Record<string, number | null>; targets: Record<string, number> }): void {
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
  process.stdout.write('\nfigure                        value     target\n');
  for (const [name, value, target] of rows) process.stdout.write(`${name.padEnd(30)}${value.padEnd(10)}${target}\n`);
  process.stdout.write(`\nraw and absolute figures (median, min, max): ${JSON.stringify({ raw: report.raw, largePutMiBps: report.largePutMiBps, largeGetMiBps: report.largeGetMiBps, degradedGetMiBps: report.degradedGetMiBps, smallPutsPerSecond: report.smallPutsPerSecond, directorySmallPutsPerSecond: report.directorySmallPutsPerSecond })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`shardpool bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
