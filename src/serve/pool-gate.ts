// Inside the daemon many requests share one open pool. Object writes (puts, deletes, multipart parts) run side by
// side; maintenance that assumes nothing else changes the pool (repair, rebuild, drain, trim, defrag, recover's
// cleanup) runs alone: it waits for writes in flight to finish and holds new ones back until it is done. Reads need
// neither: a reader pins the version it streams (Pool.pinVersion).

export class PoolGate {
  private sharedHolders = 0;
  private exclusiveHeld = false;
  private readonly exclusiveWaiters: Array<() => void> = [];
  private readonly sharedWaiters: Array<() => void> = [];

  /** Runs an object write; waits while maintenance runs alone (or waits to). */
  async shared<T>(work: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld || this.exclusiveWaiters.length > 0) {
      await new Promise<void>((resolve) => this.sharedWaiters.push(resolve));
    }
    this.sharedHolders += 1;
    try {
      return await work();
    } finally {
      this.sharedHolders -= 1;
      this.wake();
    }
  }

  /** Runs maintenance alone: after the writes in flight, before any new one. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld || this.sharedHolders > 0) {
      await new Promise<void>((resolve) => this.exclusiveWaiters.push(resolve));
    }
    this.exclusiveHeld = true;
    try {
      return await work();
    } finally {
      this.exclusiveHeld = false;
      this.wake();
    }
  }

  /** Writes in flight now (for shutdown and /health). */
  get writesInFlight(): number {
    return this.sharedHolders;
  }

  /** Resolves once nothing holds the gate. */
  async idle(): Promise<void> {
    await this.exclusive(async () => undefined);
  }

  private wake(): void {
    if (this.exclusiveHeld) return;
    if (this.sharedHolders === 0 && this.exclusiveWaiters.length > 0) {
      this.exclusiveWaiters.shift()?.();
      return;
    }
    if (this.exclusiveWaiters.length === 0) for (const waiter of this.sharedWaiters.splice(0)) waiter();
  }
}
