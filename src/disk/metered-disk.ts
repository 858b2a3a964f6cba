// Timing and byte counts of every fragment read, write, delete and flush, per disk, for the daemon's metrics. The
// pool wraps each member in a Proxy (so `instanceof DeviceDisk` and every other property still work) that reports
// to one process-wide observer; without an observer (the command line) the cost is a function call per operation.
import type { Disk } from './disk.js';

export type DiskOperation = 'read' | 'write' | 'delete' | 'flush';

export interface DiskIoEvent {
  readonly diskUuid: string;
  readonly operation: DiskOperation;
  readonly bytes: number;
  readonly seconds: number;
  readonly ok: boolean;
}

let observer: ((event: DiskIoEvent) => void) | undefined;

/** Installs the observer (undefined removes it). */
export function setDiskIoObserver(next: ((event: DiskIoEvent) => void) | undefined): void {
  observer = next;
}

const METERED: Readonly<Record<string, DiskOperation>> = {
  writeFragment: 'write',
  readFragment: 'read',
  verifyFragment: 'read',
  deleteFragment: 'delete',
  flush: 'flush',
};

export function meterDisk<D extends Disk>(disk: D): D {
  return new Proxy(disk, {
    get(target, property, _receiver) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const operation = typeof property === 'string' ? METERED[property] : undefined;
      if (operation === undefined) return (value as (...args: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        const started = process.hrtime.bigint();
        let ok = false;
        let bytes = 0;
        try {
          const result: unknown = await (value as (...args: unknown[]) => Promise<unknown>).apply(target, args);
          ok = true;
          if (operation === 'write') bytes = (args[1] as Buffer).length;
          // readFragment returns the data; verifyFragment only the header, which says how much was read.
          if (operation === 'read') bytes = (result as { data?: Buffer }).data?.length ?? (result as { dataLengthBytes: number }).dataLengthBytes;
          return result;
        } finally {
          observer?.({ diskUuid: target.diskUuid, operation, bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9, ok });
        }
      };
    },
  });
}
