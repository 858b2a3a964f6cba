// The torture test's workload: a daemon over a small erasure-coded pool, many AWS SDK clients and a few CLI clients
// hammering a handful of hot keys with every kind of write and read, and maintenance (scrub --repair, defrag, drain
// with a replacement added first, background scrub) beside them. Every operation goes into one history with its
// start and end; when the time is up the load stops, every key is read back, and the history goes to the checker.
// Then the pool itself is audited: scrub, recover, every fragment verified, the allocators against the catalog.
// Choices come from a PRNG seeded per client, so a seed reproduces the workload (the interleaving is the machine's).
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { runCli, runCliOk, type CliResult } from '../support/cli.js';
import { addUser, startDaemon, type AfterHooks, type RunningDaemon } from '../support/daemon.js';
import { createLoopDevice } from '../support/loop-device.js';
import { auditAllocators, auditLeftovers, auditPool } from '../support/pool-audit.js';
import { seededRandom } from '../support/seeded-random.js';
import { checkHistory, type HistoryOp, type Violation } from './checker.js';
import { ABSENT, observe, segmentBytes, valueOf, VALUE_BLOCK_BYTES, type Observation, type Segment } from './values.js';

export type DiskKind = 'directory' | 'image' | 'loop';

export interface TortureOptions {
  readonly seconds: number;
  readonly seed: number;
  readonly disks: DiskKind;
  /** AWS SDK clients. */
  readonly clients: number;
  /** Clients running `shardpool put/get/rm` through the command socket. */
  readonly cliClients: number;
  /** Hot keys, 2 to 100 (named k00, k01, …: copies go from a key to a later one in name order). */
  readonly keys: number;
  /** Progress lines (the seed first); silent when absent. */
  readonly log?: (line: string) => void;
  /** Leave the pool directory (and image files) of a failed run behind for inspection; loop devices still go. */
  readonly keepOnFailure?: boolean;
  /** Where the pool's catalog lives (`init --catalog …`); the embedded SQLite catalog when absent. */
  readonly catalogArgs?: ReadonlyArray<string>;
}

export interface TortureReport {
  readonly options: TortureOptions;
  readonly reproduce: string;
  readonly durationMs: number;
  /** Operations by kind and outcome, e.g. "s3 put ok", "cli get 404", "maintenance scrub --repair ok". */
  readonly counts: Record<string, number>;
  readonly readsChecked: number;
  readonly violations: Violation[];
  /** Maintenance that failed or found problems while the load ran. */
  readonly maintenanceProblems: string[];
  /** What the audit after the run found: scrub, recover, fragments, allocators, the final listing. */
  readonly finalProblems: string[];
  /** Requests that failed (maybe applied; the checker allows for them), first few, with what the client was told. */
  readonly failedRequests: string[];
  /** Error lines of the daemon's log (first few). */
  readonly daemonErrors: string[];
  readonly passed: boolean;
  /** Where the history was saved when the run failed. */
  readonly historyFile: string | undefined;
  /** The pool directory, when a failed run kept it. */
  readonly keptPool: string | undefined;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const BUCKET = 'torture';
const EXTENT_BYTES = 64 * KiB;
const POLICY = 'ec:2+1';
const DISK_COUNT = 4;
const DEVICE_BYTES = 128 * MiB;
/** S3's minimum for every part but the last. */
const PART_MIN_BYTES = 5 * MiB;
/** Drains (each adds a disk first) per run, so loop devices and image files stay bounded. */
const DRAINS_MAX = 8;
const LISTED_PROBLEMS_MAX = 20;

export function reproduceCommand(options: TortureOptions): string {
  return (
    `npm run torture -- --seconds ${options.seconds} --seed ${options.seed} --disks ${options.disks} ` +
    `--clients ${options.clients} --cli-clients ${options.cliClients} --keys ${options.keys}`
  );
}

export async function runTorture(options: TortureOptions): Promise<TortureReport> {
  if (options.keys < 2 || options.keys > 100) throw new Error('--keys takes 2 to 100 hot keys');
  const log = options.log ?? (() => undefined);
  log(`torture: seed ${options.seed}, ${options.seconds} s, ${options.disks} disks, ${options.clients} S3 + ${options.cliClients} CLI clients, ${options.keys} keys`);
  log(`torture: reproduce with  ${reproduceCommand(options)}`);
  const started = performance.now();
  const cleanup = new Cleanup();
  let daemon: RunningDaemon | undefined;
  let keep = false;
  try {
    const rig = await Rig.create(options, cleanup, () => keep);
    daemon = await startDaemon(cleanup, rig.pool, ['--scrub-interval', '3s', '--shutdown-timeout', '10s']);
    const run = new Run(options, rig, daemon);
    await run.load();
    log(`torture: load done (${Math.round((performance.now() - started) / 1000)} s); reading back and auditing`);
    const finalValues = await run.readBack();
    const result = checkHistory(run.history);
    await run.auditServed();
    const exitCode = await daemon.stop('SIGTERM');
    if (exitCode !== 0) run.finalProblems.push(`shardpool serve exited ${exitCode} on SIGTERM`);
    await run.auditStopped(finalValues);
    // An error the daemon logged without a stable code is a bug (an invariant violated, an unexpected exception).
    for (const error of daemonErrorsOf(daemon).filter((line) => line.includes(INTERNAL_MARK))) run.finalProblems.push(`daemon logged ${error}`);
    const passed = result.violations.length === 0 && run.maintenanceProblems.length === 0 && run.finalProblems.length === 0;
    const historyFile = passed ? undefined : await saveHistory(options, run.history);
    keep = !passed && options.keepOnFailure === true;
    return {
      options,
      reproduce: reproduceCommand(options),
      durationMs: performance.now() - started,
      counts: Object.fromEntries([...run.counts].sort(([a], [b]) => a.localeCompare(b))),
      readsChecked: result.readsChecked,
      violations: result.violations,
      maintenanceProblems: run.maintenanceProblems,
      finalProblems: run.finalProblems,
      failedRequests: run.failedRequests,
      daemonErrors: daemonErrorsOf(daemon),
      passed,
      historyFile,
      keptPool: keep ? rig.pool : undefined,
    };
  } finally {
    // The daemon first: it holds the loop devices and image files the clean-up removes.
    if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.stop('SIGKILL');
    await cleanup.run();
  }
}

/** Prints a report as lines of text: counts, then every kind of problem, then the command that reproduces it. */
export function formatReport(report: TortureReport): string {
  const lines = [`torture: ${report.passed ? 'PASSED' : 'FAILED'} after ${(report.durationMs / 1000).toFixed(1)} s, seed ${report.options.seed}`];
  lines.push(`  reads checked: ${report.readsChecked}`);
  for (const [name, count] of Object.entries(report.counts)) lines.push(`  ${name}: ${count}`);
  if (report.violations.length > 0) {
    lines.push(`register violations: ${report.violations.length}`);
    for (const violation of report.violations.slice(0, LISTED_PROBLEMS_MAX)) {
      const op = violation.op;
      const id = 'writeId' in op ? ` w${op.writeId}` : '';
      lines.push(
        `  ${violation.key}: ${op.client} ${op.kind}${id} [${op.startMs.toFixed(1)}, ${op.endMs.toFixed(1)}] ms → ${op.outcome}: ` +
          `${violation.problem}; allowed: ${violation.allowed.slice(0, 8).join(' | ') || 'nothing'}`,
      );
    }
  }
  for (const [title, problems] of [
    ['maintenance problems', report.maintenanceProblems],
    ['audit after the run', report.finalProblems],
    ['failed requests (allowed, maybe applied)', report.failedRequests],
    ['daemon errors (log)', report.daemonErrors],
  ] as const) {
    if (problems.length === 0) continue;
    lines.push(`${title}: ${problems.length}`);
    for (const problem of problems.slice(0, LISTED_PROBLEMS_MAX)) lines.push(`  ${problem}`);
  }
  if (report.historyFile) lines.push(`history: ${report.historyFile}`);
  if (report.keptPool) lines.push(`pool kept: ${report.keptPool}`);
  if (!report.passed) lines.push(`reproduce: ${report.reproduce}`);
  return lines.join('\n');
}

/** Clean-up steps run newest first, each even if an earlier one failed. */
class Cleanup implements AfterHooks {
  private readonly steps: Array<() => unknown> = [];

  after(fn: () => unknown): void {
    this.steps.push(fn);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'torture clean-up failed');
  }
}

/** The pool and its disks, and how to make one more disk of the run's kind (for drains). */
class Rig {
  private disksMade = 0;

  private constructor(
    readonly root: string,
    readonly pool: string,
    private readonly kind: DiskKind,
    private readonly cleanup: Cleanup,
  ) {}

  static async create(options: TortureOptions, cleanup: Cleanup, keep: () => boolean): Promise<Rig> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'shardpool-torture-'));
    cleanup.after(() => (keep() ? undefined : fs.rm(root, { recursive: true, force: true })));
    const rig = new Rig(root, path.join(root, 'pool'), options.disks, cleanup);
    await runCliOk(['init', '--pool', rig.pool, '--policy', POLICY, '--extent-size', '64KiB', ...(options.catalogArgs ?? [])]);
    for (let index = 0; index < DISK_COUNT; index += 1) await runCliOk(['add-disk', '--pool', rig.pool, ...(await rig.makeDisk())]);
    return rig;
  }

  /** Creates a disk of the run's kind and returns the add-disk arguments that add it. */
  async makeDisk(): Promise<string[]> {
    this.disksMade += 1;
    if (this.kind === 'directory') {
      const directory = path.join(this.root, `disk${this.disksMade}`);
      await fs.mkdir(directory);
      return ['--disk', directory];
    }
    if (this.kind === 'image') {
      const image = path.join(this.root, `disk${this.disksMade}.img`);
      await fs.writeFile(image, '');
      await fs.truncate(image, DEVICE_BYTES);
      return ['--disk', image, '--device', '--yes'];
    }
    // Alternating sector sizes, as the bench does: both paths of the device code see the load.
    const loop = await createLoopDevice(this.cleanup, { sizeBytes: DEVICE_BYTES, sectorBytes: this.disksMade % 2 === 0 ? 512 : 4096 });
    return ['--disk', loop.path, '--device', '--yes'];
  }
}

type Random = () => number;

class Run {
  readonly history: HistoryOp[] = [];
  readonly counts = new Map<string, number>();
  readonly maintenanceProblems: string[] = [];
  readonly finalProblems: string[] = [];
  readonly failedRequests: string[] = [];
  private readonly keys: string[];
  private readonly deadlineMs: number;
  private readonly credentials: Promise<{ accessKeyId: string; secretAccessKey: string }>;
  private drains = 0;

  constructor(
    private readonly options: TortureOptions,
    private readonly rig: Rig,
    private readonly daemon: RunningDaemon,
  ) {
    this.keys = Array.from({ length: options.keys }, (_, index) => `k${String(index).padStart(2, '0')}`);
    this.deadlineMs = performance.now() + options.seconds * 1000;
    this.credentials = addUser(rig.pool, 'torture');
  }

  async load(): Promise<void> {
    const admin = await this.client();
    await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const workers: Array<Promise<void>> = [];
    for (let index = 0; index < this.options.clients; index += 1) workers.push(this.s3Client(index));
    for (let index = 0; index < this.options.cliClients; index += 1) workers.push(this.cliClient(index));
    workers.push(this.maintenance());
    await Promise.all(workers);
    // Uploads a failed step left open hold parts; abort them, so the audit sees only the keys' objects.
    const open = await admin.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    for (const upload of open.Uploads ?? []) {
      await admin.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: upload.Key, UploadId: upload.UploadId }));
    }
    admin.destroy();
  }

  /** Reads every key back after the load; returns the bytes of each present one (pool key → bytes). */
  async readBack(): Promise<Map<string, Buffer>> {
    const s3 = await this.client();
    const values = new Map<string, Buffer>();
    try {
      const startMs = performance.now();
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      const endMs = performance.now();
      const listedKeys = new Set((listed.Contents ?? []).map((entry) => entry.Key as string));
      for (const key of listedKeys) if (!this.keys.includes(key)) this.finalProblems.push(`the bucket lists ${JSON.stringify(key)}, which no client wrote`);
      for (const key of this.keys) {
        // The listing is a read too: a key it leaves out must be allowed to be absent.
        if (!listedKeys.has(key)) this.history.push({ kind: 'get', client: 'final-list', key, startMs, endMs, outcome: 'not listed', observation: ABSENT });
        const read = await this.s3Get(s3, 'final', key, undefined);
        if (read.bytes) values.set(`${BUCKET}/${key}`, read.bytes);
        if (listedKeys.has(key) !== (read.bytes !== undefined)) {
          this.finalProblems.push(`${key}: the listing ${listedKeys.has(key) ? 'shows' : 'omits'} it, but a GET after it ${read.bytes ? 'finds it' : 'does not'}`);
        }
      }
    } finally {
      s3.destroy();
    }
    return values;
  }

  /** While the daemon still serves the pool: a full scrub through the command socket must find nothing. */
  async auditServed(): Promise<void> {
    const scrub = await this.cli(['scrub', '--pool', this.rig.pool, '--restart', '--json', '--no-progress']);
    if (scrub.code !== 0) this.finalProblems.push(`scrub after the run exited ${scrub.code}: ${summarizeScrub(scrub)}`);
  }

  /**
   * After the daemon stopped. The disks are read as a reader sees them (persisted state, no write-open) before and
   * after recover, and recover runs twice: a difference between the phases tells a leak in the persisted state from
   * one the writer sees. Then every object is read fragment by fragment, with no unreferenced fragment anywhere.
   */
  async auditStopped(finalValues: Map<string, Buffer>): Promise<void> {
    const atRest = async (phase: string) => {
      const problems = [...(await auditLeftovers(this.rig.pool)), ...(await auditAllocators(this.rig.pool))];
      this.finalProblems.push(...problems.map((problem) => `${phase}: ${problem}`));
    };
    await atRest('at rest after serve stopped');
    for (const round of ['recover', 'recover again']) {
      const recover = await this.cli(['recover', '--pool', this.rig.pool, '--json']);
      if (recover.code !== 0) this.finalProblems.push(`${round} after the run exited ${recover.code}: ${summarizeRecover(recover)}`);
      // recover counts no problem on a disk it had to skip: a disk the write-open could not open is one.
      for (const skipped of skippedByRecover(recover)) this.finalProblems.push(`${round} skipped ${skipped}`);
      await atRest(`at rest after ${round}`);
    }
    try {
      await auditPool(this.rig.pool, { expected: finalValues, noOrphans: true, context: 'after the torture run' });
    } catch (error) {
      this.finalProblems.push(`pool audit: ${(error as Error).message.split('\n')[0]}`);
    }
    await this.auditImport(finalValues);
  }

  /**
   * Last: the catalog is taken as lost. `shardpool import` of the disks (in place; the pool is at rest and audited)
   * must give back every key as the run left it, with nothing left over.
   */
  private async auditImport(finalValues: Map<string, Buffer>): Promise<void> {
    const listed = await this.cli(['list-disks', '--pool', this.rig.pool, '--json']);
    const disks = (JSON.parse(listed.stdout.toString()) as Array<{ path: string; online: boolean }>).filter((disk) => disk.online).map((disk) => disk.path);
    const imported = path.join(this.rig.root, 'imported');
    const result = await this.cli(['import', '--pool', imported, ...disks.flatMap((disk) => ['--disk', disk]), '--json']);
    if (result.code !== 0) {
      this.finalProblems.push(`import of the disks exited ${result.code}: ${result.stderr.toString().trim().split('\n').pop() ?? ''}`);
      return;
    }
    try {
      await auditPool(imported, { expected: finalValues, noOrphans: true, context: 'after an import of the disks' });
    } catch (error) {
      this.finalProblems.push(`import audit: ${(error as Error).message.split('\n')[0]}`);
    }
  }

  private async client(): Promise<S3Client> {
    return new S3Client({ endpoint: this.daemon.s3Endpoint, region: 'us-east-1', credentials: await this.credentials, forcePathStyle: true, maxAttempts: 1 });
  }

  /** Counts one operation; a failed one is also listed with what the client was told. */
  private count(name: string, outcome?: string): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    if (name.endsWith('failed') && this.failedRequests.length < LISTED_PROBLEMS_MAX) this.failedRequests.push(`${name}: ${outcome ?? '?'}`.slice(0, 300));
  }

  private running(): boolean {
    return performance.now() < this.deadlineMs;
  }

  private async s3Client(index: number): Promise<void> {
    const random = seededRandom(this.options.seed * 1000 + index);
    const s3 = await this.client();
    const client = `s3-${index}`;
    const ids = writeIds(index);
    try {
      while (this.running()) {
        const roll = random();
        if (roll < 0.34) await this.s3Get(s3, client, pick(random, this.keys), rangeFor(random));
        else if (roll < 0.6) await this.s3Put(s3, client, pick(random, this.keys), ids(), sizeFor(random));
        else if (roll < 0.67) await this.s3Delete(s3, client, pick(random, this.keys), ids());
        else if (roll < 0.72) await this.s3DeleteMany(s3, client, random, ids);
        else if (roll < 0.84) await this.s3Copy(s3, client, random, ids());
        else await this.s3Multipart(s3, client, random, ids);
      }
    } finally {
      s3.destroy();
    }
  }

  private async s3Put(s3: S3Client, client: string, key: string, writeId: number, sizeBytes: number): Promise<void> {
    const body = segmentBytes(writeId, sizeBytes);
    const startMs = performance.now();
    const result = await outcomeOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body })));
    this.count(`s3 put ${result.ok ? 'ok' : 'failed'}`, result.outcome);
    const value = valueOf([{ writeId, lengthBytes: sizeBytes }]);
    this.history.push({ kind: 'put', client, key, startMs, endMs: performance.now(), outcome: result.outcome, ok: result.ok, writeId, value });
  }

  private async s3Get(s3: S3Client, client: string, key: string, range: string | undefined): Promise<{ bytes: Buffer | undefined }> {
    const startMs = performance.now();
    let observation: Observation;
    let outcome: string;
    let bytes: Buffer | undefined;
    try {
      const response = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
      bytes = await bodyBytes(response.Body);
      const contentRange = /^bytes (\d+)-\d+\/(\d+)$/.exec(response.ContentRange ?? '');
      const startByte = contentRange ? Number(contentRange[1]) : 0;
      const objectSizeBytes = contentRange ? Number(contentRange[2]) : bytes.length;
      observation = observe(bytes, { objectSizeBytes, startByte });
      outcome = contentRange ? `206 ${response.ContentRange}` : '200';
    } catch (error) {
      const failure = describeError(error);
      if (failure.status === 404 && failure.code === 'NoSuchKey') {
        observation = ABSENT;
        outcome = '404 NoSuchKey';
      } else if (failure.status === 416 && range !== undefined) {
        // A range that starts at or past the end: the object existed, no longer than the range's first byte.
        observation = { absent: false, rangeNotSatisfiable: true, sizeBytesAtMost: Number(/^bytes=(\d+)-/.exec(range)?.[1]) };
        outcome = failure.text;
      } else {
        this.count(`${client === 'final' ? 'final' : 's3'} get failed`, failure.text);
        this.history.push({ kind: 'read-failed', client, key, startMs, endMs: performance.now(), outcome: failure.text, detail: failure.text });
        return { bytes: undefined };
      }
    }
    const status = observation.absent ? '404' : 'rangeNotSatisfiable' in observation ? '416' : 'ok';
    this.count(`${client === 'final' ? 'final' : 's3'} get${range ? ' ranged' : ''} ${status}`);
    this.history.push({ kind: 'get', client, key, startMs, endMs: performance.now(), outcome, observation });
    return { bytes: status === 'ok' ? bytes : undefined };
  }

  private async s3Delete(s3: S3Client, client: string, key: string, writeId: number): Promise<void> {
    const startMs = performance.now();
    const result = await outcomeOf(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })));
    this.count(`s3 delete ${result.ok ? 'ok' : 'failed'}`, result.outcome);
    this.history.push({ kind: 'delete', client, key, startMs, endMs: performance.now(), outcome: result.outcome, ok: result.ok, writeId });
  }

  private async s3DeleteMany(s3: S3Client, client: string, random: Random, ids: () => number): Promise<void> {
    const keys = [...new Set([pick(random, this.keys), pick(random, this.keys), pick(random, this.keys)])];
    const startMs = performance.now();
    const result = await outcomeOf(
      s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys.map((key) => ({ Key: key })) } })),
    );
    const endMs = performance.now();
    const deleted = new Set((result.response?.Deleted ?? []).map((entry) => entry.Key));
    this.count(`s3 delete-objects ${result.ok ? 'ok' : 'failed'}`, result.outcome);
    for (const key of keys) {
      const ok = result.ok && deleted.has(key);
      this.history.push({ kind: 'delete', client: `${client} (DeleteObjects)`, key, startMs, endMs, outcome: ok ? 'deleted' : result.outcome, ok, writeId: ids() });
    }
  }

  private async s3Copy(s3: S3Client, client: string, random: Random, writeId: number): Promise<void> {
    // From a key to a later one: the checker resolves a copy's values from its source's history without loops.
    const sourceIndex = Math.floor(random() * (this.keys.length - 1));
    const source = this.keys[sourceIndex] as string;
    const key = this.keys[sourceIndex + 1 + Math.floor(random() * (this.keys.length - sourceIndex - 1))] as string;
    const startMs = performance.now();
    const result = await outcomeOf(s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/${source}` })));
    const sourceMissing = !result.ok && result.outcome.startsWith('404 NoSuchKey');
    this.count(`s3 copy ${result.ok ? 'ok' : sourceMissing ? '404' : 'failed'}`, result.outcome);
    this.history.push({ kind: 'copy', client, key, startMs, endMs: performance.now(), outcome: result.outcome, ok: result.ok, writeId, sourceKey: source, sourceMissing });
  }

  /** Create, upload one or two parts (sometimes a part twice), then abort or complete. */
  private async s3Multipart(s3: S3Client, client: string, random: Random, ids: () => number): Promise<void> {
    const key = pick(random, this.keys);
    const created = await outcomeOf(s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key })));
    if (!created.ok || !created.response?.UploadId) {
      this.count('s3 multipart create failed', created.outcome);
      return;
    }
    const uploadId = created.response.UploadId;
    const sizes = random() < 0.15 ? [PART_MIN_BYTES, sizeFor(random)] : [sizeFor(random)];
    const parts: Array<{ PartNumber: number; ETag: string; segment: Segment }> = [];
    for (const [index, sizeBytes] of sizes.entries()) {
      const uploads = random() < 0.3 ? 2 : 1;
      for (let attempt = 0; attempt < uploads; attempt += 1) {
        const segment = { writeId: ids(), lengthBytes: sizeBytes };
        const uploaded = await outcomeOf(
          s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: index + 1, Body: segmentBytes(segment.writeId, sizeBytes) })),
        );
        this.count(`s3 upload-part${attempt > 0 ? ' again' : ''} ${uploaded.ok ? 'ok' : 'failed'}`, uploaded.outcome);
        if (!uploaded.ok || !uploaded.response?.ETag) {
          // Which upload of the part the daemon kept is unknown now: abort rather than complete an ambiguous object.
          await this.s3Abort(s3, key, uploadId);
          return;
        }
        parts[index] = { PartNumber: index + 1, ETag: uploaded.response.ETag, segment };
      }
    }
    if (random() < 0.15) {
      await this.s3Abort(s3, key, uploadId);
      return;
    }
    const writeId = ids();
    const startMs = performance.now();
    const completed = await outcomeOf(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.PartNumber, ETag: part.ETag })) },
        }),
      ),
    );
    this.count(`s3 complete ${completed.ok ? 'ok' : 'failed'}`, completed.outcome);
    const value = valueOf(parts.map((part) => part.segment));
    this.history.push({ kind: 'complete', client, key, startMs, endMs: performance.now(), outcome: completed.outcome, ok: completed.ok, writeId, value });
    if (!completed.ok) await this.s3Abort(s3, key, uploadId);
  }

  private async s3Abort(s3: S3Client, key: string, uploadId: string): Promise<void> {
    const aborted = await outcomeOf(s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId })));
    this.count(`s3 abort ${aborted.ok ? 'ok' : 'failed'}`, aborted.outcome);
  }

  private async cliClient(index: number): Promise<void> {
    const random = seededRandom(this.options.seed * 1000 + 500 + index);
    const client = `cli-${index}`;
    const ids = writeIds(100 + index);
    const directory = path.join(this.rig.root, client);
    await fs.mkdir(directory);
    while (this.running()) {
      const key = pick(random, this.keys);
      const poolKey = `${BUCKET}/${key}`;
      const roll = random();
      if (roll < 0.4) {
        const writeId = ids();
        const sizeBytes = sizeFor(random);
        const file = path.join(directory, 'value');
        await fs.writeFile(file, segmentBytes(writeId, sizeBytes));
        const startMs = performance.now();
        const result = await this.cli(['put', '--pool', this.rig.pool, poolKey, file, '--no-progress']);
        const ok = result.code === 0;
        this.count(`cli put ${ok ? 'ok' : 'failed'}`, cliOutcome(result));
        const value = valueOf([{ writeId, lengthBytes: sizeBytes }]);
        this.history.push({ kind: 'put', client, key, startMs, endMs: performance.now(), outcome: cliOutcome(result), ok, writeId, value });
      } else if (roll < 0.85) {
        const startMs = performance.now();
        const result = await this.cli(['get', '--pool', this.rig.pool, poolKey, '-', '--no-progress']);
        const endMs = performance.now();
        if (result.code === 0) {
          this.count('cli get ok');
          const observation = observe(result.stdout, { objectSizeBytes: result.stdout.length, startByte: 0 });
          this.history.push({ kind: 'get', client, key, startMs, endMs, outcome: 'exit 0', observation });
        } else if (result.stderr.includes('OBJECT_NOT_FOUND')) {
          this.count('cli get 404');
          this.history.push({ kind: 'get', client, key, startMs, endMs, outcome: cliOutcome(result), observation: ABSENT });
        } else {
          this.count('cli get failed', cliOutcome(result));
          this.history.push({ kind: 'read-failed', client, key, startMs, endMs, outcome: cliOutcome(result), detail: cliOutcome(result) });
        }
      } else {
        const startMs = performance.now();
        const result = await this.cli(['rm', '--pool', this.rig.pool, poolKey]);
        const endMs = performance.now();
        if (result.stderr.includes('OBJECT_NOT_FOUND')) {
          // rm found nothing to remove: it changed nothing, and it saw the key absent (a read).
          this.count('cli rm 404');
          this.history.push({ kind: 'get', client, key, startMs, endMs, outcome: cliOutcome(result), observation: ABSENT });
        } else {
          this.count(`cli rm ${result.code === 0 ? 'ok' : 'failed'}`, cliOutcome(result));
          this.history.push({ kind: 'delete', client, key, startMs, endMs, outcome: cliOutcome(result), ok: result.code === 0, writeId: ids() });
        }
      }
    }
  }

  /** Scrub with repair, defrag (devices), and drains of the oldest disk after adding its replacement, until the end. */
  private async maintenance(): Promise<void> {
    const random = seededRandom(this.options.seed * 1000 + 999);
    const devices = this.options.disks !== 'directory';
    while (this.running()) {
      await sleep(300 + random() * 1200);
      if (!this.running()) break;
      const roll = random();
      if (roll < 0.4) await this.maintain('scrub --repair', ['scrub', '--pool', this.rig.pool, '--repair', '--restart', '--json', '--no-progress']);
      else if (roll < 0.7 && devices) await this.maintain('defrag', ['defrag', '--pool', this.rig.pool, '--json']);
      else if (this.drains < DRAINS_MAX) await this.drainOne();
    }
  }

  /** Adds a disk, then drains the oldest healthy one; a drain left incomplete is resumed first, as an operator would. */
  private async drainOne(): Promise<void> {
    this.drains += 1;
    const unfinished = (await this.listDisks()).find((disk) => disk.state === 'draining');
    if (unfinished) {
      await this.maintain('remove-disk (resumed)', ['remove-disk', '--pool', this.rig.pool, '--disk', String(unfinished.id), '--json', '--no-progress']);
      return;
    }
    if (!(await this.maintain('add-disk', ['add-disk', '--pool', this.rig.pool, ...(await this.rig.makeDisk()), '--json']))) return;
    const oldest = (await this.listDisks()).find((disk) => disk.state === 'healthy');
    if (!oldest) {
      this.maintenanceProblems.push('list-disks shows no healthy disk');
      return;
    }
    await this.maintain('remove-disk', ['remove-disk', '--pool', this.rig.pool, '--disk', String(oldest.id), '--json', '--no-progress']);
  }

  private async listDisks(): Promise<Array<{ id: number; state: string }>> {
    const listed = await this.cli(['list-disks', '--pool', this.rig.pool, '--json']);
    return JSON.parse(listed.stdout.toString('utf8')) as Array<{ id: number; state: string }>;
  }

  /** Runs one maintenance command; any exit but 0 is a problem of the run (scrub exits 1 when problems remain). */
  private async maintain(name: string, args: string[]): Promise<boolean> {
    const startMs = performance.now();
    const result = await this.cli(args);
    const ok = result.code === 0;
    this.count(`maintenance ${name} ${ok ? 'ok' : 'failed'}`, cliOutcome(result));
    if (!ok) {
      const detail = name.startsWith('scrub') ? summarizeScrub(result) : cliOutcome(result);
      this.maintenanceProblems.push(`${name} at ${startMs.toFixed(0)} ms exited ${result.code}: ${detail}`);
    }
    return ok;
  }

  private cli(args: string[]): Promise<CliResult> {
    return runCli(args, { cwd: this.rig.root });
  }
}

/** Unique write ids of one client: 10^7 per client, so ids name their client and fit the u32 in block headers. */
function writeIds(clientIndex: number): () => number {
  let next = (clientIndex + 1) * 10_000_000;
  return () => (next += 1);
}

function pick<T>(random: Random, items: ReadonlyArray<T>): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** 0 bytes, under a block, a few blocks, about an extent, or several extents with an odd tail. */
function sizeFor(random: Random): number {
  const roll = random();
  if (roll < 0.1) return 0;
  if (roll < 0.25) return 1 + Math.floor(random() * (VALUE_BLOCK_BYTES - 1));
  if (roll < 0.5) return VALUE_BLOCK_BYTES + Math.floor(random() * (EXTENT_BYTES - VALUE_BLOCK_BYTES));
  if (roll < 0.65) return EXTENT_BYTES * (1 + Math.floor(random() * 2));
  return EXTENT_BYTES + Math.floor(random() * 5 * EXTENT_BYTES);
}

/** Half the reads are whole; the others ask for a range that usually lies inside a typical object. */
function rangeFor(random: Random): string | undefined {
  if (random() < 0.5) return undefined;
  const startByte = Math.floor(random() * 3 * EXTENT_BYTES);
  if (random() < 0.3) return `bytes=${startByte}-`;
  return `bytes=${startByte}-${startByte + Math.floor(random() * 2 * EXTENT_BYTES)}`;
}

async function outcomeOf<T>(request: Promise<T>): Promise<{ ok: boolean; outcome: string; response: T | undefined }> {
  try {
    const response = await request;
    return { ok: true, outcome: 'ok', response };
  } catch (error) {
    return { ok: false, outcome: describeError(error).text, response: undefined };
  }
}

function describeError(error: unknown): { status: number | undefined; code: string; text: string } {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    return { status, code: error.name, text: `${status ?? '?'} ${error.name}: ${error.message}` };
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { status: undefined, code: 'client', text: message };
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function cliOutcome(result: CliResult): string {
  if (result.code === 0) return 'exit 0';
  return `exit ${result.code ?? result.signal}: ${result.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
}

function summarizeScrub(result: CliResult): string {
  try {
    const report = JSON.parse(result.stdout.toString('utf8')) as {
      counts: Record<string, number>;
      repaired: number;
      unrepairable: Array<{ key: string; reason: string }>;
      findings: Array<{ kind: string; diskId: number; key?: string; detail: string; repaired: boolean }>;
      interrupted: boolean;
    };
    const counts = Object.entries(report.counts).filter(([, count]) => count > 0).map(([kind, count]) => `${kind} ${count}`);
    const findings = report.findings
      .filter((finding) => !finding.repaired)
      .slice(0, 3)
      .map((finding) => `${finding.kind} on disk ${finding.diskId}${finding.key ? ` (${finding.key})` : ''}: ${finding.detail}`);
    const unrepairable = report.unrepairable.slice(0, 3).map((entry) => `unrepairable ${entry.key}: ${entry.reason}`);
    return `found ${counts.join(', ') || 'nothing'}, repaired ${report.repaired}${report.interrupted ? ', interrupted' : ''}; ${[...unrepairable, ...findings].join('; ')}`;
  } catch {
    return cliOutcome(result);
  }
}

function summarizeRecover(result: CliResult): string {
  try {
    const report = JSON.parse(result.stdout.toString('utf8')) as {
      disks: Array<{ id: number; orphans: Array<{ key: string }>; strays: Array<{ what: string }>; missing: Array<{ versionId: string; reason: string }> }>;
    };
    return report.disks
      .filter((disk) => disk.orphans.length + disk.strays.length + disk.missing.length > 0)
      .map((disk) => {
        const first = disk.orphans[0]?.key ?? disk.strays[0]?.what ?? disk.missing[0]?.reason ?? '';
        return `disk ${disk.id}: ${disk.orphans.length} orphans, ${disk.strays.length} strays, ${disk.missing.length} missing (first: ${first})`;
      })
      .join('; ');
  } catch {
    return cliOutcome(result);
  }
}

function skippedByRecover(result: CliResult): string[] {
  try {
    const report = JSON.parse(result.stdout.toString('utf8')) as { disks: Array<{ id: number; path: string; skipped?: string | null }> };
    return report.disks.filter((disk) => disk.skipped).map((disk) => `disk ${disk.id} ${disk.path}: ${disk.skipped}`);
  } catch {
    return [];
  }
}

/** How daemonErrorsOf marks an error logged without a stable code. */
const INTERNAL_MARK = '(no code: internal)';

function daemonErrorsOf(daemon: RunningDaemon): string[] {
  const lines: string[] = [];
  for (const entry of daemon.logs) {
    if (typeof entry['level'] !== 'number' || entry['level'] < 50) continue;
    const error = entry['err'] as { code?: string; message?: string } | undefined;
    lines.push(`${String(entry['msg'])}${error ? `: ${error.code ?? INTERNAL_MARK} ${error.message ?? ''}` : ''}`.slice(0, 300));
    if (lines.length >= LISTED_PROBLEMS_MAX) break;
  }
  return lines;
}

async function saveHistory(options: TortureOptions, history: ReadonlyArray<HistoryOp>): Promise<string> {
  const file = path.join(os.tmpdir(), `shardpool-torture-${options.disks}-seed${options.seed}-${process.pid}.jsonl`);
  await fs.writeFile(file, history.map((op) => JSON.stringify(op)).join('\n') + '\n');
  return file;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
