// Progress bars for long operations: drawn on stderr when it is a terminal, silent when piped or with --json.
import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';
import { formatBytes } from './units.js';
import { terminal } from './terminal.js';

export interface Progress {
  update(doneBytes: number): void;
  stop(): void;
}

const SILENT: Progress = { update: () => undefined, stop: () => undefined };

/** cli-progress (and its dependencies) are loaded only once a bar is drawn: most runs draw none. */
function cliProgress(): typeof CliProgress {
  return createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
}

export function startByteProgress(options: { label: string; totalBytes: number | undefined; enabled: boolean }): Progress {
  if (!options.enabled || !terminal().stderr.isTTY) return SILENT;
  const startedAtMs = Date.now();
  const known = options.totalBytes !== undefined && options.totalBytes > 0;
  const bar = new (cliProgress().SingleBar)(
    {
      stream: terminal().stderr,
      format: known
        ? `${options.label} [{bar}] {percentage}% {done} / {total} {rate} ETA {eta_formatted}`
        : `${options.label} {done} {rate}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress().Presets.shades_classic,
  );
  const payload = (doneBytes: number) => {
    const seconds = Math.max((Date.now() - startedAtMs) / 1000, 0.001);
    return {
      done: formatBytes(doneBytes),
      total: formatBytes(options.totalBytes),
      rate: `${formatBytes(Math.round(doneBytes / seconds))}/s`,
    };
  };
  bar.start(known ? (options.totalBytes as number) : 1, 0, payload(0));
  return {
    update: (doneBytes) => bar.update(known ? doneBytes : 0, payload(doneBytes)),
    stop: () => bar.stop(),
  };
}

export function startCountProgress(options: { label: string; total: number; enabled: boolean }): {
  update(done: number): void;
  stop(): void;
} {
  if (!options.enabled || !terminal().stderr.isTTY || options.total === 0) return SILENT;
  const bar = new (cliProgress().SingleBar)(
    { stream: terminal().stderr, format: `${options.label} [{bar}] {value}/{total} ETA {eta_formatted}`, hideCursor: true, clearOnComplete: true },
    cliProgress().Presets.shades_classic,
  );
  bar.start(options.total, 0);
  return { update: (done) => bar.update(done), stop: () => bar.stop() };
}

/**
 * A count bar for moves (drain, replace, rebuild) that learns its total from the first progress report, and is
 * stopped by `stop()` whether or not a report ever came.
 */
export function moveProgress(label: string, enabled: boolean): {
  onProgress(state: { moved: number; rebuilt: number; total: number }): void;
  stop(): void;
} {
  let bar: ReturnType<typeof startCountProgress> | undefined;
  return {
    onProgress: (state) => {
      bar ??= startCountProgress({ label, total: state.total, enabled });
      bar.update(state.moved + state.rebuilt);
    },
    stop: () => bar?.stop(),
  };
}
