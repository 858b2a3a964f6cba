// The benchmark is not part of npm test, but a seconds-long smoke run of it is, so it cannot rot.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BENCH = fileURLToPath(new URL('../../bench/main.js', import.meta.url));

test('npm run bench -- --smoke --json runs every scenario and reports the ratios the issue names', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--smoke', '--json'], { maxBuffer: 8 * 1024 * 1024 });
  const report = JSON.parse(stdout) as { ratios: Record<string, number | null>; rsEncodeMBpsPerCore: number; hashGBps: number; peakRssMiB: number };
  for (const name of ['largePut', 'largeGet', 'degradedGet', 'smallPutsPerFlush', 'scrubVsRawRead', 'rebuildVsRawCopy']) {
    assert.ok(typeof report.ratios[name] === 'number' && (report.ratios[name] as number) > 0, `${name} measured`);
  }
  assert.ok('deviceVsDirectorySmallPut' in report.ratios);
  assert.ok(report.rsEncodeMBpsPerCore > 0 && report.hashGBps > 0 && report.peakRssMiB > 0);
});
