// The catalog's schema, as an ordered list of migrations: migration i takes schema version i to i + 1.
// A catalog is never opened by a shardpool older than its schema (POOL_FORMAT_UNSUPPORTED), and a newer shardpool
// brings an older catalog up to date inside one transaction. Layout notes live in docs/format.md § Catalog.

export const CATALOG_MIGRATIONS: ReadonlyArray<string> = [
  // 0 → 1: the first schema.
  `
  CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  -- Member disks. id is the short number the CLI accepts; uuid is the identity written in the disk's label.
  CREATE TABLE disks (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('directory', 'block-device')),
    path        TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL CHECK (state IN ('healthy', 'failed', 'draining')),
    added_at_ms INTEGER NOT NULL
  );

  -- The current version of each key. An overwrite replaces version_id in the same transaction that queues the old
  -- version for garbage collection, so a reader sees the old object or the new one, never a mix.
  CREATE TABLE objects (
    key               TEXT PRIMARY KEY,
    version_id        TEXT NOT NULL UNIQUE,
    size_bytes        INTEGER NOT NULL CHECK (size_bytes >= 0),
    policy            TEXT NOT NULL,
    fragment_count    INTEGER NOT NULL CHECK (fragment_count >= 1),
    fragments_needed  INTEGER NOT NULL CHECK (fragments_needed >= 1),
    extent_size_bytes INTEGER NOT NULL,
    extent_count      INTEGER NOT NULL CHECK (extent_count >= 0),
    created_at_ms     INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- Extents and fragments belong to a version (current, or queued as garbage until its fragments are deleted).
  CREATE TABLE extents (
    version_id   TEXT NOT NULL,
    extent_index INTEGER NOT NULL,
    length_bytes INTEGER NOT NULL,
    checksum     BLOB NOT NULL,
    PRIMARY KEY (version_id, extent_index)
  ) WITHOUT ROWID;

  CREATE TABLE fragments (
    version_id     TEXT NOT NULL,
    extent_index   INTEGER NOT NULL,
    fragment_index INTEGER NOT NULL,
    disk_id        INTEGER NOT NULL REFERENCES disks (id),
    stored_bytes   INTEGER NOT NULL,
    PRIMARY KEY (version_id, extent_index, fragment_index)
  ) WITHOUT ROWID;
  CREATE INDEX fragments_by_disk ON fragments (disk_id, version_id, extent_index);

  -- A put registers its version here before writing any fragment and removes it in its commit. A row found by a
  -- later writer (who holds the pool lock, so the put that wrote it is gone) marks fragments to clean up.
  CREATE TABLE intents (
    version_id    TEXT PRIMARY KEY,
    key           TEXT NOT NULL,
    started_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- A fragment being moved by a drain: registered before the copy is written to the target disk, removed once the
  -- copy on the source is deleted. A row found by a later writer marks one copy to delete: the target's if the
  -- fragment row still names the source (the move never committed), else the source's.
  CREATE TABLE moves (
    version_id     TEXT NOT NULL,
    extent_index   INTEGER NOT NULL,
    fragment_index INTEGER NOT NULL,
    source_disk_id INTEGER NOT NULL,
    target_disk_id INTEGER NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (version_id, extent_index, fragment_index)
  ) WITHOUT ROWID;

  -- Versions that were overwritten or removed; their fragments are deleted after the commit that replaced them.
  CREATE TABLE garbage (
    version_id   TEXT PRIMARY KEY,
    key          TEXT NOT NULL,
    queued_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- Event counters that outlive one command (degraded reads, reconstructed extents...).
  CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 1 → 2: block devices store fragments at an offset, which the catalog must remember to read them back.
  `
  ALTER TABLE fragments ADD COLUMN location_bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE moves ADD COLUMN source_location_bytes INTEGER NOT NULL DEFAULT 0;
  `,
  // 2 → 3: what the S3 API needs. Object metadata (ETag, content type, user metadata) belongs to a version and goes
  // with it; buckets, access keys and multipart uploads are the daemon's own tables.
  `
  CREATE TABLE object_metadata (
    version_id    TEXT PRIMARY KEY,
    etag          TEXT NOT NULL,
    content_type  TEXT,
    user_metadata TEXT NOT NULL DEFAULT '{}'
  ) WITHOUT ROWID;

  CREATE TABLE buckets (
    name          TEXT PRIMARY KEY,
    created_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- S3 access keys. The secret is kept as is: SigV4 verification recomputes the client's HMAC with it.
  CREATE TABLE users (
    name              TEXT PRIMARY KEY,
    access_key_id     TEXT NOT NULL UNIQUE,
    secret_access_key TEXT NOT NULL,
    created_at_ms     INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- A multipart upload in progress; each uploaded part is a hidden pool object (see part_key).
  CREATE TABLE multipart_uploads (
    upload_id     TEXT PRIMARY KEY,
    bucket        TEXT NOT NULL,
    key           TEXT NOT NULL,
    content_type  TEXT,
    user_metadata TEXT NOT NULL DEFAULT '{}',
    created_at_ms INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE multipart_parts (
    upload_id      TEXT NOT NULL,
    part_number    INTEGER NOT NULL,
    part_key       TEXT NOT NULL,
    etag           TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    uploaded_at_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
  ) WITHOUT ROWID;
  `,
  // 3 → 4: the headers S3 stores with an object beside its content type (Cache-Control, Content-Disposition,
  // Content-Encoding, Content-Language, Expires: a JSON object by lower-case name), on the object and on the upload
  // that will make one; and the sizes of a multipart object's parts (a JSON array, NULL for objects put whole), for
  // GET ?partNumber=N.
  `
  ALTER TABLE object_metadata ADD COLUMN content_headers TEXT NOT NULL DEFAULT '{}';
  ALTER TABLE object_metadata ADD COLUMN part_sizes TEXT;
  ALTER TABLE multipart_uploads ADD COLUMN content_headers TEXT NOT NULL DEFAULT '{}';
  `,
];
