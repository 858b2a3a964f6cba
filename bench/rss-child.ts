// Puts a generated stream of N bytes into a fresh pool on six directory disks, then prints this process's peak
// resident memory (VmHWM) in MiB. Run as its own process so the figure is the put's alone.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Pool } from '../src/pool/pool.js';
import { parsePolicy } from '../src/redundancy/policy.js';

async function main(): Promise<void> {
  const [root, bytesText] = process.argv.slice(2);
  const totalBytes = Number(bytesText);
  const directory = path.join(root as string, 'pool');
  await Pool.create(directory, { policy: parsePolicy('ec:4+2'), extentSizeBytes: 1024 * 1024 });
  const pool = await Pool.open(directory, { access: 'write', lockWaitMs: 1000 });
  try {
    for (let index = 0; index < 6; index += 1) {
      const disk = path.join(root as string, `disk${index}`);
      await fs.mkdir(disk, { recursive: true });
      await pool.addDisk(disk);
    }
    const chunk = Buffer.alloc(1024 * 1024, 7);
    async function* stream(): AsyncGenerator<Buffer> {
      for (let done = 0; done < totalBytes; done += chunk.length) yield Buffer.from(chunk.subarray(0, Math.min(chunk.length, totalBytes - done)));
    }
    await pool.put('stream', stream());
    await pool.removeObject('stream');
  } finally {
    await pool.close();
  }
  const status = await fs.readFile('/proc/self/status', 'utf8');
  const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? '0');
  process.stdout.write(`${(kib / 1024).toFixed(1)}\n`);
}

void main();
