// Probing a device before shardpool may format it: what is on it (libblkid's signature probes through wipefs and
// blkid, plus shardpool's own label) and who is using it (mounts, holders, swap, sibling partitions, exclusive
// opens). A probe only reads. Whatever cannot be established is recorded in probeErrors, and admission rejects it.
import { BlockFile } from '../io/block-io.js';
import { pathKind, realPath } from '../io/durable-files.js';
import { lockFile } from '../io/file-lock.js';
import { runCommand } from '../io/run-command.js';
import { activeSwaps, blockDeviceSysfs, mounts, partitionsOf, type BlockDeviceSysfs } from '../io/system-info.js';
import { readDeviceLabel } from '../disk/device/device-label-store.js';
import type { LabelVerdict } from '../format/device-label.js';
import { isShardpoolError } from '../errors.js';

export interface Signature {
  /** libblkid's name: ext4, xfs, btrfs, gpt, dos, PMBR, LVM2_member, linux_raid_member, crypto_LUKS, swap, ... */
  readonly type: string;
  readonly offsetBytes: number;
  readonly label: string | undefined;
  readonly uuid: string | undefined;
}

export interface DeviceProbe {
  readonly path: string;
  readonly realPath: string;
  readonly kind: 'block-device' | 'image-file';
  readonly sizeBytes: number;
  readonly logicalSectorBytes: number;
  readonly physicalSectorBytes: number;
  readonly sysfs: BlockDeviceSysfs | undefined;
  readonly signatures: Signature[];
  readonly shardpoolLabel: LabelVerdict;
  /** Partitions the kernel knows on this (whole) device. */
  readonly partitions: string[];
  /** Mount points of this device or any of its partitions. */
  readonly mountedAt: string[];
  /** Holders of this device or any of its partitions (device mapper, md, bcache...). */
  readonly holders: string[];
  readonly activeSwap: boolean;
  /** When this is a partition: its sibling partitions that are in use (mounted, held, swap). */
  readonly busySiblingPartitions: string[];
  /** False when an exclusive open (O_EXCL for devices, flock for images) was refused: someone else holds it. */
  readonly exclusivelyAvailable: boolean;
  /** Anything the probe could not establish; admission refuses the device when this is not empty. */
  readonly probeErrors: string[];
}

export async function probeDevice(devicePath: string): Promise<DeviceProbe> {
  const kind = (await pathKind(devicePath)) === 'block-device' ? 'block-device' : 'image-file';
  const resolved = await realPath(devicePath);
  const probeErrors: string[] = [];
  const file = await BlockFile.open(resolved, { directIo: 'never', exclusive: false, readOnly: true });
  let shardpoolLabel: LabelVerdict;
  let exclusivelyAvailable = true;
  try {
    shardpoolLabel = await readDeviceLabel(file);
    // A pool that has this device open holds an exclusive flock on it, whatever the kind.
    if (!(await lockFile(file.fd, 'exclusive'))) exclusivelyAvailable = false;
  } finally {
    await file.close();
  }
  if (kind === 'block-device' && exclusivelyAvailable) exclusivelyAvailable = await canOpenExclusively(resolved);

  const signatures = await probeSignatures(resolved, probeErrors);
  let sysfs: BlockDeviceSysfs | undefined;
  let partitions: string[] = [];
  const mountedAt: string[] = [];
  const holders: string[] = [];
  let activeSwap = false;
  const busySiblingPartitions: string[] = [];
  if (kind === 'block-device') {
    try {
      sysfs = await blockDeviceSysfs(resolved);
    } catch (error) {
      probeErrors.push(`cannot read /sys/class/block for ${resolved}: ${(error as Error).message}`);
    }
  }
  if (kind === 'block-device' && sysfs) {
    partitions = sysfs.parentDisk ? [] : await partitionsOf(sysfs.name);
    const allMounts = await mounts();
    const swaps = await Promise.all((await activeSwaps()).map((swap) => realPath(swap).catch(() => swap)));
    const usage = async (name: string) => {
      const facts = name === sysfs?.name ? sysfs : await blockDeviceSysfs(`/dev/${name}`).catch(() => undefined);
      const mountPoints = facts ? allMounts.filter((mount) => mount.majorMinor === facts.majorMinor).map((m) => m.mountPoint) : [];
      return { mountPoints, holders: facts?.holders ?? [], swap: swaps.includes(`/dev/${name}`) };
    };
    for (const name of [sysfs.name, ...partitions]) {
      const used = await usage(name);
      mountedAt.push(...used.mountPoints.map((point) => (name === sysfs?.name ? point : `${point} (${name})`)));
      holders.push(...used.holders.map((holder) => (name === sysfs?.name ? holder : `${holder} (on ${name})`)));
      if (used.swap) activeSwap = true;
    }
    if (sysfs.parentDisk) {
      for (const sibling of await partitionsOf(sysfs.parentDisk)) {
        if (sibling === sysfs.name) continue;
        const used = await usage(sibling);
        if (used.mountPoints.length > 0 || used.holders.length > 0 || used.swap) busySiblingPartitions.push(sibling);
      }
    }
  } else {
    // An image attached to a loop device is in use through that device.
    const attached = await runCommand('losetup', ['--associated', resolved, '--noheadings', '--output', 'NAME']).catch(() => undefined);
    if (attached && attached.exitCode === 0 && attached.stdout.trim() !== '') {
      holders.push(...attached.stdout.trim().split('\n').map((name) => `loop device ${name.trim()}`));
    }
  }
  return {
    path: devicePath,
    realPath: resolved,
    kind,
    sizeBytes: file.info.sizeBytes,
    logicalSectorBytes: file.info.logicalSectorBytes,
    physicalSectorBytes: file.info.physicalSectorBytes,
    sysfs,
    signatures,
    shardpoolLabel,
    partitions,
    mountedAt,
    holders,
    activeSwap,
    busySiblingPartitions,
    exclusivelyAvailable,
    probeErrors,
  };
}

async function canOpenExclusively(devicePath: string): Promise<boolean> {
  try {
    const file = await BlockFile.open(devicePath, { directIo: 'never', exclusive: true, readOnly: true });
    await file.close();
    return true;
  } catch (error) {
    if (isShardpoolError(error, 'DEVICE_BUSY')) return false;
    throw error;
  }
}

/** Signatures libblkid finds: wipefs lists every superblock and partition table with its offset; blkid -p adds
 *  what wipefs may not report as a signature (e.g. a partition table type). */
async function probeSignatures(devicePath: string, probeErrors: string[]): Promise<Signature[]> {
  const signatures: Signature[] = [];
  try {
    const wipefs = await runCommand('wipefs', ['--no-act', '--json', devicePath]);
    if (wipefs.exitCode !== 0) {
      probeErrors.push(`wipefs failed: ${wipefs.stderr.trim() || `exit ${wipefs.exitCode}`}`);
    } else if (wipefs.stdout.trim() !== '') {
      const parsed = JSON.parse(wipefs.stdout) as { signatures?: Array<Record<string, unknown>> };
      for (const entry of parsed.signatures ?? []) {
        signatures.push({
          type: String(entry.type),
          offsetBytes: Number.parseInt(String(entry.offset), 16),
          label: typeof entry.label === 'string' ? entry.label : undefined,
          uuid: typeof entry.uuid === 'string' ? entry.uuid : undefined,
        });
      }
    }
  } catch (error) {
    probeErrors.push(`cannot run wipefs (util-linux): ${(error as Error).message}`);
  }
  try {
    // -p: probe the device itself (low-level, no cache file written); exit 2 means nothing was found.
    const blkid = await runCommand('blkid', ['-p', '-o', 'export', devicePath]);
    if (blkid.exitCode === 0) {
      const fields = new Map(
        blkid.stdout.split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
      );
      for (const type of [fields.get('TYPE'), fields.get('PTTYPE')]) {
        if (type && !signatures.some((signature) => signature.type === type)) {
          signatures.push({ type, offsetBytes: Number.NaN, label: fields.get('LABEL'), uuid: fields.get('UUID') });
        }
      }
    } else if (blkid.exitCode !== 2) {
      probeErrors.push(`blkid -p failed: ${blkid.stderr.trim() || `exit ${blkid.exitCode}`}`);
    }
  } catch (error) {
    probeErrors.push(`cannot run blkid (util-linux): ${(error as Error).message}`);
  }
  return signatures;
}
