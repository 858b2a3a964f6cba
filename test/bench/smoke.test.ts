// The benchmark is not part of npm test, but a seconds-long smoke run of it is, so it cannot rot.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

interface Figure {
  median: number;
  min: number;
  max: number;
}
interface EngineFigures {
  putsPerSecond: Figure;
  piecesPerGroupCommit: Figure;
}

const BENCH = fileURLToPath(new URL('../../bench/main.js', import.meta.url));

test('npm run bench -- --smoke --json runs every scenario and reports the ratios the issue names', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--smoke', '--json'], { maxBuffer: 8 * 1024 * 1024 });
  const report = JSON.parse(stdout) as {
    ratios: Record<string, number | null>;
    rsEncodeMBpsPerCore: number;
    hashGBps: number;
    peakRssMiB: number;
    catalogEngines: { rounds: number; order: string[][]; sqlite: EngineFigures; postgresql: EngineFigures | { skipped: string } };
    cli: {
      startupVsNode: Record<'version' | 'ls' | 'stat', Figure>;
      largePut: { cliVsInProcess: Figure };
      concurrentPuts: { withDaemonPerSecond: Figure; withoutDaemonPerSecond: Figure; bareNodePerSecond: Figure };
    };
  };
  for (const name of ['largePut', 'largeGet', 'degradedGet', 'smallPutsPerFlush', 'scrubVsRawRead', 'rebuildVsRawCopy']) {
    assert.ok(typeof report.ratios[name] === 'number' && (report.ratios[name] as number) > 0, `${name} measured`);
  }
  assert.ok('deviceVsDirectorySmallPut' in report.ratios);
  assert.ok(report.rsEncodeMBpsPerCore > 0 && report.hashGBps > 0 && report.peakRssMiB > 0);
  // The catalog engines side by side: at least 3 rounds, medians with min and max; PostgreSQL measured or skipped
  // with its reason (no server can be started here).
  const engines = report.catalogEngines;
  assert.ok(engines.rounds >= 3 && engines.order.length === engines.rounds);
  const measured = (figures: EngineFigures, name: string) => {
    for (const figure of [figures.putsPerSecond, figures.piecesPerGroupCommit]) {
      assert.ok(figure.min > 0 && figure.min <= figure.median && figure.median <= figure.max, `${name} figures measured`);
    }
  };
  measured(engines.sqlite, 'SQLite');
  // The paths users run: CLI start-up beside node -e 0, a CLI put beside the same put in-process, concurrent CLI puts.
  const cli = report.cli;
  for (const figure of [cli.startupVsNode.version, cli.startupVsNode.ls, cli.startupVsNode.stat, cli.largePut.cliVsInProcess, cli.concurrentPuts.withDaemonPerSecond, cli.concurrentPuts.withoutDaemonPerSecond, cli.concurrentPuts.bareNodePerSecond]) {
    assert.ok(figure.min > 0 && figure.min <= figure.median && figure.median <= figure.max, 'CLI figures measured');
  }
  if ('skipped' in engines.postgresql) assert.match(engines.postgresql.skipped, /PostgreSQL/);
  else measured(engines.postgresql, 'PostgreSQL');
});
