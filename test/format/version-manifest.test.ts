// The version manifest (docs/format.md § Version manifest): round trips for versions (empty and multi-extent, with
// and without S3 metadata) and removals, and every malformed document refused as FRAGMENT_HEADER_INVALID.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isShardpoolError } from '../../src/errors.js';
import { decodeManifest, encodeManifest, manifestExtentLength, type Manifest, type VersionManifest } from '../../src/format/version-manifest.js';

const VERSION: VersionManifest = {
  kind: 'version',
  key: 'bucket/photo.jpg',
  versionId: '6f1c1a55-3d8e-4d8a-9b0e-2f1d3c4b5a69',
  sequence: 41,
  createdAtMs: 1_700_000_000_000,
  sizeBytes: 2 * 65536 + 5,
  policy: 'ec:4+2',
  extentSizeBytes: 65536,
  extentChecksums: [Buffer.alloc(16, 1), Buffer.alloc(16, 2), Buffer.alloc(16, 3)],
  diskUuids: ['a13badc8-b579-4925-b6f2-1dd965c2896a'],
  metadata: { etag: '"abc"', contentType: 'image/jpeg', userMetadata: { owner: 'ana' }, cacheControl: 'no-cache' },
};

test('manifests of versions and removals decode to what was encoded', () => {
  const cases: Manifest[] = [
    VERSION,
    { ...VERSION, sizeBytes: 0, extentChecksums: [], metadata: undefined, diskUuids: [] },
    { kind: 'removal', key: 'gone', versionId: VERSION.versionId, sequence: 42, createdAtMs: 5 },
  ];
  for (const manifest of cases) assert.deepEqual(decodeManifest(encodeManifest(manifest), 'test'), manifest);
  assert.deepEqual([0, 1, 2].map((index) => manifestExtentLength(VERSION, index)), [65536, 65536, 5]);
});

test('a malformed manifest is FRAGMENT_HEADER_INVALID, a newer one POOL_FORMAT_UNSUPPORTED', () => {
  const good = JSON.parse(encodeManifest(VERSION).toString()) as Record<string, unknown>;
  const bad: Array<Record<string, unknown> | string> = [
    'not json',
    { ...good, format: 'other' },
    { ...good, kind: 'deleted' },
    { ...good, sequence: -1 },
    { ...good, key: '' },
    { ...good, extentChecksums: 'zz' },
    { ...good, extentChecksums: '00'.repeat(16) }, // one checksum for three extents
    { ...good, diskUuids: 'x' },
    { ...good, metadata: { contentType: 'x' } },
  ];
  for (const document of bad) {
    const bytes = Buffer.from(typeof document === 'string' ? document : JSON.stringify(document));
    assert.throws(() => decodeManifest(bytes, 'test'), (error: unknown) => isShardpoolError(error, 'FRAGMENT_HEADER_INVALID'));
  }
  assert.throws(() => decodeManifest(Buffer.from(JSON.stringify({ ...good, formatVersion: 2 })), 'test'), (error: unknown) => isShardpoolError(error, 'POOL_FORMAT_UNSUPPORTED'));
});
