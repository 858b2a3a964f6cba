// Which directories of a directory disk need an fsync, and the fsyncs in flight. A rename or unlink is durable only
// once its directory is fsynced; flush() must cover every change that completed before it was called, including a
// change made while an earlier fsync of the same directory was already running (that fsync may have missed it).
//
// Each change takes the next generation number; a directory's fsync covers the latest generation of that directory
// at the moment it starts. A flush waits, per directory it saw dirty, until an fsync that started after its change
// has returned — joining the one in flight when that covers it, else starting the next (one at a time per
// directory, so N concurrent flushes of a busy directory cost two fsyncs, not N). A failed fsync latches: the dirty
// state it was meant to persist may be gone (fsyncgate), so every later flush fails too.
import { assert } from '../../assert.js';

export class DirectorySyncs {
  private generation = 0;
  /** Directory → generation of its latest change not yet known durable. */
  private readonly dirty = new Map<string, number>();
  /** Directory → highest generation an fsync returned for (kept only while the directory is still dirty). */
  private readonly synced = new Map<string, number>();
  private readonly inFlight = new Map<string, { covers: number; done: Promise<void> }>();
  private latched: { error: unknown } | undefined;

  constructor(private readonly fsync: (directory: string) => Promise<void>) {}

  get failure(): unknown {
    return this.latched?.error;
  }

  /** A rename or unlink in `directory` completed; the next flush must cover it. */
  changed(directory: string): void {
    this.generation += 1;
    this.dirty.set(directory, this.generation);
  }

  /** Resolves once every change that completed before this call is durable; rejects if any fsync failed. */
  async flush(): Promise<void> {
    if (this.latched) throw this.latched.error;
    const targets = [...this.dirty];
    await Promise.all(targets.map(([directory, generation]) => this.syncThrough(directory, generation)));
  }

  private async syncThrough(directory: string, generation: number): Promise<void> {
    for (;;) {
      if (this.latched) throw this.latched.error;
      if (this.isDurable(directory, generation)) return;
      const running = this.inFlight.get(directory);
      if (running) {
        await running.done.catch(() => undefined);
        continue; // it covered our change, or it started before it: look again
      }
      const covers = this.dirty.get(directory) as number;
      assert(covers >= generation, 'a directory not yet durable is dirty with this change or a later one');
      const done = this.fsync(directory).then(
        () => {
          this.inFlight.delete(directory);
          this.synced.set(directory, Math.max(this.synced.get(directory) ?? 0, covers));
          if ((this.dirty.get(directory) ?? 0) <= covers) {
            this.dirty.delete(directory);
            this.synced.delete(directory);
          }
        },
        (error: unknown) => {
          this.inFlight.delete(directory);
          this.latched ??= { error };
          throw error;
        },
      );
      this.inFlight.set(directory, { covers, done });
      await done;
    }
  }

  private isDurable(directory: string, generation: number): boolean {
    if (!this.dirty.has(directory)) return true; // every change of it is covered by an fsync that returned
    return (this.synced.get(directory) ?? 0) >= generation;
  }
}
