// Admission of block devices through the real CLI, on real loop devices: what --device, --force and --yes do and
// do not override. Every loop device, mount and partition mapping is removed by exact name when the test ends.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BlockFile, ioCounters } from '../../src/io/block-io.js';
import { readDeviceLabel } from '../../src/disk/device/device-label-store.js';
import { runCli, runCliOk, type CliResult } from '../support/cli.js';
import { canUseLoopDevices, createLoopDevice, sh, type LoopDevice } from '../support/loop-device.js';
import { makeTempDir } from '../support/temp-dir.js';

const DEVICE_BYTES = 320 * 1024 * 1024; // mkfs.xfs needs 300 MiB, mkfs.btrfs 114 MiB
const NATIVE_MODULE = new URL('../../src/io/native.js', import.meta.url).href;

function assertError(result: CliResult, code: string, pattern?: RegExp): void {
  assert.equal(result.code, 2, `expected exit 2 with ${code}, got ${result.code}: ${result.stderr}`);
  const errorLine = result.stderr.split('\n').find((line) => line.startsWith('shardpool: error ')) ?? '';
  assert.match(errorLine, new RegExp(`^shardpool: error ${code}: `), result.stderr);
  if (pattern) assert.match(errorLine, pattern);
}

async function makePool(t: TestContext): Promise<{ root: string; pool: string }> {
  const root = await makeTempDir(t, 'admission');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'replica:1']);
  return { root, pool };
}

async function labelState(devicePath: string): Promise<string> {
  const file = await BlockFile.open(devicePath, { directIo: 'never', exclusive: false, readOnly: true });
  try {
    return (await readDeviceLabel(file)).state;
  } finally {
    await file.close();
  }
}

async function signaturesOn(devicePath: string): Promise<string[]> {
  const parsed = JSON.parse((await sh('wipefs', ['--no-act', '--json', devicePath])) || '{"signatures":[]}') as {
    signatures: Array<{ type: string }>;
  };
  return parsed.signatures.map((signature) => signature.type);
}

test('add-disk tells directories, image files and block devices apart and demands --device for the latter', async (t) => {
  const { root, pool } = await makePool(t);
  const directory = path.join(root, 'dir');
  await fs.mkdir(directory);
  const image = path.join(root, 'disk.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 128 * 1024 * 1024);

  assertError(await runCli(['add-disk', '--pool', pool, '--disk', image]), 'DEVICE_FLAG_REQUIRED', /DESTROYS ALL DATA/);
  assertError(await runCli(['add-disk', '--pool', pool, '--disk', directory, '--device']), 'DEVICE_FLAG_MISUSED');
  assertError(await runCli(['add-disk', '--pool', pool, '--disk', image, '--device']), 'CONFIRMATION_REQUIRED');
  assert.equal(await labelState(image), 'unlabelled', 'a refused confirmation writes nothing');
  await runCliOk(['add-disk', '--pool', pool, '--disk', directory]);
  await runCliOk(['add-disk', '--pool', pool, '--disk', image, '--device', '--yes']);
  assert.equal(await labelState(image), 'labelled');
  const disks = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as Array<{ kind: string }>;
  assert.deepEqual(disks.map((disk) => disk.kind), ['directory', 'block-device']);
  // With the directory failed, a put lands on the device; removing the device (after rm) erases its label, so it
  // can join another pool without --force.
  await runCliOk(['put', '--pool', pool, 'k', '-'], { input: 'hello' });
  await runCliOk(['fail-disk', '--pool', pool, '--disk', '1']);
  await runCliOk(['put', '--pool', pool, 'k2', '-'], { input: 'on the device' });
  assert.equal((await runCliOk(['get', '--pool', pool, 'k2'])).stdout.toString(), 'on the device');
  await runCliOk(['rm', '--pool', pool, 'k2']);
  await runCliOk(['remove-disk', '--pool', pool, '--disk', '2']);
  assert.equal(await labelState(image), 'unlabelled');

  if (!canUseLoopDevices(t)) return;
  const loop = await createLoopDevice(t, { sizeBytes: 128 * 1024 * 1024, sectorBytes: 4096 });
  assertError(await runCli(['add-disk', '--pool', pool, '--disk', loop.path]), 'DEVICE_FLAG_REQUIRED', /is a block device/);
  await runCliOk(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes']);
  const withDevice = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as Array<{ kind: string; path: string; capacityBytes: number }>;
  const device = withDevice.find((disk) => disk.path === loop.path);
  assert.equal(device?.kind, 'block-device');
  // Capacity is the data region: the device less its labels, journal and checkpoint slots.
  assert.ok((device?.capacityBytes ?? 0) > 120 * 1024 * 1024 && (device?.capacityBytes ?? 0) < 128 * 1024 * 1024);
});

interface SignatureMaker {
  readonly name: string;
  /** The word the refusal must name. */
  readonly expect: RegExp;
  readonly make: (loop: LoopDevice, root: string) => Promise<void>;
}

const SIGNATURES: SignatureMaker[] = [
  { name: 'ext4', expect: /ext4 filesystem at offset 1080/, make: (loop) => sh('mkfs.ext4', ['-q', '-F', loop.path]).then(() => undefined) },
  { name: 'xfs', expect: /xfs filesystem at offset 0/, make: (loop) => sh('mkfs.xfs', ['-q', '-f', loop.path]).then(() => undefined) },
  { name: 'btrfs', expect: /btrfs filesystem at offset 65600/, make: (loop) => sh('mkfs.btrfs', ['-q', '-f', loop.path]).then(() => undefined) },
  { name: 'swap', expect: /swap area/, make: (loop) => sh('mkswap', [loop.path]).then(() => undefined) },
  { name: 'GPT', expect: /GPT partition table at offset/, make: (loop) => sh('sgdisk', ['-o', loop.path]).then(() => undefined) },
  {
    name: 'MBR',
    expect: /MBR\/DOS partition table at offset 510/,
    make: async (loop, root) => {
      const script = path.join(root, 'mbr.sfdisk');
      await fs.writeFile(script, 'label: dos\n');
      await sh('sh', ['-c', `sfdisk -q --no-reread "${loop.path}" < "${script}"`]);
    },
  },
  { name: 'LVM2', expect: /LVM2 physical volume/, make: (loop) => sh('pvcreate', ['-ff', '-y', loop.path]).then(() => undefined) },
  {
    name: 'LUKS',
    expect: /LUKS encrypted volume at offset 0/,
    make: async (loop, root) => {
      const keyFile = path.join(root, 'luks.key');
      await fs.writeFile(keyFile, 'not a secret');
      await sh('cryptsetup', ['luksFormat', '--batch-mode', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', keyFile, loop.path]);
    },
  },
];

test('every foreign signature is refused without --force, named with its offset, and accepted with it', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const { root, pool } = await makePool(t);
  const other = path.join(root, 'other-pool');
  await runCliOk(['init', '--pool', other]);
  const loop = await createLoopDevice(t, { sizeBytes: DEVICE_BYTES, sectorBytes: 512 });
  const makers: SignatureMaker[] = [
    ...SIGNATURES,
    {
      name: 'another shardpool pool',
      expect: /a shardpool label of pool [0-9a-f-]{36}/,
      make: async () => {
        await runCliOk(['add-disk', '--pool', other, '--disk', loop.path, '--device', '--yes']);
      },
    },
  ];
  for (const maker of makers) {
    await sh('wipefs', ['--all', '--quiet', loop.path]);
    await maker.make(loop, root);
    const before = await signaturesOn(loop.path);
    const refused = await runCli(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes']);
    assertError(refused, 'DEVICE_HAS_SIGNATURE', maker.expect);
    assert.match(refused.stderr, /--force/);
    assert.deepEqual(await signaturesOn(loop.path), before, `${maker.name}: a refused device is left untouched`);
    // The shardpool label of the other pool is held by nothing now (that pool is closed), so --force may take it.
    await runCliOk(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes', '--force']);
    assert.deepEqual(await signaturesOn(loop.path), [], `${maker.name}: old signatures are erased on format`);
    assert.equal(await labelState(loop.path), 'labelled');
    const disks = JSON.parse((await runCliOk(['list-disks', '--pool', pool, '--json'])).stdout.toString()) as Array<{ id: number }>;
    await runCliOk(['remove-disk', '--pool', pool, '--disk', String(disks.at(-1)?.id)]);
  }
});

test('a device in use is refused even with --force: active swap, mounted, held O_EXCL by another process, or held by an open pool', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const { root, pool } = await makePool(t);
  const loop = await createLoopDevice(t, { sizeBytes: 128 * 1024 * 1024, sectorBytes: 4096 });
  const force = ['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes', '--force'];

  await sh('mkswap', [loop.path]);
  await sh('swapon', [loop.path]);
  try {
    assertError(await runCli(force), 'DEVICE_IN_USE', /an active swap area/);
  } finally {
    await sh('swapoff', [loop.path]);
  }

  await sh('mkfs.ext4', ['-q', '-F', loop.path]);
  const mountPoint = path.join(root, 'mnt');
  await fs.mkdir(mountPoint);
  await sh('mount', [loop.path, mountPoint]);
  try {
    assertError(await runCli(force), 'DEVICE_IN_USE', new RegExp(`mounted at ${mountPoint}`));
  } finally {
    await sh('umount', [mountPoint]);
  }

  // Another process holding the device with O_EXCL (as a filesystem driver or another tool would).
  const holder = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { nativeIo } from ${JSON.stringify(NATIVE_MODULE)};
       const io = nativeIo();
       await io.open(${JSON.stringify(loop.path)}, io.flags.O_RDONLY | io.flags.O_EXCL);
       console.log('holding');
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const holderExited = new Promise((resolve) => holder.once('close', resolve));
  try {
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    assertError(await runCli(force), 'DEVICE_BUSY', /opened exclusively by another process/);
  } finally {
    holder.kill('SIGKILL');
    await holderExited;
  }
  assert.deepEqual(await signaturesOn(loop.path), ['ext4'], 'nothing was written while it was in use');

  // A pool that has the device open for writing holds it: another pool cannot take it, even with --force. The pool
  // also gets a directory disk so that the put below can proceed (and keep the pool open) while it waits for input.
  await runCliOk(force);
  await fs.mkdir(path.join(root, 'dir'));
  await runCliOk(['add-disk', '--pool', pool, '--disk', path.join(root, 'dir')]);
  const second = path.join(root, 'second');
  await runCliOk(['init', '--pool', second]);
  const writer = spawn(process.execPath, [(await import('../support/cli.js')).SHARDPOOL_BIN, 'put', '--pool', pool, 'slow', '-'], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  const writerExited = new Promise((resolve) => writer.once('close', resolve));
  try {
    writer.stdin.write('partial input keeps the pool open');
    // Wait until the writer holds the pool (a no-wait writer then gets POOL_BUSY), so it has the device open.
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const probe = await runCli(['--wait', '0', 'fail-disk', '--pool', pool, '--disk', '99']);
      if (probe.stderr.includes('POOL_BUSY')) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assertError(
      await runCli(['add-disk', '--pool', second, '--disk', loop.path, '--device', '--yes', '--force']),
      'DEVICE_BUSY',
      /opened exclusively by another process/,
    );
  } finally {
    writer.kill('SIGKILL');
    await writerExited;
  }
});

test('a partition is refused when another partition of its disk is in use', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const { root, pool } = await makePool(t);
  const loop = await createLoopDevice(t, { sizeBytes: 256 * 1024 * 1024, sectorBytes: 512 });
  const script = path.join(root, 'parts.sfdisk');
  await fs.writeFile(script, 'label: gpt\n,100MiB\n,100MiB\n');
  await sh('sh', ['-c', `sfdisk -q --no-reread "${loop.path}" < "${script}"`]);
  // No partition parsers in this kernel's loop driver by default: partx tells the kernel about them.
  await sh('partx', ['-a', loop.path]);
  const first = `${loop.path}p1`;
  const second = `${loop.path}p2`;
  const mountPoint = path.join(root, 'mnt');
  try {
    await sh('mkfs.ext4', ['-q', '-F', first]);
    await fs.mkdir(mountPoint);
    await sh('mount', [first, mountPoint]);
    try {
      assertError(
        await runCli(['add-disk', '--pool', pool, '--disk', second, '--device', '--yes', '--force']),
        'DEVICE_IN_USE',
        /whose partition loop\d+p1 is in use/,
      );
      // The whole disk is refused too: one of its partitions is mounted.
      assertError(
        await runCli(['add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes', '--force']),
        'DEVICE_IN_USE',
        /mounted at/,
      );
    } finally {
      await sh('umount', [mountPoint]);
    }
    // Nothing in use any more: the partition is an ordinary device with a partition-table-free start.
    await runCliOk(['add-disk', '--pool', pool, '--disk', second, '--device', '--yes']);
  } finally {
    await sh('partx', ['-d', loop.path]).catch(() => undefined);
  }
});

test('O_DIRECT: always fails clearly where it is refused; auto falls back to O_SYNC and counts it', async (t) => {
  const image = path.join(await makeTempDir(t, 'direct'), 'disk.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 128 * 1024 * 1024);
  const { pool } = await makePool(t);
  const refuse = { SHARDPOOL_TEST_REFUSE_O_DIRECT: '1' };
  assertError(
    await runCli(['--direct-io', 'always', 'add-disk', '--pool', pool, '--disk', image, '--device', '--yes'], { env: refuse }),
    'DIRECT_IO_UNAVAILABLE',
  );
  assertError(
    await runCli(['add-disk', '--pool', pool, '--disk', image, '--device', '--yes'], { env: { ...refuse, SHARDPOOL_DIRECT_IO: 'always' } }),
    'DIRECT_IO_UNAVAILABLE',
  );
  await runCliOk(['add-disk', '--pool', pool, '--disk', image, '--device', '--yes'], { env: refuse });
  assertError(await runCli(['--direct-io', 'sometimes', 'status', '--pool', pool]), 'USAGE_INVALID');

  const before = ioCounters.directIoFallbacks;
  process.env.SHARDPOOL_TEST_REFUSE_O_DIRECT = '1';
  try {
    const file = await BlockFile.open(image, { directIo: 'auto', exclusive: false, readOnly: true });
    assert.equal(file.direct, false);
    await file.close();
  } finally {
    delete process.env.SHARDPOOL_TEST_REFUSE_O_DIRECT;
  }
  assert.equal(ioCounters.directIoFallbacks, before + 1);
});

test('a non-root user gets a clear permission error for a block device', async (t) => {
  if (!canUseLoopDevices(t)) return;
  const { root, pool } = await makePool(t);
  await fs.chmod(root, 0o777);
  await sh('chmod', ['-R', 'a+rwX', pool]);
  const loop = await createLoopDevice(t, { sizeBytes: 128 * 1024 * 1024, sectorBytes: 512 });
  const { SHARDPOOL_BIN } = await import('../support/cli.js');
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, SHARDPOOL_BIN, 'add-disk', '--pool', pool, '--disk', loop.path, '--device', '--yes'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /^shardpool: error DEVICE_PERMISSION_DENIED: .*need root/m);
});

/** Runs add-disk on a pseudo-terminal (util-linux `script`) and types `answer` when the confirmation prompt shows. */
async function addDiskOnTerminal(args: string[], answer: string): Promise<{ code: number | null; output: string }> {
  const { SHARDPOOL_BIN } = await import('../support/cli.js');
  const command = [process.execPath, SHARDPOOL_BIN, ...args].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['--quiet', '--return', '--command', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  let answered = false;
  const onData = (data: Buffer) => {
    output += data.toString();
    if (!answered && /to format it: /.test(output)) {
      answered = true;
      child.stdin.write(`${answer}\n`);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, output };
}

test('on a terminal, the operator formats a device only by typing its path back', async (t) => {
  const { root, pool } = await makePool(t);
  const image = path.join(root, 'disk.img');
  await fs.writeFile(image, '');
  await fs.truncate(image, 128 * 1024 * 1024);
  const args = ['add-disk', '--pool', pool, '--disk', image, '--device'];

  const declined = await addDiskOnTerminal(args, 'yes');
  assert.equal(declined.code, 2, declined.output);
  assert.match(declined.output, /size\s+128\.0 MiB/);
  assert.match(declined.output, /ALL DATA ON .*disk\.img WILL BE DESTROYED/);
  assert.match(declined.output, /CONFIRMATION_REQUIRED: .*nothing was written/);
  assert.equal(await labelState(image), 'unlabelled');

  const confirmed = await addDiskOnTerminal(args, image);
  assert.equal(confirmed.code, 0, confirmed.output);
  assert.match(confirmed.output, /added disk 1 \(block-device\)/);
  assert.equal(await labelState(image), 'labelled');
});
