// Teardown that runs even when the bench fails or is interrupted: each resource the bench creates (a loop device, a
// daemon it started, a temporary directory) registers how to remove itself, by exact name or pid, and is removed in
// reverse order of creation by `cleanupAll()` — from a `finally`, or from the SIGINT/SIGTERM/SIGHUP handler, which
// then exits with the conventional 128 + signal code.
import type { ChildProcess } from 'node:child_process';

type Step = { readonly label: string; readonly run: () => Promise<void> };

const steps: Step[] = [];
let running: Promise<void> | undefined;
let handlersInstalled = false;

/** Registers a cleanup step; returns a function that runs it now (and only once) and unregisters it. */
export function onCleanup(label: string, run: () => Promise<void>): () => Promise<void> {
  const step: Step = { label, run };
  steps.push(step);
  installSignalHandlers();
  return async () => {
    const index = steps.indexOf(step);
    if (index < 0) return;
    steps.splice(index, 1);
    await runStep(step);
  };
}

/** Runs every registered step, newest first. Safe to call more than once (a second call waits for the first). */
export async function cleanupAll(): Promise<void> {
  running ??= (async () => {
    while (steps.length > 0) await runStep(steps.pop() as Step);
  })().finally(() => {
    running = undefined;
  });
  return running;
}

async function runStep(step: Step): Promise<void> {
  try {
    await step.run();
  } catch (error: unknown) {
    process.stderr.write(`shardpool bench: cleanup of ${step.label} failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

const toolChildren = new Set<ChildProcess>();

/** A short-lived tool (rados, ceph, fio, dd) the bench waits for: killed by its pid first when a signal arrives. */
export function trackChild(child: ChildProcess): void {
  toolChildren.add(child);
  child.once('exit', () => toolChildren.delete(child));
}

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const [signal, number] of Object.entries(SIGNAL_NUMBERS)) {
    process.once(signal as NodeJS.Signals, () => {
      process.stderr.write(`shardpool bench: ${signal}: tearing down what it created\n`);
      for (const child of toolChildren) child.kill('SIGKILL');
      void cleanupAll().finally(() => process.exit(128 + number));
    });
  }
}
