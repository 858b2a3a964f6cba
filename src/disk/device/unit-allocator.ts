// The in-memory allocator of a device's data units: a bitmap (the persistent truth, checkpointed) plus an index of
// free runs sorted by start, so finding a contiguous run is a walk over runs, not over bits. Pure and synchronous;
// persistence is the journal's and the checkpoint's business (device-metadata.ts).
import { assert } from '../../assert.js';

export class UnitAllocator {
  private readonly bitmap: Uint8Array;
  /** Free runs, sorted by start, never adjacent (adjacent runs are merged). */
  private runStarts: number[] = [];
  private runLengths: number[] = [];
  private freeCount = 0;

  constructor(
    readonly unitCount: number,
    bitmap?: Uint8Array,
  ) {
    this.bitmap = new Uint8Array(Math.ceil(unitCount / 8));
    if (bitmap) this.bitmap.set(bitmap.subarray(0, this.bitmap.length));
    this.rebuildRuns();
  }

  get freeUnits(): number {
    return this.freeCount;
  }

  get usedUnits(): number {
    return this.unitCount - this.freeCount;
  }

  /**
   * A copy of the bitmap, for a checkpoint, with `unjournaled` runs shown free: they are allocated in memory but their
   * journal entries are not queued yet (a write in flight, a discard hold), and the entries that come later must
   * replay onto free units.
   */
  snapshot(unjournaled: Iterable<{ start: number; unitCount: number }> = []): Uint8Array {
    const copy = this.bitmap.slice();
    for (const run of unjournaled) {
      this.assertRange(run.start, run.unitCount);
      for (let unit = run.start; unit < run.start + run.unitCount; unit += 1) {
        assert(this.isAllocated(unit), 'an unjournaled run is allocated in memory');
        copy[unit >> 3] = (copy[unit >> 3] as number) & ~(1 << (unit & 7));
      }
    }
    return copy;
  }

  isAllocated(unit: number): boolean {
    return ((this.bitmap[unit >> 3] ?? 0) & (1 << (unit & 7))) !== 0;
  }

  /** First fit: the lowest free run long enough, so data stays packed toward the start. Undefined when none. */
  allocate(unitCount: number): number | undefined {
    assert(Number.isInteger(unitCount) && unitCount >= 1, 'allocations are whole units');
    for (let index = 0; index < this.runStarts.length; index += 1) {
      if ((this.runLengths[index] as number) >= unitCount) {
        const start = this.runStarts[index] as number;
        this.markAllocated(start, unitCount);
        return start;
      }
    }
    return undefined;
  }

  /** Marks units allocated (replay, or a chosen run). Every unit must be free. */
  markAllocated(start: number, unitCount: number): void {
    this.assertRange(start, unitCount);
    for (let unit = start; unit < start + unitCount; unit += 1) {
      assert(!this.isAllocated(unit), `unit ${unit} is free before it is allocated`);
      this.setBit(unit, true);
    }
    this.removeFromRuns(start, unitCount);
    this.freeCount -= unitCount;
    this.assertBalanced();
  }

  /** Frees units. Freeing a unit that is already free is a bug in the caller (a double free). */
  free(start: number, unitCount: number): void {
    this.assertRange(start, unitCount);
    for (let unit = start; unit < start + unitCount; unit += 1) {
      assert(this.isAllocated(unit), `unit ${unit} is allocated before it is freed`);
      this.setBit(unit, false);
    }
    this.addToRuns(start, unitCount);
    this.freeCount += unitCount;
    this.assertBalanced();
  }

  /** Allocated runs (maximal, so adjacent allocations merge): what a scan must look at. */
  *allocatedRuns(): Generator<{ start: number; unitCount: number }> {
    let cursor = 0;
    for (let index = 0; index <= this.runStarts.length; index += 1) {
      const freeStart = index < this.runStarts.length ? (this.runStarts[index] as number) : this.unitCount;
      if (freeStart > cursor) yield { start: cursor, unitCount: freeStart - cursor };
      cursor = freeStart + (this.runLengths[index] ?? 0);
    }
  }

  /** Free runs in order, as [start, unitCount]. */
  *freeRuns(): Generator<{ start: number; unitCount: number }> {
    for (let index = 0; index < this.runStarts.length; index += 1) {
      yield { start: this.runStarts[index] as number, unitCount: this.runLengths[index] as number };
    }
  }

  get largestFreeRun(): number {
    return this.runLengths.reduce((largest, length) => Math.max(largest, length), 0);
  }

  /** Where first fit would place `unitCount` units, without allocating. */
  firstFit(unitCount: number): number | undefined {
    const index = this.runLengths.findIndex((length) => length >= unitCount);
    return index < 0 ? undefined : this.runStarts[index];
  }

  isRangeAllocated(start: number, unitCount: number): boolean {
    for (let unit = start; unit < start + unitCount; unit += 1) if (!this.isAllocated(unit)) return false;
    return true;
  }

  isRangeFree(start: number, unitCount: number): boolean {
    for (let unit = start; unit < start + unitCount; unit += 1) if (this.isAllocated(unit)) return false;
    return true;
  }

  get freeRunCount(): number {
    return this.runStarts.length;
  }

  private rebuildRuns(): void {
    this.runStarts = [];
    this.runLengths = [];
    this.freeCount = 0;
    let runStart = -1;
    for (let unit = 0; unit <= this.unitCount; unit += 1) {
      const free = unit < this.unitCount && !this.isAllocated(unit);
      if (free && runStart < 0) runStart = unit;
      if (!free && runStart >= 0) {
        this.runStarts.push(runStart);
        this.runLengths.push(unit - runStart);
        this.freeCount += unit - runStart;
        runStart = -1;
      }
    }
  }

  private removeFromRuns(start: number, unitCount: number): void {
    const index = this.runContaining(start);
    assert(index >= 0, 'an allocation lies inside a free run');
    const runStart = this.runStarts[index] as number;
    const runEnd = runStart + (this.runLengths[index] as number);
    assert(start + unitCount <= runEnd, 'an allocation lies inside one free run');
    const pieces: Array<[number, number]> = [];
    if (start > runStart) pieces.push([runStart, start - runStart]);
    if (start + unitCount < runEnd) pieces.push([start + unitCount, runEnd - start - unitCount]);
    this.runStarts.splice(index, 1, ...pieces.map((piece) => piece[0]));
    this.runLengths.splice(index, 1, ...pieces.map((piece) => piece[1]));
  }

  private addToRuns(start: number, unitCount: number): void {
    let index = this.firstRunAfter(start);
    let newStart = start;
    let newLength = unitCount;
    const previous = index - 1;
    if (previous >= 0 && (this.runStarts[previous] as number) + (this.runLengths[previous] as number) === start) {
      newStart = this.runStarts[previous] as number;
      newLength += this.runLengths[previous] as number;
      this.runStarts.splice(previous, 1);
      this.runLengths.splice(previous, 1);
      index = previous;
    }
    if (index < this.runStarts.length && this.runStarts[index] === start + unitCount) {
      newLength += this.runLengths[index] as number;
      this.runStarts.splice(index, 1);
      this.runLengths.splice(index, 1);
    }
    this.runStarts.splice(index, 0, newStart);
    this.runLengths.splice(index, 0, newLength);
  }

  /** Index of the free run containing `unit`, or -1. */
  private runContaining(unit: number): number {
    const index = this.firstRunAfter(unit) - 1;
    if (index < 0) return -1;
    return unit < (this.runStarts[index] as number) + (this.runLengths[index] as number) ? index : -1;
  }

  /** Index of the first run whose start is greater than `unit` (binary search). */
  private firstRunAfter(unit: number): number {
    let low = 0;
    let high = this.runStarts.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.runStarts[middle] as number) <= unit) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private setBit(unit: number, allocated: boolean): void {
    const byte = unit >> 3;
    const mask = 1 << (unit & 7);
    this.bitmap[byte] = allocated ? (this.bitmap[byte] as number) | mask : (this.bitmap[byte] as number) & ~mask;
  }

  private assertRange(start: number, unitCount: number): void {
    assert(Number.isInteger(start) && start >= 0 && unitCount >= 1 && start + unitCount <= this.unitCount, 'unit range in bounds');
  }

  private assertBalanced(): void {
    assert(this.freeCount >= 0 && this.freeCount <= this.unitCount, 'free + used = total');
  }
}
