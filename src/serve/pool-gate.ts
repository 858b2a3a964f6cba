// Inside the daemon many requests share one open pool. Object writes (puts, deletes, multipart parts) run side by
// side and are never held back by maintenance. Maintenance (repair, rebuild, drain, trim, defrag, recover's cleanup,
// disk and user changes) runs one at a time, beside the writes: what makes that safe is stated where it happens
// (docs/architecture.md § concurrency): a version's fragments are freed only by its single collector, anyone who
// reads or moves a version pins it first, a disk that stops taking fragments waits for the writes that may still
// place fragments on it (Pool.waitForWritesInFlight), recover decides on live catalog rows. So neither a slow upload
// nor a long drain can stop the other: a maintenance command waits only for the one before it.

export class PoolGate {
  private sharedHolders = 0;
  private maintenanceHeld = false;
  private readonly maintenanceWaiters: Array<() => void> = [];
  private readonly idleWaiters: Array<() => void> = [];

  /** Runs an object write, at once. */
  async shared<T>(work: () => Promise<T>): Promise<T> {
    this.sharedHolders += 1;
    try {
      return await work();
    } finally {
      this.sharedHolders -= 1;
      this.wakeIdle();
    }
  }

  /** Runs maintenance after the maintenance before it (FIFO), beside object writes. */
  async maintenance<T>(work: () => Promise<T>): Promise<T> {
    if (this.maintenanceHeld) await new Promise<void>((resolve) => this.maintenanceWaiters.push(resolve));
    else this.maintenanceHeld = true;
    try {
      return await work();
    } finally {
      const next = this.maintenanceWaiters.shift();
      if (next) next(); // handed over: maintenanceHeld stays true
      else {
        this.maintenanceHeld = false;
        this.wakeIdle();
      }
    }
  }

  /** Writes in flight now (for shutdown and /health). */
  get writesInFlight(): number {
    return this.sharedHolders;
  }

  get maintenanceRunning(): boolean {
    return this.maintenanceHeld;
  }

  /** Resolves once no write and no maintenance is running (at shutdown, after new work was refused). */
  async idle(): Promise<void> {
    while (this.sharedHolders > 0 || this.maintenanceHeld) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private wakeIdle(): void {
    if (this.sharedHolders > 0 || this.maintenanceHeld) return;
    for (const waiter of this.idleWaiters.splice(0)) waiter();
  }
}
