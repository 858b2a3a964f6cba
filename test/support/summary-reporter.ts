// A node:test reporter that ends the run with one summary line, after the spec reporter's detail:
//   tests: 120 passed, 0 failed, 2 skipped
// Counted are the tests themselves (leaves), not the files or suites that group them.
import type { TestEvent } from 'node:test/reporters';

export default async function* summaryReporter(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const startedAtMs = Date.now();
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const files = new Set<string>();
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const data = event.data as { file?: string; skip?: unknown; todo?: unknown; details: { type?: string } };
    if (data.file) files.add(data.file);
    if (data.details.type === 'suite') continue;
    if (data.skip !== undefined || data.todo !== undefined) skipped += 1;
    else if (event.type === 'test:pass') passed += 1;
    else failed += 1;
  }
  const seconds = ((Date.now() - startedAtMs) / 1000).toFixed(1);
  // The last line stands alone in the plain form CI reads: "tests: N passed, N failed, N skipped".
  yield `\n${files.size} test files in ${seconds} s\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`;
}
