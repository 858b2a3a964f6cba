// Admitting a raw block device (or a device image file) to the pool: probe, refuse what is in use, refuse foreign
// data unless forced, check size, ask the operator to confirm, erase old signatures, write shardpool's label.
// The order matters: nothing is written before every check passed and the operator said yes.
import { formatBytes } from '../units.js';
import { probeDevice, type DeviceProbe } from '../admission/probe.js';
import { rejectReasons } from '../admission/reject-reasons.js';
import { formatDeviceDisk } from '../disk/device/device-disk.js';
import { ShardpoolError } from '../errors.js';
import { DEVICE_SIZE_MIN_BYTES } from '../format/device-label.js';
import type { DirectIoMode } from '../io/block-io.js';
import { runCommand } from '../io/run-command.js';

export interface AddDeviceOptions {
  /** Override foreign signatures (never use). */
  readonly force: boolean;
  readonly directIo: DirectIoMode;
  /** Asked once every check passed; resolves true to format. The CLI asks the operator, or --yes answers. */
  readonly confirm: (summary: DeviceSummary) => Promise<boolean>;
}

/** What the operator is shown before a device is formatted. */
export interface DeviceSummary {
  readonly path: string;
  readonly kind: 'block-device' | 'image-file';
  readonly sizeBytes: number;
  readonly logicalSectorBytes: number;
  readonly physicalSectorBytes: number;
  readonly model: string | undefined;
  readonly serial: string | undefined;
  /** Foreign data that --force is overriding (empty for a blank device). */
  readonly found: string[];
  readonly lines: string[];
}

/** Runs every check and the confirmation, then formats. Returns the probe of the device as it was. */
export async function admitAndFormatDevice(
  devicePath: string,
  identity: { poolUuid: string; diskUuid: string },
  options: AddDeviceOptions,
): Promise<DeviceProbe> {
  const probe = await probeDevice(devicePath);
  const verdict = rejectReasons(probe, identity.poolUuid);
  if (verdict.inUse.length > 0) {
    throw new ShardpoolError(
      isOnlyHeldExclusively(probe) ? 'DEVICE_BUSY' : 'DEVICE_IN_USE',
      `${devicePath} is in use, and shardpool never touches a device in use (--force does not change that): ` +
        verdict.inUse.join('; '),
      { path: devicePath },
    );
  }
  if (verdict.foreignData.length > 0 && !options.force) {
    throw new ShardpoolError(
      'DEVICE_HAS_SIGNATURE',
      `${devicePath} holds data: ${verdict.foreignData.join('; ')}. Formatting it destroys that data; if that is ` +
        'what you mean, pass --force (it overrides found data, never a device in use)',
      { path: devicePath },
    );
  }
  if (probe.sizeBytes < DEVICE_SIZE_MIN_BYTES) {
    throw new ShardpoolError(
      'DEVICE_TOO_SMALL',
      `${devicePath} has ${formatBytes(probe.sizeBytes)}; a pool device needs at least ${formatBytes(DEVICE_SIZE_MIN_BYTES)}`,
      { path: devicePath, sizeBytes: probe.sizeBytes },
    );
  }
  const summary = summarize(probe, verdict.foreignData);
  if (!(await options.confirm(summary))) {
    throw new ShardpoolError('CONFIRMATION_REQUIRED', `formatting ${devicePath} was not confirmed; nothing was written`, {
      path: devicePath,
    });
  }
  if (probe.signatures.length > 0) await eraseSignatures(probe.realPath);
  await formatDeviceDisk(probe.realPath, identity, options.directIo);
  return probe;
}

function isOnlyHeldExclusively(probe: DeviceProbe): boolean {
  const specific = probe.mountedAt.length + probe.holders.length + probe.busySiblingPartitions.length + probe.probeErrors.length;
  return !probe.exclusivelyAvailable && specific === 0 && !probe.activeSwap;
}

function summarize(probe: DeviceProbe, found: string[]): DeviceSummary {
  const model = probe.sysfs?.model;
  const serial = probe.sysfs?.serial;
  const identity = [
    probe.kind === 'image-file' ? 'device image file' : 'block device',
    model ? `model ${model}` : undefined,
    serial ? `serial ${serial}` : undefined,
    probe.sysfs?.loopBackingFile ? `loop device backed by ${probe.sysfs.loopBackingFile}` : undefined,
  ].filter((part): part is string => part !== undefined);
  const lines = [
    `device   ${probe.path}${probe.realPath !== probe.path ? ` (${probe.realPath})` : ''}: ${identity.join(', ')}`,
    `size     ${formatBytes(probe.sizeBytes)} (${probe.sizeBytes} bytes), sectors ${probe.logicalSectorBytes} B logical / ${probe.physicalSectorBytes} B physical`,
    `found    ${found.length > 0 ? found.join('; ') : 'no filesystem, partition table or other signature'}`,
  ];
  return {
    path: probe.path,
    kind: probe.kind,
    sizeBytes: probe.sizeBytes,
    logicalSectorBytes: probe.logicalSectorBytes,
    physicalSectorBytes: probe.physicalSectorBytes,
    model,
    serial,
    found,
    lines,
  };
}

/** wipefs --all erases every signature libblkid knows (including backup GPT headers at the end of the device). */
async function eraseSignatures(devicePath: string): Promise<void> {
  const result = await runCommand('wipefs', ['--all', devicePath]);
  if (result.exitCode !== 0) {
    throw new ShardpoolError('DEVICE_BUSY', `wipefs could not erase old signatures on ${devicePath}: ${result.stderr.trim()}`, {
      path: devicePath,
    });
  }
}
