// Scheduled background scrub: every interval (counted from the last completed scrub, which the catalog remembers
// across restarts) the daemon reads and verifies the whole pool at a limited rate, beside the traffic it serves.
// When the verify pass finds damage it repairs it at once, in a second pass that runs alone (writes wait).
import type { Logger } from 'pino';
import { scrubPool, type ScrubReport } from '../maintain/scrub.js';
import type { Pool } from '../pool/pool.js';
import type { ServedPool } from '../cli/terminal.js';

const LAST_COMPLETED_SETTING = 'scrub.last_completed_at_ms';
/** The first scrub of a pool that never had one waits at most this long after the daemon starts. */
const FIRST_SCRUB_DELAY_MAX_MS = 10 * 60 * 1000;

export interface BackgroundScrubOptions {
  readonly intervalMs: number;
  readonly rateBytesPerSecond: number;
  readonly repair: boolean;
}

export class BackgroundScrub {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  lastReport: ScrubReport | undefined;

  constructor(
    private readonly served: ServedPool,
    private readonly options: BackgroundScrubOptions,
    private readonly log: Logger,
  ) {}

  private get pool(): Pool {
    return this.served.pool;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  async lastCompletedAtMs(): Promise<number | undefined> {
    const value = await this.pool.catalog.getSetting(LAST_COMPLETED_SETTING);
    return value === undefined ? undefined : Number(value);
  }

  async start(): Promise<void> {
    const last = await this.lastCompletedAtMs();
    const dueInMs = last === undefined ? Math.min(this.options.intervalMs, FIRST_SCRUB_DELAY_MAX_MS) : last + this.options.intervalMs - Date.now();
    this.schedule(Math.max(dueInMs, 0));
  }

  /** Stops after the object being scrubbed (the position is saved: the next run continues there). */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopping) return;
    this.log.info({ inSeconds: Math.round(delayMs / 1000) }, 'next background scrub scheduled');
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.schedule(this.options.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const shouldStop = () => this.stopping;
    try {
      const report = await this.served.oneScrubAtATime(async () => {
        this.log.info({ rateBytesPerSecond: this.options.rateBytesPerSecond }, 'background scrub started');
        let verified = await scrubPool(this.pool, { repair: false, rateBytesPerSecond: this.options.rateBytesPerSecond, shouldStop });
        if (!verified.clean && !verified.interrupted && this.options.repair) {
          this.log.warn({ counts: verified.counts }, 'background scrub found damage; repairing it');
          verified = await this.served.maintenance(() => scrubPool(this.pool, { repair: true, restart: true, shouldStop }));
        }
        return verified;
      });
      this.lastReport = report;
      if (report.interrupted) {
        this.log.info({ bytesRead: report.bytesRead }, 'background scrub paused; it continues where it stopped next time');
        return;
      }
      await this.pool.catalog.setSetting(LAST_COMPLETED_SETTING, String(Date.now()));
      const summary = { objects: report.objectsScrubbed, bytesRead: report.bytesRead, counts: report.counts, repaired: report.repaired, unrepairable: report.unrepairable.length };
      if (report.clean) this.log.info(summary, 'background scrub completed: the pool is clean');
      else this.log.error(summary, 'background scrub completed: problems remain (run shardpool scrub --repair and read its report)');
    } catch (error) {
      this.log.error({ err: error }, 'background scrub failed');
    }
  }
}
