// Text tables for the command line; sizes are in ../units.ts.
import { ShardpoolError } from '../errors.js';
import { parseSize } from '../units.js';

export { formatBytes, parseSize } from '../units.js';

/** A rate such as 200MiB/s (the "/s" is optional). */
export function parseRate(text: string, flag: string): number {
  const bytes = parseSize(text.replace(/\/s$/i, ''), flag);
  if (bytes <= 0) throw new ShardpoolError('USAGE_INVALID', `${flag} must be positive, e.g. 200MiB/s`);
  return bytes;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as 500ms, 30s, 15m, 12h or 7d. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new ShardpoolError('USAGE_INVALID', `${flag} takes a duration such as 30s, 15m, 12h or 7d, not "${text}"`);
  return Math.round(Number(match[1]) * (DURATION_UNITS_MS[match[2] as string] as number));
}

/** Left-aligned text table with two spaces between columns. */
export function formatTable(header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
