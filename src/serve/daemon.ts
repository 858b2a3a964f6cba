// `shardpool serve`: holds the pool open (and its lock) and serves it: the S3 API, /metrics and /health, the command
// socket that runs CLI commands against the open pool, and the scheduled background scrub. Stopping (SIGTERM or
// SIGINT) closes the listeners first, lets requests and commands in flight finish their commits, stops the scrub
// where it can resume, and closes the pool.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import * as path from 'node:path';
import { unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { ServedPool } from '../cli/terminal.js';
import { ShardpoolError } from '../errors.js';
import type { DirectIoMode } from '../io/block-io.js';
import { Semaphore } from '../pool/concurrency.js';
import { Pool } from '../pool/pool.js';
import { BackgroundScrub, type BackgroundScrubOptions } from './background-scrub.js';
import { COMMAND_SOCKET_NAME, SOCKET_PATH_MAX_BYTES } from './command-protocol.js';
import { listenForCommands, type CommandRunner, type CommandSocket } from './command-socket.js';
import { formatListenAddress, type ListenAddress } from './listen-address.js';
import { PoolMetrics } from './metrics.js';
import { PoolGate } from './pool-gate.js';
import { S3Catalog } from './s3/s3-catalog.js';
import { removeAbandonedParts } from './s3/s3-multipart.js';
import { createS3Server } from './s3/s3-server.js';

export interface DaemonOptions {
  readonly poolDirectory: string;
  readonly listen: ListenAddress;
  /** undefined: no metrics listener. */
  readonly metricsListen: ListenAddress | undefined;
  readonly region: string;
  /** undefined: no background scrub. */
  readonly scrub: BackgroundScrubOptions | undefined;
  readonly directIo: DirectIoMode;
  readonly lockWaitMs: number;
  /** How long a request body may send nothing before it is aborted (RequestTimeout) and its put abandoned. */
  readonly bodyIdleTimeoutMs: number;
  /** How long a stop waits for requests in flight before cutting their connections. */
  readonly shutdownTimeoutMs: number;
  readonly runCommand: CommandRunner;
  readonly log: Logger;
}

/** Unix socket paths are limited to 108 bytes including the terminating NUL. */

export class Daemon {
  private stopping: Promise<void> | undefined;
  private readonly startedAtMs = Date.now();

  private constructor(
    private readonly options: DaemonOptions,
    readonly pool: Pool,
    private readonly gate: PoolGate,
    private readonly metrics: PoolMetrics,
    private readonly s3Server: Server,
    private readonly metricsServer: Server | undefined,
    private readonly commandSocket: CommandSocket,
    private readonly scrub: BackgroundScrub | undefined,
    private readonly socketPath: string,
  ) {}

  static async start(options: DaemonOptions): Promise<Daemon> {
    const log = options.log;
    const socketPath = path.join(options.poolDirectory, COMMAND_SOCKET_NAME);
    if (Buffer.byteLength(socketPath) > SOCKET_PATH_MAX_BYTES) {
      throw new ShardpoolError('SERVE_FAILED', `the command socket path ${socketPath} is longer than ${SOCKET_PATH_MAX_BYTES} bytes; move the pool to a shorter path`);
    }
    const pool = await Pool.open(options.poolDirectory, { access: 'write', lockWaitMs: options.lockWaitMs, directIo: options.directIo });
    const opened: Array<() => Promise<void>> = [() => pool.close()];
    for (const notice of pool.notices) log.warn({ pool: options.poolDirectory }, notice);
    try {
      const gate = new PoolGate();
      const scrubTurn = new Semaphore(1);
      const served: ServedPool = {
        pool,
        shared: (work) => gate.shared(work),
        maintenance: (work) => gate.maintenance(work),
        oneScrubAtATime: async (work) => {
          await scrubTurn.acquire();
          try {
            return await work();
          } finally {
            scrubTurn.release();
          }
        },
      };
      const metrics = new PoolMetrics(pool);
      opened.push(async () => metrics.close());
      const s3 = S3Catalog.of(pool.catalog);
      const abandoned = await removeAbandonedParts(pool, s3);
      if (abandoned.uploadsRemoved + abandoned.objectsRemoved > 0) {
        log.warn(abandoned, 'removed multipart parts that no upload could reach (left by a crash or an older shardpool)');
      }
      const s3Server = createS3Server(
        { pool, s3, gate, region: options.region, log: log.child({ component: 's3' }), bodyIdleTimeoutMs: options.bodyIdleTimeoutMs },
        (operation, status, seconds) => metrics.observeS3Request(operation, status, seconds),
      );
      await listen(s3Server, options.listen, '--listen');
      opened.push(() => closeServer(s3Server, 0));
      const commandSocket = await listenForCommands({ socketPath, served, runCommand: options.runCommand, log: log.child({ component: 'commands' }) });
      opened.push(async () => {
        await commandSocket.close(0);
        await unlink(socketPath).catch(() => undefined);
      });
      const scrub = options.scrub ? new BackgroundScrub(served, options.scrub, log.child({ component: 'scrub' })) : undefined;
      let daemon: Daemon | undefined;
      const metricsServer = options.metricsListen
        ? createServer((request, response) => {
            if (daemon) void daemon.serveOps(request.url ?? '/', request.method ?? 'GET', response);
            else response.writeHead(503, { 'Content-Type': 'text/plain' }).end('starting\n');
          })
        : undefined;
      if (metricsServer && options.metricsListen) {
        await listen(metricsServer, options.metricsListen, '--metrics-listen');
        opened.push(() => closeServer(metricsServer, 0));
      }
      daemon = new Daemon(options, pool, gate, metrics, s3Server, metricsServer, commandSocket, scrub, socketPath);
      await scrub?.start();
      log.info(
        {
          pool: options.poolDirectory,
          s3: daemon.s3Address(),
          metrics: daemon.metricsAddress(),
          region: options.region,
          commandSocket: socketPath,
          backgroundScrub: options.scrub ?? 'off',
        },
        'shardpool serve is ready',
      );
      return daemon;
    } catch (error) {
      for (const close of opened.reverse()) await close().catch(() => undefined);
      throw error;
    }
  }

  s3Address(): string {
    return addressOf(this.s3Server);
  }

  metricsAddress(): string | undefined {
    return this.metricsServer ? addressOf(this.metricsServer) : undefined;
  }

  /** Stops serving and closes the pool; safe to call more than once. */
  stop(reason: string): Promise<void> {
    this.stopping ??= this.shutDown(reason);
    return this.stopping;
  }

  private async shutDown(reason: string): Promise<void> {
    const log = this.options.log;
    log.info({ reason, writesInFlight: this.gate.writesInFlight }, 'stopping: no new requests; finishing those in flight');
    const timeoutMs = this.options.shutdownTimeoutMs;
    await Promise.all([closeServer(this.s3Server, timeoutMs), this.commandSocket.close(timeoutMs), this.scrub?.stop()]);
    await this.gate.idle();
    await unlink(this.socketPath).catch(() => undefined);
    this.metrics.close();
    await this.pool.close();
    if (this.metricsServer) await closeServer(this.metricsServer, 1000);
    log.info({ uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000) }, 'stopped: the pool is closed cleanly');
  }

  private async serveOps(url: string, method: string, response: import('node:http').ServerResponse): Promise<void> {
    const pathname = url.split('?')[0];
    try {
      if (method !== 'GET' && method !== 'HEAD') {
        response.writeHead(405, { Allow: 'GET, HEAD' }).end();
      } else if (pathname === '/metrics') {
        const text = await this.metrics.metricsText();
        response.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(method === 'HEAD' ? undefined : text);
      } else if (pathname === '/health') {
        const health = await this.health();
        response.writeHead(health.status === 'stopping' ? 503 : 200, { 'Content-Type': 'application/json' });
        response.end(method === 'HEAD' ? undefined : `${JSON.stringify(health)}\n`);
      } else {
        response.writeHead(404, { 'Content-Type': 'text/plain' }).end('shardpool serves /metrics and /health here\n');
      }
    } catch (error) {
      this.options.log.error({ err: error, url }, 'serving an operations request failed');
      if (!response.headersSent) response.writeHead(500).end();
      else response.destroy();
    }
  }

  /** /health: 200 while serving (status "ok", or "degraded" when data lacks redundancy), 503 while stopping. */
  async health(): Promise<Record<string, unknown>> {
    if (this.stopping) return { status: 'stopping' };
    const members = this.pool.listMembers();
    const unavailable = this.pool.unavailableDiskIds();
    const redundancy = await this.pool.catalog.redundancyReport(unavailable);
    const lastScrub = await this.scrub?.lastCompletedAtMs();
    const latched = members.filter((member) => member.disk?.latchedFailure !== undefined);
    return {
      status: unavailable.length === 0 && latched.length === 0 && redundancy.degradedExtents === 0 ? 'ok' : 'degraded',
      pool: this.options.poolDirectory,
      uptimeSeconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      disks: {
        total: members.length,
        healthy: members.filter((member) => member.row.state === 'healthy' && member.disk !== undefined && member.disk.latchedFailure === undefined).length,
        // Latched: a flush failed, so the disk takes no writes until the daemon is restarted (reads still work).
        latched: latched.length,
        failed: members.filter((member) => member.row.state === 'failed').length,
        offline: members.filter((member) => member.row.state !== 'failed' && member.disk === undefined).length,
      },
      extentsDegraded: redundancy.degradedExtents,
      extentsUnreadable: redundancy.unreadableExtents,
      writesInFlight: this.gate.writesInFlight,
      scrub: this.scrub ? { running: this.scrub.isRunning, lastCompletedAt: lastScrub === undefined ? null : new Date(lastScrub).toISOString() } : 'off',
    };
  }
}

async function listen(server: Server, address: ListenAddress, flag: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new ShardpoolError('SERVE_FAILED', `cannot listen on ${formatListenAddress(address)} (${flag}): ${error.code ?? error.message}`, {}, { cause: error }));
    };
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Stops accepting connections, waits for requests in flight up to timeoutMs, then cuts what is left. */
async function closeServer(server: Server | NetServer, timeoutMs: number): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  const timer = setTimeout(() => {
    if ('closeAllConnections' in server) server.closeAllConnections();
  }, timeoutMs);
  await closed;
  clearTimeout(timer);
}

function addressOf(server: Server): string {
  const address = server.address() as AddressInfo | null;
  return address ? formatListenAddress({ host: address.address, port: address.port }) : 'closed';
}
