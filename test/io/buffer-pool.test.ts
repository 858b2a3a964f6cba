import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PAGE_BYTES, isAligned } from '../../src/io/aligned-buffer.js';
import { AlignedBufferPool, sizeClassOf, withLentBuffer } from '../../src/io/buffer-pool.js';

test('size classes: whole pages up to 64 KiB, then an eighth of the power of two, never smaller than asked', () => {
  assert.equal(sizeClassOf(1), 4096);
  assert.equal(sizeClassOf(4096), 4096);
  assert.equal(sizeClassOf(4097), 8192);
  assert.equal(sizeClassOf(65536), 65536);
  assert.equal(sizeClassOf(266_240), 294_912); // a 256 KiB fragment's record: 2^18 + 32 KiB steps
  assert.equal(sizeClassOf(1024 * 1024), 1024 * 1024);
  for (let length = 1; length < 3_000_000; length = Math.ceil(length * 1.37) + 1) {
    const size = sizeClassOf(length);
    assert.ok(size >= length && size <= Math.max(length * 1.125 + 1, length + PAGE_BYTES), `class of ${length} is ${size}`);
    assert.equal(size % PAGE_BYTES, 0, 'every class is whole pages, so every lent buffer is page-aligned');
  }
});

test('a given-back buffer is lent again (same memory), aligned, of the asked length; giving back twice is refused', () => {
  const pool = new AlignedBufferPool(1024 * 1024);
  const first = pool.lend(10_000);
  assert.equal(first.length, 10_000);
  assert.ok(isAligned(first, PAGE_BYTES));
  first.fill(7);
  pool.giveBack(first);
  assert.throws(() => pool.giveBack(first), /only once/);
  const second = pool.lend(9_000); // same class (12 KiB): the same memory, holding the earlier bytes (not zeroed)
  assert.equal(second.buffer, first.buffer);
  assert.equal(second[0], 7);
  assert.throws(() => pool.giveBack(second.subarray(1)), /only a lent buffer/);
  const other = pool.lend(100_000);
  assert.notEqual(other.buffer, second.buffer, 'two buffers lent at once never share memory');
  assert.deepEqual({ allocated: pool.stats.allocated, lent: pool.stats.lent }, { allocated: 2, lent: 3 });
});

test('the pool keeps at most its idle limit; beyond it given-back buffers are left to the collector', async () => {
  const pool = new AlignedBufferPool(64 * 1024);
  const lent = [pool.lend(32 * 1024), pool.lend(32 * 1024), pool.lend(32 * 1024)];
  for (const buffer of lent) pool.giveBack(buffer);
  assert.equal(pool.idleBytesHeld, 64 * 1024);
  assert.equal(pool.stats.dropped, 1);
  // withLentBuffer gives back even when its work fails.
  await assert.rejects(withLentBuffer(pool, 4096, async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(pool.stats.returned, 4);
});
