// The torture checker on hand-made histories: it must accept what a register allows and catch what it does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHistory, type HistoryOp } from './checker.js';
import { ABSENT, observe, segmentBytes, valueOf, valueSlice, type Value } from './values.js';

const put = (writeId: number, startMs: number, endMs: number, lengthBytes = 10_000, ok = true): HistoryOp => ({
  kind: 'put',
  client: 'test',
  key: 'k1',
  startMs,
  endMs,
  outcome: ok ? '200' : '500',
  ok,
  writeId,
  value: valueOf([{ writeId, lengthBytes }]),
});

const del = (writeId: number, startMs: number, endMs: number): HistoryOp => ({
  kind: 'delete', client: 'test', key: 'k1', startMs, endMs, outcome: '204', ok: true, writeId,
});

function get(startMs: number, endMs: number, saw: Value | Buffer, range?: { startByte: number; endByteExclusive: number }): HistoryOp {
  const base = { kind: 'get' as const, client: 'test', key: 'k1', startMs, endMs, outcome: '200' };
  if (Buffer.isBuffer(saw)) return { ...base, observation: observe(saw, { objectSizeBytes: saw.length, startByte: 0 }) };
  if (saw.absent) return { ...base, outcome: '404', observation: ABSENT };
  const size = saw.segments.reduce((sum, segment) => sum + segment.lengthBytes, 0);
  const { startByte, endByteExclusive } = range ?? { startByte: 0, endByteExclusive: size };
  return { ...base, observation: observe(valueSlice(saw, startByte, endByteExclusive), { objectSizeBytes: size, startByte }) };
}

const w = (writeId: number, lengthBytes = 10_000) => valueOf([{ writeId, lengthBytes }]);

test('a read sees the latest completed write, or any write in flight', () => {
  const history = [put(1, 0, 10), put(2, 20, 40), get(30, 35, w(1)), get(30, 35, w(2)), get(50, 60, w(2))];
  assert.deepEqual(checkHistory(history).violations, []);
});

test('a value superseded by a write that completed before the read began is a violation', () => {
  const result = checkHistory([put(1, 0, 10), put(2, 20, 30), get(40, 50, w(1))]);
  assert.equal(result.violations.length, 1);
  assert.deepEqual(result.violations[0]?.allowed, ['w2:10000']);
});

test('overlapping writes both stay legal after they end, and the initial absence does not', () => {
  const history = [put(1, 0, 30), put(2, 10, 20), get(40, 50, w(1)), get(40, 50, w(2))];
  assert.deepEqual(checkHistory(history).violations, []);
  assert.equal(checkHistory([put(1, 0, 30), get(40, 50, ABSENT)]).violations.length, 1);
});

test('a failed write may appear at any time after it started, and a delete reads as absent', () => {
  const history = [put(1, 0, 10), put(2, 20, 30, 10_000, false), del(3, 40, 50), get(60, 70, w(2)), get(60, 70, ABSENT)];
  assert.deepEqual(checkHistory(history).violations, []);
  assert.equal(checkHistory([put(1, 0, 10), del(3, 40, 50), get(60, 70, w(1))]).violations.length, 1);
});

test('a torn mix of two writes and a ranged read of the wrong bytes are caught; a right slice is not', () => {
  const torn = Buffer.concat([segmentBytes(1, 10_000).subarray(0, 8192), segmentBytes(2, 10_000).subarray(8192)]);
  const result = checkHistory([put(1, 0, 10), put(2, 0, 10), get(20, 30, torn)]);
  assert.equal(result.violations.length, 1);
  assert.match(result.violations[0]?.problem ?? '', /w1, w2.*torn/);
  const range = { startByte: 5000, endByteExclusive: 9000 };
  assert.deepEqual(checkHistory([put(1, 0, 10), get(20, 30, w(1), range)]).violations, []);
  const shifted = observe(valueSlice(w(1), 5001, 9001), { objectSizeBytes: 10_000, startByte: 5000 });
  const wrongSlice: HistoryOp = { kind: 'get', client: 'test', key: 'k1', startMs: 20, endMs: 30, outcome: '206', observation: shifted };
  assert.equal(checkHistory([put(1, 0, 10), wrongSlice]).violations.length, 1);
});

test('a copy holds a value its source had during the copy; a multipart object is its parts in order', () => {
  const copy: HistoryOp = { kind: 'copy', client: 'test', key: 'k2', startMs: 15, endMs: 25, outcome: '200', ok: true, writeId: 9, sourceKey: 'k1', sourceMissing: false };
  const read2 = (saw: Value): HistoryOp => ({ ...get(30, 40, saw), key: 'k2' });
  assert.deepEqual(checkHistory([put(1, 0, 10), put(2, 20, 30), copy, read2(w(1)), read2(w(2))]).violations, []);
  assert.equal(checkHistory([put(1, 0, 10), put(2, 11, 12), copy, read2(w(1))]).violations.length, 1);
  const parts = valueOf([{ writeId: 5, lengthBytes: 8192 }, { writeId: 6, lengthBytes: 100 }]);
  const complete: HistoryOp = { kind: 'complete', client: 'test', key: 'k1', startMs: 0, endMs: 10, outcome: '200', ok: true, writeId: 7, value: parts };
  assert.deepEqual(checkHistory([complete, get(20, 30, parts)]).violations, []);
  assert.equal(checkHistory([complete, get(20, 30, valueOf([{ writeId: 5, lengthBytes: 8292 }]))]).violations.length, 1);
});
