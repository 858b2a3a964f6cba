// May this device be formatted? A pure function of the probe. Two kinds of reason:
// - in use: mounted, held, swap, opened exclusively by someone else, a busy sibling partition, or a probe that
//   failed. Never overridable: --force cannot make it safe to write under a running filesystem.
// - foreign data: a filesystem, partition table, RAID/LVM/LUKS member or another pool's label. Overridable by
//   --force, because the operator may really mean to reuse the device.
import type { DeviceProbe } from './probe.js';

export interface AdmissionVerdict {
  readonly inUse: string[];
  readonly foreignData: string[];
}

export function rejectReasons(probe: DeviceProbe, ownPoolUuid: string): AdmissionVerdict {
  const inUse: string[] = [];
  for (const mountPoint of probe.mountedAt) inUse.push(`mounted at ${mountPoint}`);
  for (const holder of probe.holders) inUse.push(`held by ${holder}`);
  if (probe.activeSwap) inUse.push('an active swap area');
  for (const sibling of probe.busySiblingPartitions) {
    inUse.push(`a partition of ${probe.sysfs?.parentDisk ?? 'a disk'} whose partition ${sibling} is in use`);
  }
  // A mount or holder also makes the exclusive open fail; name the exclusive holder only when nothing else explains it.
  if (!probe.exclusivelyAvailable && inUse.length === 0) {
    inUse.push('opened exclusively by another process (O_EXCL or a shardpool lock)');
  }
  for (const error of probe.probeErrors) inUse.push(`cannot be checked: ${error}`);

  const foreignData: string[] = [];
  for (const signature of probe.signatures) foreignData.push(describeSignature(signature));
  if (probe.partitions.length > 0) foreignData.push(`partitions ${probe.partitions.join(', ')}`);
  const label = probe.shardpoolLabel;
  if (label.state === 'labelled' && label.label.poolUuid !== ownPoolUuid) {
    foreignData.push(`a shardpool label of pool ${label.label.poolUuid} (device ${label.label.deviceUuid})`);
  }
  if (label.state === 'labelled' && label.label.poolUuid === ownPoolUuid) {
    foreignData.push(`a shardpool label of this pool (device ${label.label.deviceUuid}, not in its catalog)`);
  }
  if (label.state === 'unreadable') foreignData.push(`a damaged shardpool label (${label.why})`);
  return { inUse, foreignData };
}

const USAGE_NAMES: Record<string, string> = {
  gpt: 'GPT partition table',
  PMBR: 'protective MBR',
  dos: 'MBR/DOS partition table',
  LVM2_member: 'LVM2 physical volume',
  linux_raid_member: 'md RAID member',
  crypto_LUKS: 'LUKS encrypted volume',
  swap: 'swap area',
  bcache: 'bcache device',
  zfs_member: 'ZFS pool member',
};

function describeSignature(signature: DeviceProbe['signatures'][number]): string {
  const what = USAGE_NAMES[signature.type] ?? `${signature.type} filesystem`;
  const where = Number.isNaN(signature.offsetBytes) ? '' : ` at offset ${signature.offsetBytes} (0x${signature.offsetBytes.toString(16)})`;
  const label = signature.label ? ` labelled "${signature.label}"` : '';
  return `${what}${label}${where}`;
}
