// A bounded torture run per disk kind (see workload.ts): concurrent AWS SDK and CLI clients on a few hot keys beside
// scrub, defrag and drains, checked as registers, then the pool audited. The seed is printed; a failure prints the
// command that reruns it (`npm run torture -- …`). Loop devices need root: skipped outside CI, never under CI=true.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canUseLoopDevices } from '../support/loop-device.js';
import { testSeed } from '../support/seeded-random.js';
import { formatReport, runTorture, type DiskKind } from './workload.js';
import { testCatalogArgs } from '../support/test-catalog.js';

const SECONDS = Number(process.env.SHARDPOOL_TORTURE_SECONDS ?? 20);
const TIMEOUT_MS = (SECONDS + 120) * 1000;

for (const disks of ['directory', 'image', 'loop'] as const satisfies ReadonlyArray<DiskKind>) {
  test(`under concurrent S3 and CLI load with maintenance, every key on ${disks} disks behaves as a register and the pool audits clean`, { timeout: TIMEOUT_MS }, async (t) => {
    if (disks === 'loop' && !canUseLoopDevices(t)) return;
    const seed = testSeed();
    const report = await runTorture({
      seconds: SECONDS,
      seed,
      disks,
      clients: 16,
      cliClients: 1,
      keys: 8,
      log: (line) => t.diagnostic(line),
      catalogArgs: await testCatalogArgs(),
    });
    t.diagnostic(formatReport(report));
    assert.ok(report.passed, formatReport(report));
  });
}
