import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { close } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { isShardpoolError } from '../../src/errors.js';
import { allocateAlignedBuffer } from '../../src/io/aligned-buffer.js';
import { BlockFile, ioCounters } from '../../src/io/block-io.js';
import { openDevice } from '../../src/io/native.js';
import { canUseLoopDevices, createLoopDevice } from '../support/loop-device.js';
import { makeTempDir } from '../support/temp-dir.js';

const MiB = 1024 * 1024;
const closeFd = promisify(close);

/** Deterministic non-zero bytes, so a read that returns zeros or another range is caught. */
function patterned(buffer: Buffer, seed: number): Buffer {
  for (let index = 0; index < buffer.length; index += 1) buffer[index] = ((index * 31 + seed * 7) % 251) + 1;
  return buffer;
}

async function makeImage(t: Parameters<typeof makeTempDir>[0], sizeBytes: number): Promise<string> {
  const imagePath = path.join(await makeTempDir(t, 'image'), 'image');
  await fs.writeFile(imagePath, Buffer.alloc(sizeBytes));
  return imagePath;
}

test('a regular file reports its size and default sector sizes, flagged as not a block device', async (t) => {
  const imagePath = await makeImage(t, MiB + 4096);
  const file = await BlockFile.open(imagePath, { directIo: 'auto', exclusive: false, readOnly: true });
  try {
    assert.equal(file.info.isBlockDevice, false);
    assert.equal(file.info.sizeBytes, MiB + 4096);
    assert.equal(file.info.logicalSectorBytes, 512);
    assert.ok(file.info.physicalSectorBytes >= 512 && (file.info.physicalSectorBytes & (file.info.physicalSectorBytes - 1)) === 0);
    assert.ok(file.info.blockSizeBytes >= 512);
  } finally {
    await file.close();
  }
});

test('an image file: aligned round trip, misaligned requests refused before any I/O and counted', async (t) => {
  const imagePath = await makeImage(t, MiB);
  const file = await BlockFile.open(imagePath, { directIo: 'auto', exclusive: true, readOnly: false });
  try {
    const sector = file.sectorBytes;
    const data = patterned(allocateAlignedBuffer(8 * sector), 3);
    await file.write(data, 0, data.length, 16 * sector);
    await file.flush();
    const back = allocateAlignedBuffer(8 * sector);
    await file.read(back, 0, back.length, 16 * sector);
    assert.ok(back.equals(data));

    const before = ioCounters.alignmentFailures;
    const misaligned = [
      () => file.write(data, 0, data.length, 100), // offset
      () => file.write(data, 0, sector - 1, 0), // length
      () => file.write(data, 8, sector, 0), // buffer offset
      () => file.write(Buffer.alloc(sector * 2).subarray(1, sector + 1), 0, sector, 0), // buffer memory
      () => file.read(back, 0, sector, 7),
      () => file.discard(100, sector),
    ];
    for (const request of misaligned) {
      await assert.rejects(request(), (error: unknown) => isShardpoolError(error, 'IO_MISALIGNED'));
    }
    assert.equal(ioCounters.alignmentFailures - before, misaligned.length, 'each refusal is counted');
    const head = await fs.readFile(imagePath);
    assert.ok(head.subarray(0, 16 * sector).every((byte) => byte === 0), 'no refused write reached the file');
    await assert.rejects(file.read(back, 0, sector, MiB), (error: unknown) => isShardpoolError(error, 'DISK_IO_FAILED'));
  } finally {
    await file.close();
  }
});

test('discard on an image file punches a hole that reads back zeros; zeroOut zeroes a range', async (t) => {
  const imagePath = await makeImage(t, MiB);
  const file = await BlockFile.open(imagePath, { directIo: 'auto', exclusive: false, readOnly: false });
  try {
    const data = patterned(allocateAlignedBuffer(64 * 1024), 5);
    await file.write(data, 0, data.length, 0);
    await file.write(data, 0, data.length, 128 * 1024);
    await file.flush();
    const allocatedBefore = (await fs.stat(imagePath)).blocks;

    await file.discard(16 * 1024, 32 * 1024);
    const back = allocateAlignedBuffer(64 * 1024);
    await file.read(back, 0, back.length, 0);
    assert.ok(back.subarray(16 * 1024, 48 * 1024).every((byte) => byte === 0), 'the discarded range reads back zeros');
    assert.ok(back.subarray(0, 16 * 1024).equals(data.subarray(0, 16 * 1024)), 'before it is untouched');
    assert.ok(back.subarray(48 * 1024).equals(data.subarray(48 * 1024)), 'after it is untouched');
    assert.ok((await fs.stat(imagePath)).blocks < allocatedBefore, 'the hole freed blocks');

    await file.zeroOut(128 * 1024 + 4096, 8192);
    await file.read(back, 0, back.length, 128 * 1024);
    assert.ok(back.subarray(4096, 12288).every((byte) => byte === 0), 'the zeroed range reads back zeros');
    assert.ok(back.subarray(12288).equals(data.subarray(12288)), 'the rest is untouched');
    assert.equal((await fs.stat(imagePath)).size, MiB, 'neither changes the file size');
  } finally {
    await file.close();
  }
});

test("O_DIRECT refused by the filesystem: 'auto' falls back to O_SYNC and counts it, 'always' fails", async () => {
  // procfs cannot do direct I/O: the kernel answers open(O_DIRECT) with EINVAL, as some FUSE filesystems do.
  const refusing = '/proc/self/status';
  const before = ioCounters.directIoFallbacks;
  const file = await BlockFile.open(refusing, { directIo: 'auto', exclusive: false, readOnly: true });
  try {
    assert.equal(file.direct, false);
    assert.equal(ioCounters.directIoFallbacks - before, 1);
  } finally {
    await file.close();
  }
  await assert.rejects(
    BlockFile.open(refusing, { directIo: 'always', exclusive: false, readOnly: true }),
    (error: unknown) => isShardpoolError(error, 'DIRECT_IO_UNAVAILABLE') && error.message.includes(refusing),
  );
  assert.equal(ioCounters.directIoFallbacks - before, 1, "'always' does not fall back");
});

for (const sectorBytes of [512, 4096] as const) {
  test(`a ${sectorBytes}-byte-sector loop device: ioctl sizes, O_DIRECT round trip, O_EXCL, discard`, async (t) => {
    if (!canUseLoopDevices(t)) return;
    const loop = await createLoopDevice(t, { sizeBytes: 16 * MiB, sectorBytes });
    try {
      const file = await BlockFile.open(loop.path, { directIo: 'always', exclusive: true, readOnly: false });
      try {
        assert.equal(file.info.isBlockDevice, true);
        assert.equal(file.info.sizeBytes, 16 * MiB);
        assert.equal(file.info.logicalSectorBytes, sectorBytes, 'BLKSSZGET');
        assert.ok(file.info.physicalSectorBytes >= sectorBytes, 'BLKPBSZGET');
        assert.ok(file.info.blockSizeBytes >= sectorBytes, 'BLKBSZGET');
        assert.ok(file.direct, 'opened with O_DIRECT');

        const data = patterned(allocateAlignedBuffer(64 * 1024), sectorBytes);
        await file.write(data, 0, data.length, MiB);
        await file.flush();
        const back = allocateAlignedBuffer(64 * 1024);
        await file.read(back, 0, back.length, MiB);
        assert.ok(back.equals(data));
        // One sector at a sector-aligned (not page-aligned) position works too.
        await file.write(data, 0, sectorBytes, MiB + 3 * sectorBytes);

        // An unaligned Node buffer is refused before it can reach the device. Whether the kernel would take it
        // depends on the kernel version, the device's dma_alignment and whether the range crosses a page (on this
        // machine's 6.18 a 512-byte write from an odd address went through while a 4096-byte one got EINVAL), so
        // shardpool never lets the kernel decide.
        const unaligned = Buffer.alloc(sectorBytes + 1).subarray(1);
        await assert.rejects(file.write(unaligned, 0, sectorBytes, 0), (error: unknown) => isShardpoolError(error, 'IO_MISALIGNED'));
        if (sectorBytes === 4096) {
          // On a 4096-byte-sector device a 512-byte-aligned request is misaligned too.
          await assert.rejects(file.write(data, 0, 512, MiB), (error: unknown) => isShardpoolError(error, 'IO_MISALIGNED'));
        }

        // A gathered write (pwritev) lays its parts end to end: a head page, a view into a larger aligned buffer,
        // a tail page; one part that is not whole sectors or not aligned in memory is refused before any I/O.
        const head = patterned(allocateAlignedBuffer(4096), 11);
        const body = patterned(allocateAlignedBuffer(5 * 4096), 12);
        const tail = patterned(allocateAlignedBuffer(4096), 13);
        await file.writeParts([head, body.subarray(4096, 4 * 4096), tail], 2 * MiB);
        const gathered = allocateAlignedBuffer(5 * 4096);
        await file.read(gathered, 0, gathered.length, 2 * MiB);
        assert.ok(gathered.equals(Buffer.concat([head, body.subarray(4096, 4 * 4096), tail])), 'pwritev wrote the parts in order');
        await assert.rejects(file.writeParts([head, Buffer.alloc(sectorBytes + 1).subarray(1)], 2 * MiB), (error: unknown) => isShardpoolError(error, 'IO_MISALIGNED'));
        await assert.rejects(file.writeParts([head, body.subarray(0, sectorBytes / 2)], 2 * MiB), (error: unknown) => isShardpoolError(error, 'IO_MISALIGNED'));

        // A plain open still succeeds (so it proves nothing); only a second O_EXCL open is refused.
        await closeFd(await openDevice(loop.path, { direct: false, exclusive: false, readOnly: true, sync: false }));
        await assert.rejects(
          BlockFile.open(loop.path, { directIo: 'auto', exclusive: true, readOnly: false }),
          (error: unknown) => isShardpoolError(error, 'DEVICE_BUSY') && error.message.includes(loop.path),
        );

        await file.discard(MiB, 64 * 1024);
        await file.read(back, 0, back.length, MiB);
        assert.ok(back.every((byte) => byte === 0), 'a discarded loop range reads back zeros');
        await file.write(data, 0, 4096, 0);
        await file.zeroOut(0, 4096);
        await file.read(back, 0, 4096, 0);
        assert.ok(back.subarray(0, 4096).every((byte) => byte === 0), 'BLKZEROOUT zeroed the range');
        await file.flush();
      } finally {
        await file.close();
      }
      // Written through O_DIRECT and a direct-io loop device, so the image file holds the bytes.
      const image = await fs.readFile(loop.imagePath);
      assert.ok(image.subarray(0, 4096).every((byte) => byte === 0));
    } finally {
      await loop.detach();
    }
    const { stdout } = await promisify(execFile)('losetup', ['--list', '--noheadings', '--output', 'NAME']);
    assert.ok(!stdout.split('\n').some((line) => line.trim() === loop.path), `${loop.path} is detached`);
  });
}
