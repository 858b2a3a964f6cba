// The daemon's Prometheus metrics (prom-client, a registry of its own). Events — disk I/O, catalog commits, scrub and
// rebuild progress, S3 requests — are counted as they happen through the observers the lower layers offer; states —
// capacity, object counts, redundancy, disk health — are read from the pool when Prometheus scrapes. docs/metrics.md
// lists every metric with the queries and alerts that matter.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { DeviceDisk } from '../disk/device/device-disk.js';
import { setDiskIoObserver, type DiskIoEvent } from '../disk/metered-disk.js';
import { ioCounters } from '../io/block-io.js';
import { setMaintenanceObserver, type MaintenanceEvent } from '../maintain/maintenance-observer.js';
import { setCatalogBatchObserver } from '../pool/catalog/catalog.js';
import { COUNTER_EXTENTS_READ_DEGRADED, COUNTER_FRAGMENT_READ_FAILURES } from '../pool/object-reader.js';
import type { Pool } from '../pool/pool.js';

/** The redundancy report scans every fragment row: scrapes within this long reuse the last one. */
const REDUNDANCY_CACHE_MS = 10_000;
const DISK_STATES = ['healthy', 'draining', 'failed', 'offline', 'latched'] as const;
/** The metrics of one scrape (collected all at once) share one reading of the disks. */
const DISK_SNAPSHOT_MS = 100;
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUEST_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class PoolMetrics {
  readonly registry = new Registry();
  private redundancy: { atMs: number; unavailable: string; degraded: number; unreadable: number } | undefined;
  private readonly diskIdByUuid = new Map<string, string>();
  private readonly s3Requests: Counter<'operation' | 'status'>;
  private readonly s3Duration: Histogram<'operation'>;

  constructor(private readonly pool: Pool) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'shardpool_' });
    const diskLabels = ['disk', 'path', 'kind'] as const;

    // ── per disk: I/O as it happens ───────────────────────────────────────────────────────────────────────────
    const readBytes = new Counter({ name: 'shardpool_disk_read_bytes_total', help: 'Fragment bytes read from the disk', labelNames: ['disk'], registers });
    const writeBytes = new Counter({ name: 'shardpool_disk_write_bytes_total', help: 'Fragment bytes written to the disk', labelNames: ['disk'], registers });
    const operations = new Counter({ name: 'shardpool_disk_operations_total', help: 'Fragment reads, writes, deletes and flushes on the disk', labelNames: ['disk', 'operation'], registers });
    const errors = new Counter({ name: 'shardpool_disk_errors_total', help: 'Disk operations that failed (I/O errors, checksum mismatches, missing fragments)', labelNames: ['disk', 'operation'], registers });
    const latency = new Histogram({
      name: 'shardpool_disk_io_duration_seconds',
      help: 'Time one fragment read, write, delete or flush took',
      labelNames: ['disk', 'operation'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    setDiskIoObserver((event: DiskIoEvent) => {
      const disk = this.diskId(event.diskUuid);
      if (event.operation === 'read') readBytes.inc({ disk }, event.bytes);
      if (event.operation === 'write') writeBytes.inc({ disk }, event.bytes);
      operations.inc({ disk, operation: event.operation });
      if (!event.ok) errors.inc({ disk, operation: event.operation });
      latency.observe({ disk, operation: event.operation }, event.seconds);
    });
    // Pre-create the series so every disk appears from the first scrape.
    for (const member of pool.listMembers()) {
      const disk = String(member.row.id);
      readBytes.inc({ disk }, 0);
      writeBytes.inc({ disk }, 0);
    }

    // ── per disk: state read at scrape time ───────────────────────────────────────────────────────────────────
    // prom-client collects every metric of a scrape at once: they share one snapshot of the disks per scrape.
    let snapshot: { atMs: number; disks: Promise<DiskSnapshot[]> } | undefined;
    const disks = (): Promise<DiskSnapshot[]> => {
      if (!snapshot || Date.now() - snapshot.atMs > DISK_SNAPSHOT_MS) snapshot = { atMs: Date.now(), disks: this.snapshotDisks() };
      return snapshot.disks;
    };
    const diskGauge = (name: string, help: string, value: (disk: DiskSnapshot) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: diskLabels,
        registers,
        async collect() {
          this.reset();
          for (const disk of await disks()) {
            const current = value(disk);
            if (current !== undefined) this.set(disk.labels, current);
          }
        },
      });
    diskGauge('shardpool_disk_capacity_bytes', 'Size of the disk (the filesystem for directory disks)', (disk) => disk.capacityBytes);
    diskGauge('shardpool_disk_free_bytes', 'Bytes free for new fragments on the disk', (disk) => disk.freeBytes);
    diskGauge('shardpool_disk_used_bytes', 'Bytes of fragments (headers included) the catalog places on the disk', (disk) => disk.usedBytes);
    diskGauge('shardpool_disk_fragments', 'Fragments the catalog places on the disk', (disk) => disk.fragments);
    new Gauge({
      name: 'shardpool_disk_state',
      help: 'Health of the disk: 1 for its current state (healthy, draining, failed, offline, latched), 0 for the others',
      labelNames: ['disk', 'path', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const disk of await disks()) {
          for (const candidate of DISK_STATES) this.set({ disk: disk.labels.disk, path: disk.labels.path, state: candidate }, candidate === disk.state ? 1 : 0);
        }
      },
    });
    const deviceCounter = (name: string, help: string, value: (stats: DeviceDisk['stats']) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['disk'],
        registers,
        async collect() {
          for (const disk of await disks()) if (disk.deviceStats) setCounter(this, { disk: disk.labels.disk }, value(disk.deviceStats));
        },
      });
    deviceCounter('shardpool_disk_discarded_bytes_total', 'Bytes discarded (TRIM) on the block device', (stats) => stats.discardedBytes);
    deviceCounter('shardpool_device_flushes_total', 'fdatasync calls of the block device group commit', (stats) => stats.flushes);
    deviceCounter('shardpool_device_group_commits_total', 'Group commits (journal records) of the block device', (stats) => stats.batches);
    // Values kept elsewhere, read when Prometheus scrapes.
    const gaugeOf = (name: string, help: string, read: () => number | Promise<number>) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          this.set(await read());
        },
      });
    const counterOf = (name: string, help: string, read: () => number | Promise<number>) =>
      new Counter({
        name,
        help,
        registers,
        async collect() {
          setCounter(this, {}, await read());
        },
      });
    counterOf(
      'shardpool_direct_io_fallbacks_total',
      'Block devices opened with O_SYNC because the kernel refused O_DIRECT (this process)',
      () => ioCounters.directIoFallbacks,
    );
    counterOf(
      'shardpool_io_alignment_failures_total',
      'I/O requests refused before any system call because they were not sector-aligned (a bug if ever above 0)',
      () => ioCounters.alignmentFailures,
    );

    // ── pool ──────────────────────────────────────────────────────────────────────────────────────────────────
    gaugeOf('shardpool_pool_objects', 'Objects in the pool (multipart parts in progress included)', async () => (await pool.catalog.objectTotals()).objectCount);
    gaugeOf('shardpool_pool_logical_bytes', 'Bytes of object data stored (before redundancy)', async () => (await pool.catalog.objectTotals()).logicalBytes);
    gaugeOf(
      'shardpool_pool_extents_degraded',
      'Extents with at least one fragment on a failed or unreachable disk (below full redundancy)',
      async () => (await this.redundancyNow()).degraded,
    );
    gaugeOf(
      'shardpool_pool_extents_unreadable',
      'Extents with fewer readable fragments than their policy needs (data loss unless a disk comes back)',
      async () => (await this.redundancyNow()).unreadable,
    );
    counterOf(
      'shardpool_degraded_reads_total',
      'Extents read back degraded: rebuilt from redundancy because a fragment was missing, corrupt or unreachable',
      async () => (await pool.catalog.counters())[COUNTER_EXTENTS_READ_DEGRADED] ?? 0,
    );
    counterOf(
      'shardpool_fragment_read_failures_total',
      'Fragments that could not be read or failed verification during reads',
      async () => (await pool.catalog.counters())[COUNTER_FRAGMENT_READ_FAILURES] ?? 0,
    );
    const batchSize = new Histogram({
      name: 'shardpool_commit_batch_size',
      help: 'Puts and other catalog changes committed together in one SQLite transaction (catalog group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers,
    });
    setCatalogBatchObserver((size) => batchSize.observe(size));

    // ── scrub and rebuild ─────────────────────────────────────────────────────────────────────────────────────
    const scrubVerified = new Gauge({ name: 'shardpool_scrub_verified_bytes', help: 'Bytes verified by the scrub running now (or the last one)', registers });
    const scrubTotal = new Gauge({ name: 'shardpool_scrub_total_bytes', help: 'Bytes the scrub running now (or the last one) has to verify', registers });
    const scrubProgress = new Gauge({ name: 'shardpool_scrub_progress_ratio', help: 'Share of the pool the current (or last) scrub has verified, 0 to 1', registers });
    const scrubFound = new Counter({ name: 'shardpool_scrub_errors_found_total', help: 'Problems found by scrubs (missing, corrupt, misplaced, unavailable fragments, orphans, strays)', registers });
    const scrubRepaired = new Counter({ name: 'shardpool_scrub_errors_repaired_total', help: 'Problems repaired by scrubs', registers });
    const scrubCompleted = new Gauge({ name: 'shardpool_scrub_last_completion_timestamp_seconds', help: 'When a scrub last ran to its end (Unix time)', registers });
    const rebuildDone = new Gauge({ name: 'shardpool_rebuild_done_fragments', help: 'Fragments re-created by the rebuild running now (or the last one)', registers });
    const rebuildTotal = new Gauge({ name: 'shardpool_rebuild_total_fragments', help: 'Fragments the rebuild running now (or the last one) has to re-create', registers });
    const rebuildProgress = new Gauge({ name: 'shardpool_rebuild_progress_ratio', help: 'Share of the current (or last) rebuild done, 0 to 1', registers });
    const rebuildRebuilt = new Counter({ name: 'shardpool_rebuild_fragments_total', help: 'Fragments re-created by rebuilds', registers });
    const rebuildCompleted = new Gauge({ name: 'shardpool_rebuild_last_completion_timestamp_seconds', help: 'When a rebuild last finished (Unix time)', registers });
    setMaintenanceObserver((event: MaintenanceEvent) => {
      if (event.kind === 'scrub' && event.phase === 'progress') {
        scrubVerified.set(event.doneBytes);
        scrubTotal.set(event.totalBytes);
        scrubProgress.set(event.totalBytes > 0 ? Math.min(event.doneBytes / event.totalBytes, 1) : 1);
      } else if (event.kind === 'scrub') {
        scrubFound.inc(event.errorsFound);
        scrubRepaired.inc(event.errorsRepaired);
        if (!event.interrupted) {
          scrubProgress.set(1);
          scrubCompleted.set(Date.now() / 1000);
        }
      } else if (event.phase === 'progress') {
        rebuildDone.set(event.doneFragments);
        rebuildTotal.set(event.totalFragments);
        rebuildProgress.set(event.totalFragments > 0 ? event.doneFragments / event.totalFragments : 1);
      } else {
        rebuildRebuilt.inc(event.fragmentsRebuilt);
        rebuildProgress.set(1);
        rebuildCompleted.set(Date.now() / 1000);
      }
    });

    // ── S3 ────────────────────────────────────────────────────────────────────────────────────────────────────
    this.s3Requests = new Counter({ name: 'shardpool_s3_requests_total', help: 'S3 API requests by operation and HTTP status', labelNames: ['operation', 'status'], registers });
    this.s3Duration = new Histogram({
      name: 'shardpool_s3_request_duration_seconds',
      help: 'Time from an S3 request arriving to its response ending',
      labelNames: ['operation'],
      buckets: REQUEST_BUCKETS_SECONDS,
      registers,
    });
  }

  observeS3Request(operation: string, httpStatus: number, seconds: number): void {
    this.s3Requests.inc({ operation, status: String(httpStatus) });
    this.s3Duration.observe({ operation }, seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** Unhooks the observers (the pool is closing). */
  close(): void {
    setDiskIoObserver(undefined);
    setCatalogBatchObserver(undefined);
    setMaintenanceObserver(undefined);
    this.registry.clear();
  }

  private async snapshotDisks(): Promise<DiskSnapshot[]> {
    const usage = await this.pool.catalog.diskUsage();
    const snapshots: DiskSnapshot[] = [];
    for (const member of this.pool.listMembers()) {
      const space = await member.disk?.space().catch(() => undefined);
      snapshots.push({
        labels: { disk: String(member.row.id), path: member.row.path, kind: member.row.kind },
        state:
          member.row.state === 'failed'
            ? 'failed'
            : member.disk === undefined
              ? 'offline'
              : member.disk.latchedFailure !== undefined
                ? 'latched'
                : member.row.state,
        capacityBytes: space?.capacityBytes,
        freeBytes: space?.freeBytes,
        usedBytes: usage.get(member.row.id)?.storedBytes ?? 0,
        fragments: usage.get(member.row.id)?.fragmentCount ?? 0,
        deviceStats: member.disk instanceof DeviceDisk ? member.disk.stats : undefined,
      });
    }
    return snapshots;
  }

  private diskId(diskUuid: string): string {
    let id = this.diskIdByUuid.get(diskUuid);
    if (id === undefined) {
      id = String(this.pool.listMembers().find((member) => member.row.uuid === diskUuid)?.row.id ?? 'unknown');
      this.diskIdByUuid.set(diskUuid, id);
    }
    return id;
  }

  private async redundancyNow(): Promise<{ degraded: number; unreadable: number }> {
    // Recomputed at once when a disk fails or comes back; otherwise at most every REDUNDANCY_CACHE_MS.
    const unavailable = this.pool.unavailableDiskIds().join(',');
    if (!this.redundancy || this.redundancy.unavailable !== unavailable || Date.now() - this.redundancy.atMs > REDUNDANCY_CACHE_MS) {
      const report = await this.pool.catalog.redundancyReport(this.pool.unavailableDiskIds());
      this.redundancy = { atMs: Date.now(), unavailable, degraded: report.degradedExtents, unreadable: report.unreadableExtents };
    }
    return this.redundancy;
  }
}

interface DiskSnapshot {
  readonly labels: { disk: string; path: string; kind: string };
  readonly state: (typeof DISK_STATES)[number];
  readonly capacityBytes: number | undefined;
  readonly freeBytes: number | undefined;
  readonly usedBytes: number;
  readonly fragments: number;
  readonly deviceStats: DeviceDisk['stats'] | undefined;
}

/** Counters mirrored from a running total kept elsewhere. */
function setCounter<T extends string>(counter: Counter<T>, labels: Partial<Record<T, string>>, value: number): void {
  counter.remove(labels);
  counter.inc(labels, value);
}
