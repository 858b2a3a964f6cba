// Memory measured in-process, for the tests that claim a bound on it.
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** Samples resident memory every 10 ms until stopped; stop() returns the peak. */
export function trackPeakRss(): { stop(): number } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage.rss());
    },
  };
}

/** The heap that survives a full garbage collection: what the code holds on to, not what it has let go of. */
export function liveHeapBytes(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();
