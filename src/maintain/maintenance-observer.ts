// Progress of scrubs and rebuilds, wherever they run (the daemon's background scrub, a command it carries out), told
// to one process-wide observer: the daemon turns it into metrics. Without an observer nothing happens.

export type MaintenanceEvent =
  | { readonly kind: 'scrub'; readonly phase: 'progress'; readonly doneBytes: number; readonly totalBytes: number }
  | { readonly kind: 'scrub'; readonly phase: 'finished'; readonly errorsFound: number; readonly errorsRepaired: number; readonly interrupted: boolean }
  | { readonly kind: 'rebuild'; readonly phase: 'progress'; readonly doneFragments: number; readonly totalFragments: number }
  | { readonly kind: 'rebuild'; readonly phase: 'finished'; readonly fragmentsRebuilt: number };

let observer: ((event: MaintenanceEvent) => void) | undefined;

export function setMaintenanceObserver(next: ((event: MaintenanceEvent) => void) | undefined): void {
  observer = next;
}

export function reportMaintenance(event: MaintenanceEvent): void {
  observer?.(event);
}
