// Temporary directories that are removed when the test ends, pass or fail.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

export async function makeTempDir(t: TestContext, label = 'test'): Promise<string> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), `shardpool-${label}-`));
  t.after(() => fs.rm(directory, { recursive: true, force: true }));
  return directory;
}

/** Every regular file under `root`, as paths relative to it. */
export async function listFilesRecursively(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}
