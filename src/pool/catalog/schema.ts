// The catalog's schema, for both engines, as one ordered list of migrations: migration i takes schema version i to
// i + 1. Each is written once, in SQL both engines accept, with the few words that differ left to a dialect:
//   - ${d.text}: TEXT. PostgreSQL's is TEXT COLLATE "C": keys are UTF-8 (the database must be UTF8) and the "C"
//     collation compares their bytes as SQLite's BINARY does, so ORDER BY key is one order on both engines (listings,
//     keyset pages, dumps).
//   - ${d.int64}: byte counts, milliseconds and counters (SQLite's INTEGER is 64-bit; PostgreSQL's BIGINT).
//   - ${d.bytes}: checksums (BLOB / BYTEA).
//   - ${d.keyed}: a table stored by its primary key (SQLite's WITHOUT ROWID; PostgreSQL has no such choice).
// Tables, columns (in this order) and keys are the same on both engines, so a dump of either loads into the other.
// A catalog is never opened by a shardpool older than its schema (POOL_FORMAT_UNSUPPORTED), and a newer shardpool
// brings an older catalog up to date, each migration in one transaction. SQLite keeps the version in
// PRAGMA user_version, PostgreSQL in the table catalog_schema; never in meta, which is dumped and loaded (the
// version belongs to the database it describes). Layout notes live in docs/format.md § Catalog.

import { CATALOG_SCHEMA_VERSION } from '../../constants.js';
import { assert } from '../../assert.js';

export interface SqlDialect {
  readonly text: string;
  readonly int64: string;
  readonly bytes: string;
  readonly keyed: string;
  /** Which engine: the few statements without a common form (changing a table's constraints) differ. */
  readonly engine: 'sqlite' | 'postgresql';
}

export const SQLITE_DIALECT: SqlDialect = { text: 'TEXT', int64: 'INTEGER', bytes: 'BLOB', keyed: ' WITHOUT ROWID', engine: 'sqlite' };
export const POSTGRES_DIALECT: SqlDialect = { text: 'TEXT COLLATE "C"', int64: 'BIGINT', bytes: 'BYTEA', keyed: '', engine: 'postgresql' };

const MIGRATIONS: ReadonlyArray<(d: SqlDialect) => string> = [
  // 0 → 1: the first schema.
  (d) => `
  CREATE TABLE meta (
    name  ${d.text} PRIMARY KEY,
    value ${d.text} NOT NULL
  )${d.keyed};

  -- Member disks. id is the short number the CLI accepts; uuid is the identity written in the disk's label. SQLite
  -- numbers rows itself (the largest plus one); PostgreSQL's engine picks ids the same way under a table lock, not
  -- by a sequence, so a loaded dump needs no sequence set and both engines number the same disks alike.
  CREATE TABLE disks (
    id          INTEGER PRIMARY KEY,
    uuid        ${d.text} NOT NULL UNIQUE,
    kind        ${d.text} NOT NULL CHECK (kind IN ('directory', 'block-device')),
    path        ${d.text} NOT NULL UNIQUE,
    state       ${d.text} NOT NULL CHECK (state IN ('healthy', 'failed', 'draining')),
    added_at_ms ${d.int64} NOT NULL
  );

  -- The current version of each key. An overwrite replaces version_id in the same transaction that queues the old
  -- version for garbage collection, so a reader sees the old object or the new one, never a mix.
  CREATE TABLE objects (
    key               ${d.text} PRIMARY KEY,
    version_id        ${d.text} NOT NULL UNIQUE,
    size_bytes        ${d.int64} NOT NULL CHECK (size_bytes >= 0),
    policy            ${d.text} NOT NULL,
    fragment_count    INTEGER NOT NULL CHECK (fragment_count >= 1),
    fragments_needed  INTEGER NOT NULL CHECK (fragments_needed >= 1),
    extent_size_bytes ${d.int64} NOT NULL,
    extent_count      INTEGER NOT NULL CHECK (extent_count >= 0),
    created_at_ms     ${d.int64} NOT NULL
  )${d.keyed};

  -- Extents and fragments belong to a version (current, or queued as garbage until its fragments are deleted).
  CREATE TABLE extents (
    version_id   ${d.text} NOT NULL,
    extent_index INTEGER NOT NULL,
    length_bytes ${d.int64} NOT NULL,
    checksum     ${d.bytes} NOT NULL,
    PRIMARY KEY (version_id, extent_index)
  )${d.keyed};

  CREATE TABLE fragments (
    version_id     ${d.text} NOT NULL,
    extent_index   INTEGER NOT NULL,
    fragment_index INTEGER NOT NULL,
    disk_id        INTEGER NOT NULL REFERENCES disks (id),
    stored_bytes   ${d.int64} NOT NULL,
    PRIMARY KEY (version_id, extent_index, fragment_index)
  )${d.keyed};
  CREATE INDEX fragments_by_disk ON fragments (disk_id, version_id, extent_index);

  -- A put registers its version here before writing any fragment and removes it in its commit. A row found by a
  -- later writer (who holds the pool lock, so the put that wrote it is gone) marks fragments to clean up.
  CREATE TABLE intents (
    version_id    ${d.text} PRIMARY KEY,
    key           ${d.text} NOT NULL,
    started_at_ms ${d.int64} NOT NULL
  )${d.keyed};

  -- A fragment being moved by a drain: registered before the copy is written to the target disk, removed once the
  -- copy on the source is deleted. A row found by a later writer marks one copy to delete: the target's if the
  -- fragment row still names the source (the move never committed), else the source's.
  CREATE TABLE moves (
    version_id     ${d.text} NOT NULL,
    extent_index   INTEGER NOT NULL,
    fragment_index INTEGER NOT NULL,
    source_disk_id INTEGER NOT NULL,
    target_disk_id INTEGER NOT NULL,
    started_at_ms  ${d.int64} NOT NULL,
    PRIMARY KEY (version_id, extent_index, fragment_index)
  )${d.keyed};

  -- Versions that were overwritten or removed; their fragments are deleted after the commit that replaced them.
  CREATE TABLE garbage (
    version_id   ${d.text} PRIMARY KEY,
    key          ${d.text} NOT NULL,
    queued_at_ms ${d.int64} NOT NULL
  )${d.keyed};

  -- Event counters that outlive one command (degraded reads, reconstructed extents...).
  CREATE TABLE counters (
    name  ${d.text} PRIMARY KEY,
    value ${d.int64} NOT NULL
  )${d.keyed};
  `,
  // 1 → 2: block devices store fragments at an offset, which the catalog must remember to read them back.
  (d) => `
  ALTER TABLE fragments ADD COLUMN location_bytes ${d.int64} NOT NULL DEFAULT 0;
  ALTER TABLE moves ADD COLUMN source_location_bytes ${d.int64} NOT NULL DEFAULT 0;
  `,
  // 2 → 3: what the S3 API needs. Object metadata (ETag, content type, user metadata) belongs to a version and goes
  // with it; buckets, access keys and multipart uploads are the daemon's own tables.
  (d) => `
  CREATE TABLE object_metadata (
    version_id    ${d.text} PRIMARY KEY,
    etag          ${d.text} NOT NULL,
    content_type  ${d.text},
    user_metadata ${d.text} NOT NULL DEFAULT '{}'
  )${d.keyed};

  CREATE TABLE buckets (
    name          ${d.text} PRIMARY KEY,
    created_at_ms ${d.int64} NOT NULL
  )${d.keyed};

  -- S3 access keys. The secret is kept as is: SigV4 verification recomputes the client's HMAC with it.
  CREATE TABLE users (
    name              ${d.text} PRIMARY KEY,
    access_key_id     ${d.text} NOT NULL UNIQUE,
    secret_access_key ${d.text} NOT NULL,
    created_at_ms     ${d.int64} NOT NULL
  )${d.keyed};

  -- A multipart upload in progress; each uploaded part is a hidden pool object (see part_key).
  CREATE TABLE multipart_uploads (
    upload_id     ${d.text} PRIMARY KEY,
    bucket        ${d.text} NOT NULL,
    key           ${d.text} NOT NULL,
    content_type  ${d.text},
    user_metadata ${d.text} NOT NULL DEFAULT '{}',
    created_at_ms ${d.int64} NOT NULL
  )${d.keyed};

  CREATE TABLE multipart_parts (
    upload_id      ${d.text} NOT NULL,
    part_number    INTEGER NOT NULL,
    part_key       ${d.text} NOT NULL,
    etag           ${d.text} NOT NULL,
    size_bytes     ${d.int64} NOT NULL,
    uploaded_at_ms ${d.int64} NOT NULL,
    PRIMARY KEY (upload_id, part_number)
  )${d.keyed};
  `,
  // 3 → 4: the headers S3 stores with an object beside its content type (Cache-Control, Content-Disposition,
  // Content-Encoding, Content-Language, Expires: a JSON object by lower-case name), on the object and on the upload
  // that will make one; and the sizes of a multipart object's parts (a JSON array, NULL for objects put whole), for
  // GET ?partNumber=N.
  (d) => `
  ALTER TABLE object_metadata ADD COLUMN content_headers ${d.text} NOT NULL DEFAULT '{}';
  ALTER TABLE object_metadata ADD COLUMN part_sizes ${d.text};
  ALTER TABLE multipart_uploads ADD COLUMN content_headers ${d.text} NOT NULL DEFAULT '{}';
  `,
  // 4 → 5: the disks describe the pool (version manifests, docs/format.md § Version manifest). Every put and every
  // removal gets a sequence number from the catalog when it starts, and the highest committed one is a key's state
  // (on the disks as in the catalog: an older put committing after a newer one is queued as garbage at once). A
  // removal leaves a marker version (garbage with removal = 1) whose manifest copies hide the key's older versions
  // on the disks until they are collected. Versions from before have sequence 0 and no manifest.
  (d) => `
  ALTER TABLE objects ADD COLUMN sequence ${d.int64} NOT NULL DEFAULT 0;
  ALTER TABLE intents ADD COLUMN sequence ${d.int64} NOT NULL DEFAULT 0;
  ALTER TABLE garbage ADD COLUMN sequence ${d.int64} NOT NULL DEFAULT 0;
  ALTER TABLE garbage ADD COLUMN removal INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX garbage_by_key ON garbage (key, sequence);
  CREATE INDEX intents_by_key ON intents (key, sequence);

  -- Counters that only go up, handed out inside transactions (the commit sequence).
  CREATE TABLE sequences (
    name  ${d.text} PRIMARY KEY,
    value ${d.int64} NOT NULL
  )${d.keyed};
  `,
  // 5 → 6: server-side encryption at rest (docs/format.md § Encrypted objects). An encrypted version's record (how
  // its stored bytes decrypt: kind, wrapped data keys, nonce bases, plaintext sizes — never a key in the clear) is a
  // JSON column of its metadata, NULL for a plaintext one; an upload remembers the encryption its parts and its
  // object get (a JSON column: kind, and the customer key's MD5 for SSE-C), NULL for none.
  (d) => `
  ALTER TABLE object_metadata ADD COLUMN encryption ${d.text};
  ALTER TABLE multipart_uploads ADD COLUMN encryption ${d.text};
  `,
  // 6 → 7: tenants. A bucket has an owner (the user name that created it; NULL for buckets from before, which only
  // admins reach until access is granted) and a canned ACL; an object version has its canned ACL; a user may be an
  // admin (every bucket, every operation); other users reach a bucket they do not own through a grant of read, write
  // and/or owner (kept by user name, as the owner is). Users from before become admins: they keep exactly what they
  // could do (everything), nobody is locked out, and no one gains anything (docs/operations.md § Access control).
  (d) => `
  ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
  UPDATE users SET admin = 1;
  ALTER TABLE buckets ADD COLUMN owner ${d.text};
  ALTER TABLE buckets ADD COLUMN acl ${d.text} NOT NULL DEFAULT 'private' CHECK (acl IN ('private', 'public-read'));
  ALTER TABLE object_metadata ADD COLUMN acl ${d.text} NOT NULL DEFAULT 'private' CHECK (acl IN ('private', 'public-read'));

  CREATE TABLE bucket_grants (
    bucket    ${d.text} NOT NULL,
    user_name ${d.text} NOT NULL,
    may_read  INTEGER NOT NULL CHECK (may_read IN (0, 1)),
    may_write INTEGER NOT NULL CHECK (may_write IN (0, 1)),
    may_own   INTEGER NOT NULL CHECK (may_own IN (0, 1)),
    PRIMARY KEY (bucket, user_name)
  )${d.keyed};
  `,
  // 7 → 8: a pool across hosts (docs/architecture.md § Cluster). Every node of a pool is a row, alive while it renews
  // its lease; every disk and every put's intent belong to a node ('' in a pool of one host, which has no node
  // rows), and a disk's path is unique per node (two hosts may both have /dev/sdb). SQLite cannot change a
  // table's constraints: the disks table is made anew (the runner turns foreign keys off around a migration and
  // checks them before it commits); PostgreSQL swaps the constraint.
  (d) => `
  CREATE TABLE nodes (
    name             ${d.text} PRIMARY KEY,
    address          ${d.text} NOT NULL,
    state            ${d.text} NOT NULL CHECK (state IN ('active', 'failed', 'removing')),
    joined_at_ms     ${d.int64} NOT NULL,
    lease_expires_ms ${d.int64} NOT NULL,
    last_seen_ms     ${d.int64} NOT NULL
  )${d.keyed};
  ALTER TABLE intents ADD COLUMN node ${d.text} NOT NULL DEFAULT '';
  ${
    d.engine === 'sqlite'
      ? `CREATE TABLE disks_6 (
    id          INTEGER PRIMARY KEY,
    uuid        ${d.text} NOT NULL UNIQUE,
    kind        ${d.text} NOT NULL CHECK (kind IN ('directory', 'block-device')),
    path        ${d.text} NOT NULL,
    state       ${d.text} NOT NULL CHECK (state IN ('healthy', 'failed', 'draining')),
    added_at_ms ${d.int64} NOT NULL,
    node        ${d.text} NOT NULL DEFAULT '',
    UNIQUE (node, path)
  );
  INSERT INTO disks_6 (id, uuid, kind, path, state, added_at_ms) SELECT id, uuid, kind, path, state, added_at_ms FROM disks;
  DROP TABLE disks;
  ALTER TABLE disks_6 RENAME TO disks;`
      : `ALTER TABLE disks ADD COLUMN node ${d.text} NOT NULL DEFAULT '';
  ALTER TABLE disks DROP CONSTRAINT disks_path_key;
  ALTER TABLE disks ADD CONSTRAINT disks_node_path_key UNIQUE (node, path);`
  }
  `,
];

/** The migration that takes schema version `from` to `from + 1`, in the dialect of one engine. */
export function catalogMigration(dialect: SqlDialect, from: number): string {
  assert(MIGRATIONS.length === CATALOG_SCHEMA_VERSION, 'one migration per schema version');
  const migration = MIGRATIONS[from];
  assert(migration !== undefined, `no catalog migration from schema version ${from}`);
  return migration(dialect);
}

/** Every migration, in order, in the dialect of one engine. */
export function catalogMigrations(dialect: SqlDialect): string[] {
  return MIGRATIONS.map((_, from) => catalogMigration(dialect, from));
}
