// Loop devices for tests: real block devices backed by a sparse image file. Each is detached by its exact name
// and its image deleted by detach(), which a test calls in `finally` after closing its handles; when the test ends,
// pass or fail, detach() runs again as a safety net (it is idempotent). Outside CI, tests that need root skip with a reason; under CI=true they fail,
// because CI runs as root and a skipped device test there would hide a missing capability.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import type { AfterHooks } from './daemon.js';

const run = promisify(execFile);

/** Runs a system tool for test set-up; fails the test with the tool's stderr when it fails. */
export async function sh(file: string, args: ReadonlyArray<string>): Promise<string> {
  try {
    return (await run(file, [...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${stderr?.trim() || message}`);
  }
}

export interface LoopDevice {
  /** /dev/loopN */
  readonly path: string;
  readonly imagePath: string;
  readonly sizeBytes: number;
  readonly sectorBytes: number;
  /** Detaches exactly this device and deletes its image; close every handle on it first. Idempotent. */
  detach(): Promise<void>;
}

/** True when loop-device tests can run here; otherwise skips (or, under CI=true, fails) the test. */
export function canUseLoopDevices(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  const reason = 'needs root for loop devices';
  if (process.env.CI === 'true') throw new Error(`block-device tests must run under CI=true, but: ${reason}`);
  t.skip(reason);
  return false;
}

export async function createLoopDevice(
  t: AfterHooks,
  options: { sizeBytes: number; sectorBytes: 512 | 4096 },
): Promise<LoopDevice> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'shardpool-loop-'));
  const imagePath = path.join(directory, 'image');
  await fs.writeFile(imagePath, '');
  await fs.truncate(imagePath, options.sizeBytes);
  let devicePath: string;
  try {
    const { stdout } = await run('losetup', [
      '--find',
      '--show',
      '--sector-size',
      String(options.sectorBytes),
      '--direct-io=on',
      imagePath,
    ]);
    devicePath = stdout.trim();
  } catch (error) {
    await fs.rm(directory, { recursive: true, force: true });
    throw error;
  }
  let detached: Promise<void> | undefined;
  const detach = (): Promise<void> =>
    (detached ??= (async () => {
      try {
        await detachLoopDevice(devicePath, imagePath);
      } finally {
        await fs.rm(directory, { recursive: true, force: true });
      }
    })());
  t.after(detach);
  return { path: devicePath, imagePath, sizeBytes: options.sizeBytes, sectorBytes: options.sectorBytes, detach };
}

/**
 * Detaches exactly this loop device and checks that it is gone. `losetup -d` on a device still held open only
 * marks it for autoclear and returns 0, so callers close their handles first; a device still attached fails loudly.
 */
export async function detachLoopDevice(devicePath: string, imagePath: string): Promise<void> {
  const attached = async () => {
    const { stdout } = await run('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']);
    return stdout.split('\n').some((line) => line.includes(devicePath + ' ') && line.includes(imagePath));
  };
  // Only while the name still holds this image: a name detached earlier may have been handed to someone else since.
  if (!(await attached())) return;
  await run('losetup', ['-d', devicePath]).catch(() => undefined);
  for (let attempt = 0; attempt < 50; attempt += 1) {
    if (!(await attached())) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`loop device ${devicePath} (${imagePath}) is still attached after losetup -d`);
}

/**
 * Attaches one more loop device to an existing image (at `devicePath` when given and free, else the first free
 * name): the same disk seen under another device name. Detached by exact name and image when the test ends; the
 * image itself belongs to whoever made it.
 */
export async function attachLoopImage(
  t: AfterHooks,
  imagePath: string,
  options: { sectorBytes: 512 | 4096; devicePath?: string },
): Promise<{ readonly path: string; detach(): Promise<void> }> {
  const common = ['--sector-size', String(options.sectorBytes), '--direct-io=on'];
  let devicePath: string | undefined;
  if (options.devicePath !== undefined) {
    // The name may have been taken by someone else since it was freed; then any free name does.
    devicePath = await run('losetup', [...common, options.devicePath, imagePath]).then(() => options.devicePath, () => undefined);
  }
  devicePath ??= (await run('losetup', ['--find', '--show', ...common, imagePath])).stdout.trim();
  const attachedPath = devicePath;
  let detached: Promise<void> | undefined;
  const detach = (): Promise<void> => (detached ??= detachLoopDevice(attachedPath, imagePath));
  t.after(detach);
  return { path: attachedPath, detach };
}
