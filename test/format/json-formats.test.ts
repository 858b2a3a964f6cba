import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { test } from 'node:test';
import { isShardpoolError, type ErrorCode } from '../../src/errors.js';
import { decodeDiskLabel, encodeDiskLabel, type DiskLabel } from '../../src/format/disk-label.js';
import { decodePoolConfig, encodePoolConfig, type PoolConfig } from '../../src/format/pool-config.js';

const FIXTURES = new URL('../../../test/fixtures/format/v1/', import.meta.url);

const POOL: PoolConfig = {
  formatVersion: 1,
  catalog: { engine: 'sqlite' },
  poolUuid: '11111111-2222-4333-8444-555555555555',
  defaultPolicy: { kind: 'ec', dataFragments: 4, parityFragments: 2 },
  extentSizeBytes: 1024 * 1024,
  createdAt: '2026-11-25T03:00:00.000Z',
};

const LABEL: DiskLabel = {
  formatVersion: 1,
  kind: 'directory',
  poolUuid: POOL.poolUuid,
  diskUuid: '66666666-7777-4888-9999-aaaaaaaaaaaa',
  createdAt: '2026-11-25T03:00:00.000Z',
};

function withField(bytes: Buffer, field: string, value: unknown): Buffer {
  const document = JSON.parse(bytes.toString()) as Record<string, unknown>;
  if (value === undefined) delete document[field];
  else document[field] = value;
  return Buffer.from(JSON.stringify(document));
}

function expectCode(code: ErrorCode) {
  return (error: unknown) => {
    assert.ok(isShardpoolError(error, code), `expected ${code}, got ${String(error)}`);
    return true;
  };
}

test('pool.json and disk.json round-trip, and the v1 fixtures still decode', async () => {
  assert.deepEqual(decodePoolConfig(encodePoolConfig(POOL), 'test'), POOL);
  assert.deepEqual(decodeDiskLabel(encodeDiskLabel(LABEL), 'test'), LABEL);
  assert.deepEqual(decodePoolConfig(await fs.readFile(new URL('pool.json', FIXTURES)), 'fixture'), POOL);
  assert.deepEqual(decodeDiskLabel(await fs.readFile(new URL('disk.json', FIXTURES)), 'fixture'), LABEL);
  // Version 2: the catalog in PostgreSQL, its address kept without a password.
  const inPostgres: PoolConfig = { ...POOL, formatVersion: 2, catalog: { engine: 'postgresql', url: 'postgresql://shardpool@db.example:5432/pool1?sslmode=verify-full' } };
  assert.deepEqual(decodePoolConfig(encodePoolConfig(inPostgres), 'test'), inPostgres);
  assert.deepEqual(decodePoolConfig(await fs.readFile(new URL('../v2/pool.json', FIXTURES)), 'fixture'), inPostgres);
});

test('a damaged pool.json is POOL_CONFIG_INVALID, a newer one POOL_FORMAT_UNSUPPORTED', () => {
  const good = encodePoolConfig(POOL);
  const cases: Array<[Buffer, ErrorCode]> = [
    [Buffer.from('{"format": "shardpool-pool", '), 'POOL_CONFIG_INVALID'],
    [Buffer.from('[]'), 'POOL_CONFIG_INVALID'],
    [Buffer.from('null'), 'POOL_CONFIG_INVALID'],
    [Buffer.from(''), 'POOL_CONFIG_INVALID'],
    [Buffer.from([0xff, 0xfe, 0x00]), 'POOL_CONFIG_INVALID'],
    [withField(good, 'format', 'something-else'), 'POOL_CONFIG_INVALID'],
    [withField(good, 'formatVersion', '1'), 'POOL_CONFIG_INVALID'],
    [withField(good, 'formatVersion', 0), 'POOL_CONFIG_INVALID'],
    [withField(good, 'formatVersion', 3), 'POOL_FORMAT_UNSUPPORTED'],
    [withField(good, 'catalog', { engine: 'postgresql', url: 'postgresql://u@h/db' }), 'POOL_CONFIG_INVALID'], // needs version 2
    [withField(withField(good, 'formatVersion', 2), 'catalog', { engine: 'postgresql', url: 'postgresql://u:secret@h/db' }), 'POOL_CONFIG_INVALID'],
    [withField(withField(good, 'formatVersion', 2), 'catalog', { engine: 'postgresql', url: 'mysql://u@h/db' }), 'POOL_CONFIG_INVALID'],
    [withField(withField(good, 'formatVersion', 2), 'catalog', { engine: 'postgresql', url: 'postgresql://u@h' }), 'POOL_CONFIG_INVALID'],
    [withField(withField(good, 'formatVersion', 2), 'catalog', { engine: 'oracle' }), 'POOL_CONFIG_INVALID'],
    [withField(good, 'poolUuid', 'not-a-uuid'), 'POOL_CONFIG_INVALID'],
    [withField(good, 'poolUuid', undefined), 'POOL_CONFIG_INVALID'],
    [withField(good, 'defaultPolicy', 'raid5'), 'POOL_CONFIG_INVALID'],
    [withField(good, 'defaultPolicy', 42), 'POOL_CONFIG_INVALID'],
    [withField(good, 'extentSizeBytes', 1000), 'POOL_CONFIG_INVALID'],
    [withField(good, 'extentSizeBytes', 128 * 1024 * 1024), 'POOL_CONFIG_INVALID'],
    [withField(good, 'extentSizeBytes', '1MiB'), 'POOL_CONFIG_INVALID'],
    [withField(good, 'createdAt', undefined), 'POOL_CONFIG_INVALID'],
  ];
  for (const [bytes, code] of cases) assert.throws(() => decodePoolConfig(bytes, 'test'), expectCode(code), bytes.toString());
});

test('a damaged disk.json is DISK_LABEL_INVALID, a newer one POOL_FORMAT_UNSUPPORTED', () => {
  const good = encodeDiskLabel(LABEL);
  const cases: Array<[Buffer, ErrorCode]> = [
    [Buffer.from('not json'), 'DISK_LABEL_INVALID'],
    [Buffer.from('7'), 'DISK_LABEL_INVALID'],
    [withField(good, 'format', 'ext4'), 'DISK_LABEL_INVALID'],
    [withField(good, 'kind', 'block-device'), 'DISK_LABEL_INVALID'],
    [withField(good, 'kind', undefined), 'DISK_LABEL_INVALID'],
    [withField(good, 'diskUuid', 'x'), 'DISK_LABEL_INVALID'],
    [withField(good, 'poolUuid', undefined), 'DISK_LABEL_INVALID'],
    [withField(good, 'formatVersion', 99), 'POOL_FORMAT_UNSUPPORTED'],
  ];
  for (const [bytes, code] of cases) assert.throws(() => decodeDiskLabel(bytes, 'test'), expectCode(code), bytes.toString());
});
