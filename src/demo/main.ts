// `npm run demo`: a pool on six directory disks in a temp directory, driven through the real command line.
// It stores a multi-MiB file with ec:4+2, fails a disk, corrupts a fragment on another, reads the file back
// verified, then drains the failed disk to restore full redundancy. Needs no root. `--keep` keeps the pool.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const DISK_COUNT = 6;
const FILE_SIZE_BYTES = 24 * 1024 * 1024;
const SHARDPOOL_BIN = fileURLToPath(new URL('../../../bin/shardpool', import.meta.url));

const run = promisify(execFile);

async function main(): Promise<void> {
  const keep = process.argv.includes('--keep');
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'shardpool-demo-'));
  const pool = path.join(root, 'pool');
  try {
    say(`demo pool in ${root} (six directory disks, policy ec:4+2: any 2 of 6 fragments may be lost)`);
    await shardpool('init', '--pool', pool, '--policy', 'ec:4+2', '--extent-size', '1MiB');
    for (let disk = 1; disk <= DISK_COUNT; disk += 1) {
      // add-disk refuses a missing directory on purpose: an unmounted /mnt/diskN must not silently become a
      // directory on the root filesystem. In real use each directory is the mount point of its own drive.
      await fs.mkdir(path.join(root, `disk${disk}`));
      await shardpool('add-disk', '--pool', pool, '--disk', path.join(root, `disk${disk}`));
    }
    const input = path.join(root, 'input.bin');
    await fs.writeFile(input, randomBytes(FILE_SIZE_BYTES));
    const inputDigest = await sha256(input);
    const stored = await shardpool('put', '--pool', pool, 'demo/random.bin', input);
    say(stored.trim());

    const object = JSON.parse(await shardpool('stat', '--pool', pool, 'demo/random.bin', '--json')) as StatJson;
    const fragmentsOnDisk3 = object.extents.flatMap((extent) => extent.fragments).filter((f) => f.diskId === 3).length;
    say(`${object.extentCount} extents × 6 fragments; disk 3 holds ${fragmentsOnDisk3} of them`);

    await shardpool('fail-disk', '--pool', pool, '--disk', '3');
    say('disk 3 marked failed: it is never read or written again');
    const corrupted = await corruptOneFragment(path.join(root, 'disk5'));
    say(`flipped a byte in a fragment on disk 5 (${path.basename(corrupted)}) to show checksums at work`);

    const output = path.join(root, 'output.bin');
    const got = await shardpool('get', '--pool', pool, 'demo/random.bin', output);
    const outputDigest = await sha256(output);
    if (outputDigest !== inputDigest) throw new Error(`read-back mismatch: ${outputDigest} != ${inputDigest}`);
    if (got.warnings.trim()) say(got.warnings.trim().replace(/^shardpool: warning: /, 'get: '));
    say(`read back ${FILE_SIZE_BYTES / 1024 / 1024} MiB with one disk failed and one fragment corrupt: sha256 matches (${inputDigest.slice(0, 16)}…)`);

    // Every fragment of an extent needs its own disk: to restore all 6 fragments, a replacement disk joins first.
    await fs.mkdir(path.join(root, 'disk7'));
    await shardpool('add-disk', '--pool', pool, '--disk', path.join(root, 'disk7'));
    const removed = await shardpool('remove-disk', '--pool', pool, '--disk', '3');
    say(`added disk 7 as a replacement, then ${removed.trim()}`);
    const status = JSON.parse(await shardpool('status', '--pool', pool, '--json')) as StatusJson;
    say(
      `pool is ${status.health}: ${status.disks.length} disks, ${status.objectCount} object, ` +
        `${status.extentsBelowFullRedundancy} extents below full redundancy`,
    );
    say(keep ? `kept: try  SHARDPOOL_POOL=${pool} ./bin/shardpool status` : 'done; removing the demo directory');
  } finally {
    if (!keep) await fs.rm(root, { recursive: true, force: true });
  }
}

interface StatJson {
  extentCount: number;
  extents: Array<{ fragments: Array<{ diskId: number }> }>;
}

interface StatusJson {
  health: string;
  disks: unknown[];
  objectCount: number;
  extentsBelowFullRedundancy: number;
}

/** Runs the real CLI; returns stdout (with stderr's warnings attached) and fails loudly on a non-zero exit. */
async function shardpool(...args: string[]): Promise<string & { warnings: string }> {
  const { stdout, stderr } = await run(process.execPath, [SHARDPOOL_BIN, ...args], {
    maxBuffer: 64 * 1024 * 1024,
  }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`shardpool ${args.join(' ')} failed: ${error.stderr?.trim() || error.message}`);
  });
  return Object.assign(String(stdout), { warnings: String(stderr) }) as string & { warnings: string };
}

async function corruptOneFragment(diskDirectory: string): Promise<string> {
  const files = await fs.readdir(diskDirectory, { recursive: true });
  const fragment = files.find((name) => name.endsWith('.frag'));
  if (!fragment) throw new Error(`no fragment found on ${diskDirectory}`);
  const fragmentPath = path.join(diskDirectory, fragment);
  const bytes = await fs.readFile(fragmentPath);
  const at = bytes.length - 1;
  bytes[at] = (bytes[at] ?? 0) ^ 0xff;
  await fs.writeFile(fragmentPath, bytes);
  return fragmentPath;
}

async function sha256(filePath: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(filePath)).digest('hex');
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
