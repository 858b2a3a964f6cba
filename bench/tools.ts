// External tools the bench runs (fio, Ceph): found on PATH, or installed from Debian's packages with apt-get when the
// bench runs as root (never from anywhere else). Every child process is started with an argument array.
import { type ExecFileOptions, execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { trackChild } from './cleanup.js';

/** execFile with an argument array, as a promise of its output; the child is killed if the bench is interrupted. */
export function run(file: string, args: ReadonlyArray<string>, options: ExecFileOptions = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { maxBuffer: 16 * 1024 * 1024, ...options, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
    trackChild(child);
  });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The absolute path of `binary` on PATH (or in the sbin directories root uses), or undefined. */
export async function whichTool(binary: string): Promise<string | undefined> {
  const directories = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter((entry) => entry !== '');
  for (const directory of directories) {
    const candidate = path.join(directory, binary);
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

let aptUpdated = false;

/**
 * Makes sure every binary in `binaries` is on the machine, installing `debianPackages` with apt-get if any is missing
 * (root only). Throws with the reason when a tool is missing and cannot be installed.
 */
export async function ensureTools(binaries: ReadonlyArray<string>, debianPackages: ReadonlyArray<string>, log: (line: string) => void): Promise<void> {
  const missing = async () => (await Promise.all(binaries.map(async (binary) => ((await whichTool(binary)) ? undefined : binary)))).filter((binary) => binary !== undefined);
  const before = await missing();
  if (before.length === 0) return;
  if (!isRoot()) throw new Error(`${before.join(', ')} not installed (as root the bench installs Debian's ${debianPackages.join(' ')})`);
  log(`installing Debian's ${debianPackages.join(' ')} (missing: ${before.join(', ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['install', '-y', '--no-install-recommends', ...debianPackages], { env, maxBuffer: 64 * 1024 * 1024 });
  try {
    await install();
  } catch {
    // An image without package lists (or with stale ones) needs one update first.
    if (aptUpdated) throw new Error(`apt-get install ${debianPackages.join(' ')} failed`);
    aptUpdated = true;
    await run('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 });
    await install();
  }
  const after = await missing();
  if (after.length > 0) throw new Error(`${after.join(', ')} still missing after installing ${debianPackages.join(' ')}`);
}
