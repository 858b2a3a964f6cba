// The bench's devices: image files in a temporary directory, filled with zeros and attached as loop devices (root), or
// used as device image files (--smoke). Everything created here is registered for teardown by exact name.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { onCleanup } from './cleanup.js';
import { run } from './tools.js';

export interface RigOptions {
  readonly deviceBytes: number;
  readonly loopDevices: boolean;
}

export class Rig {
  readonly devices: string[] = [];
  readonly loops: string[] = [];
  readonly mounts: string[] = [];
  readonly teardown: () => Promise<void>;

  constructor(
    readonly root: string,
    readonly options: RigOptions,
  ) {
    this.teardown = onCleanup(`bench rig ${root}`, () => this.removeAll());
  }

  /** Creates `count` more devices named `${prefix}N` (images filled with zeros, then loop devices when asked). */
  async createDevices(count: number, prefix = 'device'): Promise<string[]> {
    const first = this.devices.length;
    const images = Array.from({ length: count }, (_, index) => path.join(this.root, `${prefix}${first + index}.img`));
    for (const image of images) {
      await fs.writeFile(image, '');
      await fs.truncate(image, this.options.deviceBytes);
    }
    // A sparse image is not a disk: its first write to each block allocates it in the filesystem underneath (about
    // half the speed of writing it again, measured here). Filled, every block exists, as on a disk.
    if (this.options.loopDevices) await Promise.all(images.map((image) => fillWithZeros(image, 0, this.options.deviceBytes)));
    const created: string[] = [];
    for (const [index, image] of images.entries()) {
      if (this.options.loopDevices) {
        const sector = (first + index) % 2 === 0 ? '512' : '4096';
        const { stdout } = await run('losetup', ['--find', '--show', '--sector-size', sector, '--direct-io=on', image]);
        const loop = stdout.trim();
        if (!/^\/dev\/loop\d+$/.test(loop)) throw new Error(`losetup printed ${JSON.stringify(stdout)}`);
        this.loops.push(loop);
        created.push(loop);
      } else {
        created.push(image);
      }
    }
    this.devices.push(...created);
    return created;
  }

  private async removeAll(): Promise<void> {
    for (const mount of this.mounts.splice(0).reverse()) await run('umount', [mount]).catch(() => undefined);
    for (const loop of this.loops.splice(0).reverse()) await run('losetup', ['-d', loop]).catch(() => undefined);
    await fs.rm(this.root, { recursive: true, force: true });
  }
}

/** Writes zeros over a byte range of a file or device, in 4 MiB direct writes (bypassing the page cache). */
export async function fillWithZeros(target: string, offsetBytes: number, lengthBytes: number): Promise<void> {
  await run('dd', ['if=/dev/zero', `of=${target}`, 'bs=4M', `seek=${offsetBytes}`, `count=${lengthBytes}`, 'iflag=count_bytes', 'oflag=seek_bytes,direct', 'conv=notrunc,fdatasync', 'status=none']);
}
