// A directory disk's flush covers every write that completed before it was called, even one whose rename landed
// while an earlier flush's fsync of the same directory was already running.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { formatDirectoryDisk, openDirectoryDisk } from '../../src/disk/directory/directory-disk.js';
import { DirectorySyncs } from '../../src/disk/directory/directory-syncs.js';
import { newUuid } from '../../src/format/uuid.js';
import { fsyncDirectory } from '../../src/io/durable-files.js';
import { checksum128 } from '../../src/redundancy/checksum.js';
import { makeTempDir } from '../support/temp-dir.js';

/** An fsync whose calls are held until the test lets them return. */
function heldFsync() {
  const calls: Array<{ directory: string; release: () => void; fail: (error: Error) => void }> = [];
  const fsync = (directory: string) =>
    new Promise<void>((resolve, reject) => {
      calls.push({ directory, release: resolve, fail: reject });
    });
  return { fsync, calls };
}

const settled = async (promise: Promise<unknown>): Promise<boolean> => {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let turn = 0; turn < 20; turn += 1) await new Promise((resolve) => setImmediate(resolve));
  return done;
};

test('a flush called while an fsync of the same directory runs waits for an fsync that covers its rename', async (t) => {
  const root = await makeTempDir(t, 'dirflush');
  const identity = { poolUuid: newUuid(), diskUuid: newUuid() };
  await formatDirectoryDisk(root, identity);
  const held = heldFsync();
  const disk = await openDirectoryDisk(root, identity, { fsyncDirectory: held.fsync });
  // Two fragments of one version share a bucket directory (fragments/<first two hex digits>/).
  const versionId = newUuid();
  const write = (fragmentIndex: number) => {
    const data = Buffer.alloc(1000, fragmentIndex);
    return disk.writeFragment(
      {
        versionId,
        key: 'k',
        policy: { kind: 'replica', copies: 2 },
        extentIndex: 0,
        extentLengthBytes: data.length,
        extentChecksum: checksum128(data),
        fragmentIndex,
        dataLengthBytes: data.length,
        dataChecksum: checksum128(data),
      },
      data,
    );
  };
  await write(0);
  const firstFlush = disk.flush();
  await settled(Promise.resolve());
  const firstCalls = held.calls.length;
  assert.ok(firstCalls >= 1, 'the first flush fsyncs the bucket directory');
  await write(1); // renamed into that directory while its fsync is in flight
  const secondFlush = disk.flush();
  for (const call of held.calls.splice(0)) call.release();
  await firstFlush;
  assert.equal(await settled(secondFlush), false, 'the second flush is not covered by the fsync that started before its rename');
  const bucket = path.join(root, 'fragments', versionId.slice(0, 2));
  assert.ok(held.calls.some((call) => call.directory === bucket), 'it fsyncs the bucket again');
  for (const call of held.calls.splice(0)) call.release();
  await secondFlush;
  assert.ok((await fs.readdir(bucket)).length === 2);
});

test('a failed directory fsync fails every flush waiting on it and latches the disk', async () => {
  const held = heldFsync();
  const syncs = new DirectorySyncs(held.fsync);
  syncs.changed('/d');
  const a = syncs.flush();
  const b = syncs.flush();
  await settled(Promise.resolve());
  assert.equal(held.calls.length, 1, 'concurrent flushes of one directory share its fsync');
  held.calls[0]?.fail(new Error('EIO'));
  await assert.rejects(a, /EIO/);
  await assert.rejects(b, /EIO/);
  syncs.changed('/d');
  await assert.rejects(syncs.flush(), /EIO/, 'never retried and trusted');
  assert.ok(syncs.failure instanceof Error);
});

test('flushes with nothing changed since the last fsync cost nothing, and real fsyncs still work', async (t) => {
  const root = await makeTempDir(t, 'dirflush-real');
  const syncs = new DirectorySyncs(fsyncDirectory);
  await syncs.flush();
  syncs.changed(root);
  await Promise.all([syncs.flush(), syncs.flush(), syncs.flush()]);
  await syncs.flush();
  assert.equal(syncs.failure, undefined);
});
