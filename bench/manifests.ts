// What version manifests cost (docs/format.md § Version manifest), measured side by side in one run on one pool:
// puts of user keys (each with its manifest copies, in the same flush round) against the same puts under shardpool's
// reserved prefix, which the pool writes without a manifest (multipart parts do that); rounds alternate so noise hits
// both. And the other side of the bargain: `import` time, scaled per million fragment records.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { importPool } from '../src/maintain/import.js';
import type { Pool } from '../src/pool/pool.js';
import { RESERVED_KEY_PREFIX } from '../src/pool/keys.js';
import { type Figure, figureOf, formatFigure, seconds } from './stats.js';
import { smallPuts } from './workloads.js';

const MiB = 1024 * 1024;

export interface ManifestCost {
  /** 4 KiB puts per second, 32 at a time. */
  readonly smallWith: Figure;
  readonly smallWithout: Figure;
  /** Large puts, bytes per second. */
  readonly largeWith: Figure;
  readonly largeWithout: Figure;
}

export interface ImportCost {
  /** Seconds an import of the pool's disks takes per million fragment records found (scan, catalog, write-open). */
  readonly secondsPerMillionRecords: number;
  readonly records: number;
  readonly seconds: number;
}

async function largeRound(pool: Pool, objectBytes: number, objects: number, prefix: string, internal: boolean): Promise<number> {
  const block = randomBytes(4 * MiB);
  const started = process.hrtime.bigint();
  for (let index = 0; index < objects; index += 1) {
    const chunks = function* () {
      for (let done = 0; done < objectBytes; done += block.length) yield block.subarray(0, Math.min(block.length, objectBytes - done));
    };
    await pool.put(`${prefix}/${index}`, chunks(), { internal });
  }
  return (objects * objectBytes) / seconds(started);
}

/** Rounds with and without manifests on `pool`, alternating which goes first. */
export async function measureManifestCost(
  pool: Pool,
  options: { readonly rounds: number; readonly smallPuts: number; readonly largeObjectBytes: number; readonly largeObjects: number },
): Promise<ManifestCost> {
  const smallWith: number[] = [];
  const smallWithout: number[] = [];
  const largeWith: number[] = [];
  const largeWithout: number[] = [];
  for (let round = 0; round < options.rounds; round += 1) {
    for (const internal of round % 2 === 0 ? [false, true] : [true, false]) {
      const prefix = internal ? `${RESERVED_KEY_PREFIX}bench/${round}` : `manifest-bench/${round}`;
      (internal ? smallWithout : smallWith).push((await smallPuts(pool, options.smallPuts, `${prefix}/small`, { internal })).putsPerSecond);
      (internal ? largeWithout : largeWith).push(await largeRound(pool, options.largeObjectBytes, options.largeObjects, `${prefix}/large`, internal));
    }
  }
  return { smallWith: figureOf(smallWith), smallWithout: figureOf(smallWithout), largeWith: figureOf(largeWith), largeWithout: figureOf(largeWithout) };
}

/** Times `shardpool import` of the disks of a closed pool into a scratch directory (removed afterwards). */
export async function measureImport(disks: ReadonlyArray<string>, scratch: string): Promise<ImportCost> {
  const directory = path.join(scratch, 'imported');
  await fs.rm(directory, { recursive: true, force: true });
  let records = 0;
  const started = process.hrtime.bigint();
  await importPool(directory, { disks, directIo: 'auto', onProgress: (progress) => (records = progress.recordsFound) });
  const elapsed = seconds(started);
  await fs.rm(directory, { recursive: true, force: true });
  return { secondsPerMillionRecords: records === 0 ? 0 : (elapsed / records) * 1e6, records, seconds: elapsed };
}

export function formatManifestCost(cost: ManifestCost, imported: ImportCost | undefined): string[] {
  const ratio = (a: Figure, b: Figure) => (b.median === 0 ? 0 : a.median / b.median);
  const mib = (figure: Figure) => `${(figure.median / MiB).toFixed(0)} (${(figure.min / MiB).toFixed(0)}–${(figure.max / MiB).toFixed(0)})`;
  return [
    `version manifests: 4 KiB puts ${formatFigure(cost.smallWith)}/s with, ${formatFigure(cost.smallWithout)}/s without: ${ratio(cost.smallWith, cost.smallWithout).toFixed(2)} (target ≥ 0.90)`,
    `                   large puts ${mib(cost.largeWith)} MiB/s with, ${mib(cost.largeWithout)} MiB/s without: ${ratio(cost.largeWith, cost.largeWithout).toFixed(2)} (target ≥ 0.97)`,
    imported
      ? `                   import: ${imported.records} fragment records in ${imported.seconds.toFixed(1)} s = ${imported.secondsPerMillionRecords.toFixed(0)} s per million`
      : '                   import: not measured',
  ];
}
