// The catalog's schema for PostgreSQL: the same tables, columns (in the same order) and keys as sqlite-schema.ts,
// as an ordered list of migrations with the same numbers (migration i takes schema version i to i + 1), so a dump
// of either engine loads into the other. The schema version lives in the table catalog_schema (one row), never in
// meta: meta is dumped and loaded, the version belongs to the database it describes.
// Types: BIGINT for byte counts, milliseconds and counters (SQLite's INTEGER is 64-bit), INTEGER for indexes and
// small counts, BYTEA for checksums, and TEXT COLLATE "C" everywhere: keys are UTF-8 (the database must be UTF8)
// and the "C" collation compares their bytes, as SQLite's BINARY does, so ORDER BY key is the same order on both
// engines (listings, keyset pages, dumps).

/** The table holding the schema version; not part of the catalog's rows (the dump skips it). */
export const POSTGRES_SCHEMA_TABLE = 'catalog_schema';

export const POSTGRES_CATALOG_MIGRATIONS: ReadonlyArray<string> = [
  // 0 → 1: the first schema.
  `
  CREATE TABLE meta (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
  );

  -- Member disks. Ids are chosen as SQLite's rowids are (the largest plus one, under a table lock), not by a
  -- sequence: a loaded dump needs no sequence to be set, and both engines number the same disks alike.
  CREATE TABLE disks (
    id          INTEGER PRIMARY KEY,
    uuid        TEXT COLLATE "C" NOT NULL UNIQUE,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('directory', 'block-device')),
    path        TEXT COLLATE "C" NOT NULL UNIQUE,
    state       TEXT COLLATE "C" NOT NULL CHECK (state IN ('healthy', 'failed', 'draining')),
    added_at_ms BIGINT NOT NULL
  );

  CREATE TABLE objects (
    key               TEXT COLLATE "C" PRIMARY KEY,
    version_id        TEXT COLLATE "C" NOT NULL UNIQUE,
    size_bytes        BIGINT NOT NULL CHECK (size_bytes >= 0),
    policy            TEXT COLLATE "C" NOT NULL,
    fragment_count    INTEGER NOT NULL CHECK (fragment_count >= 1),
    fragments_needed  INTEGER NOT NULL CHECK (fragments_needed >= 1),
    extent_size_bytes BIGINT NOT NULL,
    extent_count      INTEGER NOT NULL CHECK (extent_count >= 0),
    created_at_ms     BIGINT NOT NULL
  );

  CREATE TABLE extents (
    version_id   TEXT COLLATE "C" NOT NULL,
    extent_index INTEGER NOT NULL,
    length_bytes BIGINT NOT NULL,
    checksum     BYTEA NOT NULL,
    PRIMARY KEY (version_id, extent_index)
  );

  CREATE TABLE fragments (
    version_id     TEXT COLLATE "C" NOT NULL,
    extent_index   INTEGER NOT NULL,
    fragment_index INTEGER NOT NULL,
    disk_id        INTEGER NOT NULL REFERENCES disks (id),
    stored_bytes   BIGINT NOT NULL,
    PRIMARY KEY (version_id, extent_index, fragment_index)
  );
  CREATE INDEX fragments_by_disk ON fragments (disk_id, version_id, extent_index);

  CREATE TABLE intents (
    version_id    TEXT COLLATE "C" PRIMARY KEY,
    key           TEXT COLLATE "C" NOT NULL,
    started_at_ms BIGINT NOT NULL
  );

  CREATE TABLE moves (
    version_id     TEXT COLLATE "C" NOT NULL,
    extent_index   INTEGER NOT NULL,
    fragment_index INTEGER NOT NULL,
    source_disk_id INTEGER NOT NULL,
    target_disk_id INTEGER NOT NULL,
    started_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (version_id, extent_index, fragment_index)
  );

  CREATE TABLE garbage (
    version_id   TEXT COLLATE "C" PRIMARY KEY,
    key          TEXT COLLATE "C" NOT NULL,
    queued_at_ms BIGINT NOT NULL
  );

  CREATE TABLE counters (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BIGINT NOT NULL
  );
  `,
  // 1 → 2: block devices store fragments at an offset, which the catalog must remember to read them back.
  `
  ALTER TABLE fragments ADD COLUMN location_bytes BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE moves ADD COLUMN source_location_bytes BIGINT NOT NULL DEFAULT 0;
  `,
  // 2 → 3: what the S3 API needs.
  `
  CREATE TABLE object_metadata (
    version_id    TEXT COLLATE "C" PRIMARY KEY,
    etag          TEXT COLLATE "C" NOT NULL,
    content_type  TEXT COLLATE "C",
    user_metadata TEXT COLLATE "C" NOT NULL DEFAULT '{}'
  );

  CREATE TABLE buckets (
    name          TEXT COLLATE "C" PRIMARY KEY,
    created_at_ms BIGINT NOT NULL
  );

  CREATE TABLE users (
    name              TEXT COLLATE "C" PRIMARY KEY,
    access_key_id     TEXT COLLATE "C" NOT NULL UNIQUE,
    secret_access_key TEXT COLLATE "C" NOT NULL,
    created_at_ms     BIGINT NOT NULL
  );

  CREATE TABLE multipart_uploads (
    upload_id     TEXT COLLATE "C" PRIMARY KEY,
    bucket        TEXT COLLATE "C" NOT NULL,
    key           TEXT COLLATE "C" NOT NULL,
    content_type  TEXT COLLATE "C",
    user_metadata TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    created_at_ms BIGINT NOT NULL
  );

  CREATE TABLE multipart_parts (
    upload_id      TEXT COLLATE "C" NOT NULL,
    part_number    INTEGER NOT NULL,
    part_key       TEXT COLLATE "C" NOT NULL,
    etag           TEXT COLLATE "C" NOT NULL,
    size_bytes     BIGINT NOT NULL,
    uploaded_at_ms BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
  );
  `,
  // 3 → 4: S3's stored headers and a multipart object's part sizes (see sqlite-schema.ts).
  `
  ALTER TABLE object_metadata ADD COLUMN content_headers TEXT COLLATE "C" NOT NULL DEFAULT '{}';
  ALTER TABLE object_metadata ADD COLUMN part_sizes TEXT COLLATE "C";
  ALTER TABLE multipart_uploads ADD COLUMN content_headers TEXT COLLATE "C" NOT NULL DEFAULT '{}';
  `,
];
