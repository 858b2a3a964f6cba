// The devices' real limit: fio (Debian's package) on all devices at once, O_DIRECT, a deep queue per device, at the
// pool's record size and at 1 MiB, reading and writing. `--output-format=json` is parsed; the aggregate bandwidth is
// the bytes every job moved over the longest job's runtime (the jobs run side by side).
import { ensureTools, run } from './tools.js';
import { type Figure, figureOf } from './stats.js';

const MiB = 1024 * 1024;

export interface FioOptions {
  readonly direction: 'read' | 'write';
  readonly blockBytes: number;
  readonly iodepth: number;
  /** Each job works on the first `regionBytes` of its device, looping over it until `runtimeSeconds` have passed. */
  readonly regionBytes: number;
  readonly runtimeSeconds: number;
  readonly engine: 'libaio' | 'io_uring';
}

export interface FioRun {
  readonly bytesPerSecond: number;
  readonly iops: number;
  readonly bytes: number;
  readonly runtimeSeconds: number;
}

interface FioJson {
  readonly jobs: ReadonlyArray<{
    readonly jobname: string;
    readonly error: number;
    readonly job_runtime: number;
    readonly read: { readonly io_bytes: number; readonly total_ios: number };
    readonly write: { readonly io_bytes: number; readonly total_ios: number };
  }>;
}

export function fioArguments(devices: ReadonlyArray<string>, options: FioOptions): string[] {
  const global = [
    '--output-format=json',
    `--ioengine=${options.engine}`,
    '--direct=1',
    `--iodepth=${options.iodepth}`,
    `--rw=${options.direction}`,
    `--bs=${options.blockBytes}`,
    `--size=${options.regionBytes}`,
    `--runtime=${options.runtimeSeconds}`,
    '--time_based=1',
    // A write counts once it is on the device: the flush at the end is part of the run, as a put's flush is.
    ...(options.direction === 'write' ? ['--end_fsync=1'] : []),
  ];
  return [...global, ...devices.flatMap((device, index) => [`--name=device${index}`, `--filename=${device}`])];
}

export function parseFio(stdout: string, direction: 'read' | 'write'): FioRun {
  // fio may print a warning line or two before its JSON.
  const start = stdout.indexOf('{');
  if (start < 0) throw new Error(`fio printed no JSON: ${stdout.slice(0, 200)}`);
  const report = JSON.parse(stdout.slice(start)) as FioJson;
  if (report.jobs.length === 0) throw new Error('fio reported no jobs');
  let bytes = 0;
  let ios = 0;
  let runtimeMs = 0;
  for (const job of report.jobs) {
    if (job.error !== 0) throw new Error(`fio job ${job.jobname} failed with error ${job.error}`);
    bytes += job[direction].io_bytes;
    ios += job[direction].total_ios;
    runtimeMs = Math.max(runtimeMs, job.job_runtime);
  }
  if (runtimeMs <= 0 || bytes <= 0) throw new Error('fio moved no bytes');
  const runtimeSeconds = runtimeMs / 1000;
  return { bytesPerSecond: bytes / runtimeSeconds, iops: ios / runtimeSeconds, bytes, runtimeSeconds };
}

export async function runFio(devices: ReadonlyArray<string>, options: FioOptions): Promise<FioRun> {
  const { stdout } = await run('fio', fioArguments(devices, options), { maxBuffer: 64 * MiB });
  return parseFio(stdout, options.direction);
}

export interface FioLimit {
  readonly engine: string;
  readonly iodepth: number;
  readonly recordBytes: number;
  readonly runtimeSeconds: number;
  readonly repeats: number;
  /** Bytes per second, all devices at once. */
  readonly writeAtRecord: Figure;
  readonly readAtRecord: Figure;
  readonly write1MiB: Figure;
  readonly read1MiB: Figure;
  /** The better block size's median for each direction: the limit every pool figure is divided by. */
  readonly write: Figure;
  readonly read: Figure;
}

export async function measureFioLimit(
  devices: ReadonlyArray<string>,
  options: { readonly recordBytes: number; readonly regionBytes: number; readonly runtimeSeconds: number; readonly repeats: number; readonly log: (line: string) => void },
): Promise<FioLimit> {
  await ensureTools(['fio'], ['fio'], options.log);
  const engine = 'libaio';
  const iodepth = 32;
  const values = { writeAtRecord: [] as number[], readAtRecord: [] as number[], write1MiB: [] as number[], read1MiB: [] as number[] };
  // Rounds interleave the four workloads, so a slow moment of the shared machine hits all of them alike.
  for (let repeat = 0; repeat < options.repeats; repeat += 1) {
    for (const [name, direction, blockBytes] of [
      ['writeAtRecord', 'write', options.recordBytes],
      ['readAtRecord', 'read', options.recordBytes],
      ['write1MiB', 'write', MiB],
      ['read1MiB', 'read', MiB],
    ] as const) {
      const result = await runFio(devices, { direction, blockBytes, iodepth, engine, regionBytes: options.regionBytes, runtimeSeconds: options.runtimeSeconds });
      values[name].push(result.bytesPerSecond);
    }
  }
  const writeAtRecord = figureOf(values.writeAtRecord);
  const readAtRecord = figureOf(values.readAtRecord);
  const write1MiB = figureOf(values.write1MiB);
  const read1MiB = figureOf(values.read1MiB);
  return {
    engine,
    iodepth,
    recordBytes: options.recordBytes,
    runtimeSeconds: options.runtimeSeconds,
    repeats: options.repeats,
    writeAtRecord,
    readAtRecord,
    write1MiB,
    read1MiB,
    write: writeAtRecord.median >= write1MiB.median ? writeAtRecord : write1MiB,
    read: readAtRecord.median >= read1MiB.median ? readAtRecord : read1MiB,
  };
}
