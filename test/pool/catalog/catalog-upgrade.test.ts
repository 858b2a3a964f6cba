// A catalog written by an older shardpool opens in this one: its schema is migrated in place and its rows read as
// they were (the S3 columns added by schema 4 hold their defaults).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { CATALOG_SCHEMA_VERSION } from '../../../src/constants.js';
import { CATALOG_FILE_NAME } from '../../../src/pool/catalog/catalog.js';
import { openCatalog } from '../../../src/pool/catalog/open-catalog.js';
import { catalogMigrations, SQLITE_DIALECT } from '../../../src/pool/catalog/schema.js';
import { makeTempDir } from '../../support/temp-dir.js';

test('a schema 3 SQLite catalog upgrades to the current schema and keeps its S3 metadata and uploads', async (t) => {
  const directory = await makeTempDir(t, 'catalog-upgrade');
  const db = new Database(path.join(directory, CATALOG_FILE_NAME));
  for (const migration of catalogMigrations(SQLITE_DIALECT).slice(0, 3)) db.exec(migration);
  db.pragma('user_version = 3');
  db.prepare(`INSERT INTO object_metadata (version_id, etag, content_type, user_metadata) VALUES ('v1', '"e"', 'text/plain', '{"a":"b"}')`).run();
  db.prepare(
    `INSERT INTO multipart_uploads (upload_id, bucket, key, content_type, user_metadata, created_at_ms) VALUES ('u1', 'bkt', 'k', NULL, '{}', 7)`,
  ).run();
  db.close();
  const catalog = await openCatalog(directory, { engine: 'sqlite' }, { create: false });
  try {
    assert.deepEqual(await catalog.objectMetadata('v1'), { etag: '"e"', contentType: 'text/plain', userMetadata: { a: 'b' } });
    assert.deepEqual(await catalog.s3.getUpload('u1'), { uploadId: 'u1', bucket: 'bkt', key: 'k', contentType: undefined, userMetadata: {}, createdAtMs: 7 });
  } finally {
    await catalog.close();
  }
  const reopened = new Database(path.join(directory, CATALOG_FILE_NAME), { readonly: true });
  assert.equal(reopened.pragma('user_version', { simple: true }), CATALOG_SCHEMA_VERSION);
  reopened.close();
});
