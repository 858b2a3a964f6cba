// Crash testing: SHARDPOOL_KILL_AT=<step>[@<n>] makes the process SIGKILL itself the n-th time (default 1st) it
// reaches that named step of a commit protocol, so tests can prove every crash point leaves the pool consistent.
// The variable is read once; with it unset a kill point costs one comparison.
const spec = parseSpec(process.env.SHARDPOOL_KILL_AT);
let hits = 0;

/** The steps, in protocol order, that tests may kill at. */
export const KILL_POINTS = [
  'put.intent-recorded',
  'put.fragment-written',
  'put.progress-recorded',
  'put.manifest-written',
  'put.fragments-flushed',
  'put.committed',
  'remove.marker-written',
  'remove.committed',
  'gc.fragment-deleted',
  'gc.version-finished',
  'drain.fragment-copied',
  'drain.fragment-moved',
  // the S3 layer: a multipart Complete committed (object in, upload gone), its parts' fragments not yet freed
  'multipart.completed',
  // block devices: the group commit and the checkpoint
  'device.data-flushed',
  'device.journal-written',
  'device.journal-flushed',
  'device.checkpoint-written',
  'device.label-written',
] as const;
export type KillPoint = (typeof KILL_POINTS)[number];

export function killPoint(step: KillPoint): void {
  if (spec === undefined || spec.step !== step) return;
  hits += 1;
  if (hits === spec.hit) process.kill(process.pid, 'SIGKILL');
}

function parseSpec(text: string | undefined): { step: string; hit: number } | undefined {
  if (!text) return undefined;
  const [step, hitText] = text.split('@');
  const hit = hitText === undefined ? 1 : Number(hitText);
  if (!step || !Number.isInteger(hit) || hit < 1) return undefined;
  return { step, hit };
}
