import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import { allocateAlignedBuffer, isAligned } from '../../src/io/aligned-buffer.js';
import { BlockFile, ioCounters } from '../../src/io/block-io.js';
import { lockFile, unlockFile } from '../../src/io/file-lock.js';
import { nativeIo } from '../../src/io/native.js';
import { canUseLoopDevices, createLoopDevice } from '../support/loop-device.js';
import { makeTempDir } from '../support/temp-dir.js';
import { seededBytes } from '../support/test-pool.js';

const FILE_LOCK_MODULE = new URL('../../src/io/file-lock.js', import.meta.url).href;

test('an exclusive flock excludes other holders and is released when its holder is killed', async (t) => {
  const directory = await makeTempDir(t, 'flock');
  const lockPath = path.join(directory, 'lock');
  // A child process takes the lock and reports; we then fail to take it, kill the child, and succeed.
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import * as fs from 'node:fs/promises';
       import { lockFile } from ${JSON.stringify(FILE_LOCK_MODULE)};
       const handle = await fs.open(${JSON.stringify(lockPath)}, 'a');
       console.log(await lockFile(handle.fd, 'exclusive') ? 'locked' : 'refused');
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => child.kill('SIGKILL'));
  const firstLine = await new Promise<string>((resolve) => child.stdout.once('data', (data: Buffer) => resolve(data.toString().trim())));
  assert.equal(firstLine, 'locked');
  const handle = await fs.open(lockPath, 'a');
  try {
    assert.equal(await lockFile(handle.fd, 'exclusive'), false, 'held by the child');
    assert.equal(await lockFile(handle.fd, 'shared'), false, 'a shared lock conflicts with an exclusive one');
    const exited = new Promise((resolve) => child.once('close', resolve));
    child.kill('SIGKILL');
    await exited;
    assert.equal(await lockFile(handle.fd, 'exclusive'), true, 'the kernel released the killed holder\'s lock');
    await unlockFile(handle.fd);
  } finally {
    await handle.close();
  }
});

test('shared flocks coexist', async (t) => {
  const lockPath = path.join(await makeTempDir(t, 'flock-shared'), 'lock');
  const first = await fs.open(lockPath, 'a');
  const second = await fs.open(lockPath, 'a');
  try {
    assert.equal(await lockFile(first.fd, 'shared'), true);
    assert.equal(await lockFile(second.fd, 'shared'), true);
    assert.equal(await lockFile(second.fd, 'exclusive'), false, 'cannot upgrade while another shares it');
  } finally {
    await first.close();
    await second.close();
  }
});

test('aligned buffers start on the requested boundary, and Node buffers often do not', () => {
  for (const alignment of [512, 4096, 65536]) {
    for (let round = 0; round < 20; round += 1) {
      const buffer = allocateAlignedBuffer(alignment * (round + 1), alignment);
      assert.ok(isAligned(buffer, alignment));
      assert.equal(nativeIo().bufferAddress(buffer) % BigInt(alignment), 0n);
      assert.ok(buffer.every((byte) => byte === 0), 'zero-filled');
    }
  }
  const plain = Array.from({ length: 64 }, () => Buffer.alloc(100).subarray(16));
  assert.ok(plain.some((buffer) => !isAligned(buffer, 512)), 'ordinary Buffers are not sector-aligned');
});

test('an image file: round trip, misaligned requests refused before I/O, discard reads back zeros', async (t) => {
  const imagePath = path.join(await makeTempDir(t, 'image'), 'image');
  await fs.writeFile(imagePath, Buffer.alloc(1024 * 1024));
  const file = await BlockFile.open(imagePath, { directIo: 'auto', exclusive: true, readOnly: false });
  try {
    assert.equal(file.info.isBlockDevice, false);
    assert.equal(file.info.sizeBytes, 1024 * 1024);
    const sector = file.sectorBytes;
    const data = allocateAlignedBuffer(8 * sector, 4096);
    seededBytes(8 * sector, 3).copy(data);
    await file.write(data, 0, data.length, 16 * sector);
    await file.flush();
    const back = allocateAlignedBuffer(8 * sector, 4096);
    await file.read(back, 0, back.length, 16 * sector);
    assert.ok(back.equals(data));

    const before = ioCounters.alignmentFailures;
    const misaligned = [
      () => file.write(data, 0, data.length, 100),
      () => file.write(data, 0, sector - 1, 0),
      () => file.write(data, 8, sector, 0),
      () => file.write(Buffer.alloc(sector * 2).subarray(1, sector + 1), 0, sector, 0),
      () => file.read(back, 0, sector, 7),
    ];
    for (const request of misaligned) {
      await assert.rejects(request(), (error: unknown) => isShardpoolError(error, 'IO_MISALIGNED'));
    }
    assert.equal(ioCounters.alignmentFailures - before, misaligned.length, 'each refusal is counted');
    await assert.rejects(file.read(back, 0, sector, 1024 * 1024), (error: unknown) => isShardpoolError(error, 'DISK_IO_FAILED'));

    await file.discard(16 * sector, 4 * sector);
    await file.read(back, 0, back.length, 16 * sector);
    assert.ok(back.subarray(0, 4 * sector).every((byte) => byte === 0), 'discarded range reads back zeros');
    assert.ok(back.subarray(4 * sector).equals(data.subarray(4 * sector)), 'the rest is untouched');
  } finally {
    await file.close();
  }
});

for (const sectorBytes of [512, 4096] as const) {
  test(`a ${sectorBytes}-byte-sector loop device: sizes from ioctls, O_DIRECT round trip, O_EXCL, discard`, async (t) => {
    if (!canUseLoopDevices(t)) return;
    const loop = await createLoopDevice(t, { sizeBytes: 16 * 1024 * 1024, sectorBytes });
    const file = await BlockFile.open(loop.path, { directIo: 'always', exclusive: true, readOnly: false });
    try {
      assert.equal(file.info.isBlockDevice, true);
      assert.equal(file.info.sizeBytes, 16 * 1024 * 1024);
      assert.equal(file.info.logicalSectorBytes, sectorBytes);
      assert.ok(file.direct, 'opened with O_DIRECT');
      const data = allocateAlignedBuffer(64 * 1024, 4096);
      seededBytes(data.length, sectorBytes).copy(data);
      await file.write(data, 0, data.length, 1024 * 1024);
      await file.flush();
      const back = allocateAlignedBuffer(64 * 1024, 4096);
      await file.read(back, 0, back.length, 1024 * 1024);
      assert.ok(back.equals(data));
      // An unaligned Node buffer is refused before it can reach the device.
      await assert.rejects(file.write(Buffer.alloc(sectorBytes + 1).subarray(1), 0, sectorBytes, 0), (error: unknown) =>
        isShardpoolError(error, 'IO_MISALIGNED'),
      );
      // A second exclusive open of a block device is refused by the kernel.
      await assert.rejects(
        BlockFile.open(loop.path, { directIo: 'auto', exclusive: true, readOnly: false }),
        (error: unknown) => isShardpoolError(error, 'DEVICE_BUSY') && error.message.includes(loop.path),
      );
      await file.discard(1024 * 1024, 64 * 1024);
      await file.zeroOut(0, 4096);
    } finally {
      await file.close();
    }
    // Written through O_DIRECT, so the image file holds the bytes.
    const image = await fs.readFile(loop.imagePath);
    assert.ok(image.subarray(0, 4096).every((byte) => byte === 0));
  });
}
