// The encrypted object layout (docs/format.md § Encrypted objects): the version 1 fixtures — a pool key file, an
// SSE-S3 object of two segments wrapped with two pool keys, an SSE-C object — decode and decrypt forever; any range
// maps to whole chunks that decrypt to exactly its bytes; a changed byte, a moved, dropped or cut-off chunk, a wrong
// key and a malformed record or key file are refused, never turned into plaintext.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import {
  SSE_CHUNK_BYTES,
  chunkCountOf,
  decodeKeyFile,
  decryptChunk,
  encodeKeyFile,
  encodeRecord,
  recordPlaintextBytes,
  recordStoredBytes,
  segmentStoredBytes,
  storedChunkBytes,
  storedRangeOf,
  unwrapDataKey,
  verifyRecord,
  type SseRecord,
} from '../../src/format/sse-layout.js';

const FIXTURES = new URL('../../../test/fixtures/format/v1/', import.meta.url);
const read = (name: string) => fs.readFile(new URL(name, FIXTURES));
/** The fixtures' plaintexts: byte i of segment s is (31·i + seed) mod 251. */
const plaintext = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, index) => (index * 31 + seed) % 251));
/** The SSE-C fixture's customer key (never in a fixture: the client brings it). */
const CUSTOMER_KEY = Buffer.alloc(32, 0x33);

/** Decrypts plaintext [start, end) of `stored` as a reader of the pool does: the planned stored range, chunk by chunk. */
function decryptRange(record: SseRecord, dataKeys: ReadonlyArray<Buffer>, stored: Buffer, range: { startByte: number; endByteExclusive: number }): Buffer {
  const plan = storedRangeOf(record, range);
  let offset = plan.startByte;
  const out: Buffer[] = [];
  for (const run of plan.runs) {
    const segment = record.segments[run.segmentIndex]!;
    let skip = run.skipBytes;
    let keep = run.keepBytes;
    for (let index = run.firstChunk; index <= run.lastChunk; index += 1) {
      const length = storedChunkBytes(segment.plaintextBytes, index);
      const chunk = decryptChunk(dataKeys[run.segmentIndex]!, segment.nonceBase, { index, final: index === chunkCountOf(segment.plaintextBytes) - 1, stored: stored.subarray(offset, offset + length) });
      offset += length;
      const piece = chunk.subarray(skip, skip + keep);
      skip = 0;
      keep -= piece.length;
      out.push(piece);
    }
  }
  assert.equal(offset, plan.endByteExclusive, 'the runs cover the planned stored range exactly');
  return Buffer.concat(out);
}

async function fixtures() {
  const keyFile = decodeKeyFile(await read('sse-keys.json'), 'fixture');
  const s3Json = JSON.parse((await read('sse-s3-object.json')).toString()) as unknown;
  const cJson = JSON.parse((await read('sse-c-object.json')).toString()) as unknown;
  const s3Record = verifyRecord(s3Json, 'fixture');
  const cRecord = verifyRecord(cJson, 'fixture');
  const s3Keys = s3Record.segments.map((segment) => unwrapDataKey(keyFile.keys.find((key) => key.id === segment.keyId)!.key, segment.wrappedKey, 'SSE-S3')!);
  const cKeys = cRecord.segments.map((segment) => unwrapDataKey(CUSTOMER_KEY, segment.wrappedKey, 'SSE-C')!);
  return {
    keyFile,
    s3: { json: s3Json, record: s3Record, keys: s3Keys, stored: await read('sse-s3-object.bin'), plain: Buffer.concat([plaintext(65636, 1), plaintext(10, 2)]) },
    c: { json: cJson, record: cRecord, keys: cKeys, stored: await read('sse-c-object.bin'), plain: plaintext(70000, 3) },
  };
}

test('the version 1 fixtures decode, unwrap and decrypt forever, and encode back to the same documents', async () => {
  const { keyFile, s3, c } = await fixtures();
  assert.equal(keyFile.currentKeyId, 'fedcba9876543210');
  assert.deepEqual(keyFile.keys.map((key) => key.id), ['0123456789abcdef', 'fedcba9876543210']);
  assert.deepEqual(encodeKeyFile(keyFile), await read('sse-keys.json'));
  for (const object of [s3, c]) {
    assert.deepEqual(encodeRecord(object.record), object.json);
    assert.ok(object.keys.every((key) => key?.length === 32), 'every data key unwraps');
    assert.equal(recordStoredBytes(object.record), object.stored.length);
    assert.equal(recordPlaintextBytes(object.record), object.plain.length);
    assert.ok(decryptRange(object.record, object.keys, object.stored, { startByte: 0, endByteExclusive: object.plain.length }).equals(object.plain));
    assert.ok(!object.stored.includes(object.plain.subarray(0, 64)), 'the stored bytes are not the plaintext');
  }
  assert.equal(c.record.customerKeyMd5, 'ow4jVwzDupHzHI4MquSMuQ==');
  assert.deepEqual([0, 1, 100, 65536, 65537].map((bytes) => segmentStoredBytes(bytes)), [16, 17, 116, 65552, 65569]);
});

test('every range decrypts to exactly its plaintext bytes, reading whole chunks only', async () => {
  const { s3, c } = await fixtures();
  for (const object of [s3, c]) {
    const size = object.plain.length;
    const edges = [0, 1, SSE_CHUNK_BYTES - 1, SSE_CHUNK_BYTES, SSE_CHUNK_BYTES + 1, 65636 - 1, 65636, 65640, size - 1, size];
    for (const start of edges) {
      for (const end of edges) {
        if (start > end || end > size) continue;
        const got = decryptRange(object.record, object.keys, object.stored, { startByte: start, endByteExclusive: end });
        assert.ok(got.equals(object.plain.subarray(start, end)), `[${start}, ${end})`);
      }
    }
  }
});

test('a changed, moved, dropped or cut-off chunk, or a wrong key, is refused instead of decrypted', async () => {
  const { s3, c } = await fixtures();
  const refused = (work: () => unknown, why: string) => assert.throws(work, (error: unknown) => isShardpoolError(error, 'SSE_CIPHERTEXT_INVALID'), why);
  const whole = { startByte: 0, endByteExclusive: c.plain.length };
  for (const offset of [0, 100, 65551, 65552, c.stored.length - 1]) {
    const altered = Buffer.from(c.stored);
    altered[offset] = (altered[offset] as number) ^ 0x80;
    refused(() => decryptRange(c.record, c.keys, altered, whole), `a flipped bit at ${offset}`);
  }
  const segment = c.record.segments[0]!;
  const first = c.stored.subarray(0, 65552);
  const second = c.stored.subarray(65552);
  refused(() => decryptChunk(c.keys[0]!, segment.nonceBase, { index: 1, final: true, stored: first }), 'chunk 0 read in the place of chunk 1');
  refused(() => decryptChunk(c.keys[0]!, segment.nonceBase, { index: 0, final: true, stored: first }), 'chunk 0 passed off as the last (the rest cut off)');
  refused(() => decryptChunk(c.keys[0]!, segment.nonceBase, { index: 1, final: false, stored: second }), 'the last chunk passed off as a middle one');
  refused(() => decryptChunk(s3.keys[0]!, segment.nonceBase, { index: 0, final: false, stored: first }), 'another data key');
  assert.equal(unwrapDataKey(Buffer.alloc(32, 0x34), segment.wrappedKey, 'SSE-C'), undefined, 'another customer key unwraps nothing');
  assert.equal(unwrapDataKey(CUSTOMER_KEY, segment.wrappedKey, 'SSE-S3'), undefined, 'a key wrapped for SSE-C is not an SSE-S3 one');
});

test('a malformed record is SSE_RECORD_INVALID, a malformed key file SSE_KEY_FILE_INVALID', async () => {
  const { s3, c } = await fixtures();
  const good = s3.json as Record<string, unknown>;
  const segment = (good.segments as Array<Record<string, unknown>>)[0]!;
  const bad: unknown[] = [
    null,
    [],
    { ...good, formatVersion: 2 },
    { ...good, algorithm: 'AES128' },
    { ...good, kind: 'SSE-KMS' },
    { ...good, chunkBytes: 4096 },
    { ...good, segments: [] },
    { ...good, customerKeyMd5: 'ow4jVwzDupHzHI4MquSMuQ==' },
    { ...good, segments: [{ ...segment, plaintextBytes: -1 }] },
    { ...good, segments: [{ ...segment, keyId: undefined }] },
    { ...good, segments: [{ ...segment, wrappedKey: 'AAAA' }] },
    { ...good, segments: [{ ...segment, nonceBase: 'xyz' }] },
    { ...(c.json as Record<string, unknown>), customerKeyMd5: undefined },
  ];
  for (const value of bad) assert.throws(() => verifyRecord(value, 'test'), (error: unknown) => isShardpoolError(error, 'SSE_RECORD_INVALID'), JSON.stringify(value));
  const file = JSON.parse((await read('sse-keys.json')).toString()) as Record<string, unknown>;
  const key = (file.keys as Array<Record<string, unknown>>)[0]!;
  const badFiles: unknown[] = [
    { ...file, format: 'other' },
    { ...file, keys: [] },
    { ...file, currentKeyId: '1111111111111111' },
    { ...file, keys: [key, key] },
    { ...file, keys: [{ ...key, key: Buffer.alloc(16).toString('base64') }] },
    { ...file, keys: [{ ...key, id: 'short' }] },
  ];
  for (const value of badFiles) {
    assert.throws(() => decodeKeyFile(Buffer.from(JSON.stringify(value)), 'test'), (error: unknown) => isShardpoolError(error, 'SSE_KEY_FILE_INVALID'), JSON.stringify(value));
  }
  assert.throws(() => decodeKeyFile(Buffer.from(JSON.stringify({ ...file, formatVersion: 2 })), 'test'), (error: unknown) => isShardpoolError(error, 'POOL_FORMAT_UNSUPPORTED'));
});
