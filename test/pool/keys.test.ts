import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import { validateKey } from '../../src/pool/keys.js';
import { listFilesRecursively } from '../support/temp-dir.js';
import { createTestPool, getBuffer, putBuffer } from '../support/test-pool.js';
import { toArray } from '../support/async.js';

// Keys that would escape a directory if they were ever used as paths. They are valid keys: keys are data.
const HOSTILE_BUT_VALID = [
  '../../etc/passwd',
  '/etc/passwd',
  '..',
  '.',
  'a/../../../b',
  '....//....//etc',
  '%2e%2e%2f%2e%2e%2fetc',
  'C:\\Windows\\System32',
  '~root/.ssh/authorized_keys',
  'disk.json',
  '../disk.json',
  'fragments/00/x.0.0.frag',
  ' leading and trailing spaces ',
  'ключ/鍵/🔑',
  'k'.repeat(1024),
  `${'é'.repeat(511)}k`, // 1023 bytes of UTF-8
];

const INVALID = [
  { key: '', why: /empty/ },
  { key: 'nul\u0000byte', why: /control/ },
  { key: 'new\nline', why: /control/ },
  { key: 'tab\there', why: /control/ },
  { key: 'del\u007f', why: /control/ },
  { key: 'c1\u0085', why: /control/ },
  { key: 'lone\ud800surrogate', why: /UTF-8/ },
  { key: 'k'.repeat(1025), why: /1024 bytes/ },
  { key: 'é'.repeat(513), why: /1024 bytes/ },
];

test('path-like keys are stored as data: they round-trip and never create a file outside the fragment areas', async (t) => {
  const testPool = await createTestPool(t, { disks: 4, policy: 'ec:2+1' });
  const before = new Set(await listFilesRecursively(testPool.root));
  await testPool.withPool(async (pool) => {
    for (const [index, key] of HOSTILE_BUT_VALID.entries()) await putBuffer(pool, key, Buffer.from(`value ${index}`));
    for (const [index, key] of HOSTILE_BUT_VALID.entries()) {
      assert.equal((await getBuffer(pool, key)).toString(), `value ${index}`, `key ${JSON.stringify(key.slice(0, 40))}`);
    }
    assert.deepEqual(
      (await toArray(pool.listObjects())).map((object) => object.key).sort(),
      [...HOSTILE_BUT_VALID].sort(),
    );
  });
  const created = (await listFilesRecursively(testPool.root)).filter((file) => !before.has(file));
  const fragmentArea = new RegExp(`^disk\\d+${path.sep}fragments${path.sep}[0-9a-f]{2}${path.sep}[0-9a-f-]{36}\\.\\d+\\.\\d+\\.frag$`);
  for (const file of created) {
    assert.ok(fragmentArea.test(file) || file.startsWith(`pool${path.sep}`), `unexpected file ${file}`);
  }
  // Three fragments and two manifest copies (docs/format.md § Version manifest) per object.
  assert.equal(created.filter((file) => fragmentArea.test(file)).length, HOSTILE_BUT_VALID.length * (3 + 2));
});

test('keys outside the allowed set are refused with KEY_INVALID and a reason', async (t) => {
  for (const { key, why } of INVALID) {
    assert.throws(() => validateKey(key), (error: unknown) => {
      assert.ok(isShardpoolError(error, 'KEY_INVALID'), `${JSON.stringify(key.slice(0, 20))}: ${String(error)}`);
      assert.match(error.message, why);
      assert.ok(!error.message.includes('\u0000') && !error.message.includes('\n'), 'the message stays one clean line');
      return true;
    });
  }
  const testPool = await createTestPool(t, { disks: 3, policy: 'ec:2+1' });
  await testPool.withPool(async (pool) => {
    for (const { key } of INVALID) {
      await assert.rejects(putBuffer(pool, key, Buffer.from('x')), (error: unknown) => isShardpoolError(error, 'KEY_INVALID'));
      await assert.rejects(pool.openObject(key), (error: unknown) => isShardpoolError(error, 'KEY_INVALID'));
    }
    assert.equal((await toArray(pool.listObjects())).length, 0);
  });
});
