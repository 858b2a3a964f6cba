// Streams of any size hold only a few extents in memory. Measured in-process: resident memory may not grow by more
// than a bound that is far below the object size while a 512 MiB object is put from a stream and read back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trackPeakRss } from '../support/memory.js';
import { createTestPool } from '../support/test-pool.js';

const OBJECT_BYTES = 512 * 1024 * 1024;
const CHUNK_BYTES = 256 * 1024;
const GROWTH_MAX_BYTES = 160 * 1024 * 1024;

async function* generated(totalBytes: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < totalBytes; offset += CHUNK_BYTES) {
    // A fresh buffer per chunk, as a socket or file stream would hand over; a pattern that depends on the offset.
    const chunk = Buffer.alloc(CHUNK_BYTES, (offset / CHUNK_BYTES) % 251);
    yield chunk;
  }
}

test('a 512 MiB put and get from streams keep resident memory growth bounded', async (t) => {
  const testPool = await createTestPool(t, { disks: 6, policy: 'ec:4+2', extentSizeBytes: 1024 * 1024 });
  await testPool.withPool(async (pool) => {
    const baseline = process.memoryUsage.rss();
    const putPeak = trackPeakRss();
    await pool.put('big', generated(OBJECT_BYTES));
    const putGrowth = putPeak.stop() - baseline;

    const getPeak = trackPeakRss();
    let readBytes = 0;
    for await (const chunk of (await pool.openObject('big')).chunks()) {
      // Check the content as it streams by: byte i of chunk k follows the generator's pattern.
      const expected = Math.floor(readBytes / CHUNK_BYTES) % 251;
      assert.equal(chunk[0], expected);
      readBytes += chunk.length;
    }
    const getGrowth = getPeak.stop() - baseline;
    assert.equal(readBytes, OBJECT_BYTES);
    const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
    t.diagnostic(`resident growth: put ${mib(putGrowth)}, get ${mib(getGrowth)} for a ${mib(OBJECT_BYTES)} object`);
    assert.ok(putGrowth < GROWTH_MAX_BYTES, `put grew resident memory by ${mib(putGrowth)}`);
    assert.ok(getGrowth < GROWTH_MAX_BYTES, `get grew resident memory by ${mib(getGrowth)}`);
  });
});
