// What the kernel says about block devices, from /sys and /proc: identity, partitions, holders, mounts and swaps.
// Read-only; every function tolerates a missing file (a device without that attribute).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { listDirectory, readFileIfExists } from './durable-files.js';

export interface BlockDeviceSysfs {
  /** Kernel name, e.g. loop3, sda1, nvme0n1p2. */
  readonly name: string;
  /** "major:minor" */
  readonly majorMinor: string;
  readonly model: string | undefined;
  readonly serial: string | undefined;
  /** For a loop device: the file behind it. */
  readonly loopBackingFile: string | undefined;
  /** For a partition: the kernel name of the whole disk. */
  readonly parentDisk: string | undefined;
  /** Devices built on top of this one (device mapper, md, bcache...). */
  readonly holders: string[];
}

/** Sysfs facts about the block device at `devicePath` (a /dev node, after symlinks are resolved). */
export async function blockDeviceSysfs(devicePath: string): Promise<BlockDeviceSysfs> {
  const name = path.basename(await fs.realpath(devicePath));
  const base = `/sys/class/block/${name}`;
  const text = async (relative: string) => (await readFileIfExists(path.join(base, relative)))?.toString().trim() || undefined;
  const isPartition = (await readFileIfExists(path.join(base, 'partition'))) !== undefined;
  const parentDisk = isPartition ? path.basename(path.dirname(await fs.realpath(base))) : undefined;
  const deviceDirectory = parentDisk ? `../${parentDisk}/device` : 'device';
  return {
    name,
    majorMinor: (await text('dev')) ?? '',
    model: (await text(`${deviceDirectory}/model`)) ?? (await text('device/model')),
    serial: (await text(`${deviceDirectory}/serial`)) ?? (await text('device/serial')) ?? (await text('serial')),
    loopBackingFile: await text('loop/backing_file'),
    parentDisk,
    holders: await listDirectory(path.join(base, 'holders')),
  };
}

/** Kernel names of the partitions of a whole disk (empty for a disk without partitions). */
export async function partitionsOf(diskName: string): Promise<string[]> {
  const entries = await listDirectory(`/sys/class/block/${diskName}`);
  const partitions: string[] = [];
  for (const entry of entries) {
    if ((await readFileIfExists(`/sys/class/block/${diskName}/${entry}/partition`)) !== undefined) partitions.push(entry);
  }
  return partitions.sort();
}

export interface MountEntry {
  readonly majorMinor: string;
  readonly mountPoint: string;
  readonly source: string;
}

/** Every mount of this process's mount namespace (/proc/self/mountinfo). */
export async function mounts(): Promise<MountEntry[]> {
  const text = (await readFileIfExists('/proc/self/mountinfo'))?.toString() ?? '';
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source superoptions
    const fields = line.split(' ');
    const separator = fields.indexOf('-');
    if (fields.length < 5 || separator < 0) continue;
    entries.push({
      majorMinor: fields[2] as string,
      mountPoint: unescapeMountField(fields[4] as string),
      source: unescapeMountField(fields[separator + 2] ?? ''),
    });
  }
  return entries;
}

/** Paths of the active swap areas (/proc/swaps). */
export async function activeSwaps(): Promise<string[]> {
  const text = (await readFileIfExists('/proc/swaps'))?.toString() ?? '';
  return text
    .split('\n')
    .slice(1)
    .map((line) => unescapeMountField(line.split(/\s+/)[0] ?? ''))
    .filter((swapPath) => swapPath !== '');
}

function unescapeMountField(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export interface BlockDeviceName {
  /** The name to record: a /dev/disk/by-id or by-path link when one leads to the device, else /dev/<kernel name>. */
  readonly path: string;
  /** The device node the name leads to. */
  readonly devicePath: string;
}

/**
 * Every block device of this machine, once each, under its most stable name: the links of /dev/disk/by-id first
 * (serial numbers and WWNs, which follow a disk wherever it is attached), then /dev/disk/by-path (the port), then
 * every device the kernel lists in /sys/class/block, as libblkid enumerates them (/dev/disk may be empty without
 * udev). Devices the kernel lists without a /dev node are left out.
 */
export async function blockDeviceNames(): Promise<BlockDeviceName[]> {
  const byNode = new Map<string, string>();
  const note = async (name: string) => {
    try {
      const devicePath = await fs.realpath(name);
      if (!byNode.has(devicePath) && (await fs.stat(devicePath)).isBlockDevice()) byNode.set(devicePath, name);
    } catch {
      // A dangling link or a node that vanished meanwhile: nothing to find there.
    }
  };
  for (const directory of ['/dev/disk/by-id', '/dev/disk/by-path']) {
    for (const entry of (await listDirectory(directory)).sort()) await note(path.join(directory, entry));
  }
  for (const entry of (await listDirectory('/sys/class/block')).sort()) await note(path.join('/dev', entry));
  return [...byNode].map(([devicePath, name]) => ({ path: name, devicePath }));
}
