// `npm run torture -- [--seconds N] [--seed S] [--disks directory|image|loop] [--clients N] [--cli-clients N] [--keys N]
// [--json] [--keep]`: one torture run (see workload.ts); exits 0 when the checker and the audit found nothing, 1
// otherwise. --keep leaves a failed run's pool directory behind for inspection.
// The seed is printed first and, on failure, the command that reruns the same workload.
import { parseArgs } from 'node:util';
import { formatReport, runTorture, type DiskKind } from './workload.js';

const DISK_KINDS: ReadonlyArray<DiskKind> = ['directory', 'image', 'loop'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      disks: { type: 'string', default: 'directory' },
      clients: { type: 'string', default: '24' },
      'cli-clients': { type: 'string', default: '2' },
      keys: { type: 'string', default: '8' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const disks = values.disks as DiskKind;
  if (!DISK_KINDS.includes(disks)) throw new Error(`--disks takes ${DISK_KINDS.join(', ')}, not ${values.disks}`);
  if (disks === 'loop' && process.getuid?.() !== 0) throw new Error('--disks loop needs root (losetup)');
  const seed = values.seed === undefined ? Math.floor(Math.random() * 1_000_000) : Number(values.seed);
  const report = await runTorture({
    seconds: Number(values.seconds),
    seed,
    disks,
    clients: Number(values.clients),
    cliClients: Number(values['cli-clients']),
    keys: Number(values.keys),
    keepOnFailure: values.keep,
    log: values.json ? undefined : (line) => process.stdout.write(`${line}\n`),
  });
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatReport(report)}\n`);
  process.exitCode = report.passed ? 0 : 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`torture: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 2;
});
