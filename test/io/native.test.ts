import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, readSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isShardpoolError } from '../../src/errors.js';
import { allocateAlignedBuffer, isAligned } from '../../src/io/aligned-buffer.js';
import { lockFile, unlockFile } from '../../src/io/file-lock.js';
import { nativeIo, openDevice } from '../../src/io/native.js';
import { makeTempDir } from '../support/temp-dir.js';

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
    assert.equal(await lockFile(handle.fd, 'exclusive'), true, "the kernel released the killed holder's lock");
    await unlockFile(handle.fd);
  } finally {
    await handle.close();
  }
});

test('flocks belong to the open file: a second fd in the same process is excluded until unlock', async (t) => {
  const lockPath = path.join(await makeTempDir(t, 'flock-fds'), 'lock');
  const first = await fs.open(lockPath, 'a');
  const second = await fs.open(lockPath, 'a');
  try {
    assert.equal(await lockFile(first.fd, 'exclusive'), true);
    assert.equal(await lockFile(second.fd, 'exclusive'), false, 'another open file of the same process is excluded');
    await unlockFile(first.fd);
    assert.equal(await lockFile(second.fd, 'exclusive'), true, 'unlock released it');
  } finally {
    await first.close();
    await second.close();
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

test('a failed system call rejects with the errno name, number and system call', async (t) => {
  const missing = path.join(await makeTempDir(t, 'errno'), 'missing');
  await assert.rejects(openDevice(missing, { direct: false, exclusive: false, readOnly: true, sync: false }), {
    code: 'ENOENT',
    errno: 2,
    syscall: 'open',
  });
  const handle = await fs.open(path.join(path.dirname(missing), 'closed'), 'w');
  const closedFd = handle.fd;
  await handle.close();
  await assert.rejects(nativeIo().flock(closedFd, 2, true), { code: 'EBADF', errno: 9, syscall: 'flock' });
  await assert.rejects(nativeIo().fdatasync(closedFd), { code: 'EBADF', syscall: 'fdatasync' });
});

test('openDevice returns a plain fd that node:fs can use and close', async (t) => {
  const filePath = path.join(await makeTempDir(t, 'open'), 'file');
  await fs.writeFile(filePath, 'hello');
  const fd = await openDevice(filePath, { direct: false, exclusive: false, readOnly: true, sync: false });
  const bytes = Buffer.alloc(5);
  assert.equal(readSync(fd, bytes, 0, 5, 0), 5);
  assert.equal(bytes.toString(), 'hello');
  closeSync(fd);
  assert.throws(() => fstatSync(fd), { code: 'EBADF' }, 'node closed it');
});

test('aligned buffers start on the requested boundary, and Node buffers often do not', () => {
  for (const alignment of [512, 4096, 65536]) {
    for (let round = 0; round < 20; round += 1) {
      const buffer = allocateAlignedBuffer(alignment * (round + 1), alignment);
      assert.ok(Buffer.isBuffer(buffer));
      assert.ok(isAligned(buffer, alignment));
      assert.equal(nativeIo().bufferAddress(buffer) % BigInt(alignment), 0n);
      assert.ok(buffer.every((byte) => byte === 0), 'zero-filled');
    }
  }
  const plain = Array.from({ length: 64 }, () => Buffer.alloc(100).subarray(16));
  assert.ok(plain.some((buffer) => !isAligned(buffer, 512)), 'ordinary Buffers are not sector-aligned');
  const aligned = allocateAlignedBuffer(8192);
  assert.equal(nativeIo().bufferAddress(aligned.subarray(512)), nativeIo().bufferAddress(aligned) + 512n, 'views keep their offset');
});

test('a missing addon is NATIVE_ADDON_MISSING telling the user to run npm ci', async (t) => {
  // A copy of the compiled loader in a package with no build/ directory.
  const root = await makeTempDir(t, 'no-addon');
  const compiledSource = path.resolve(fileURLToPath(import.meta.url), '../../../src');
  await fs.mkdir(path.join(root, 'dist', 'src', 'io'), { recursive: true });
  await fs.writeFile(path.join(root, 'package.json'), '{"type":"module"}');
  await fs.copyFile(path.join(compiledSource, 'errors.js'), path.join(root, 'dist', 'src', 'errors.js'));
  await fs.copyFile(path.join(compiledSource, 'io', 'native.js'), path.join(root, 'dist', 'src', 'io', 'native.js'));
  const copy = (await import(pathToFileURL(path.join(root, 'dist', 'src', 'io', 'native.js')).href)) as {
    nativeIo: () => unknown;
  };
  assert.throws(
    () => copy.nativeIo(),
    (error: Error & { code?: string }) =>
      error.name === 'ShardpoolError' && error.code === 'NATIVE_ADDON_MISSING' && error.message.includes('run npm ci'),
  );
  // The real one is untouched and loads.
  assert.ok(!isShardpoolError(nativeIo()));
});
