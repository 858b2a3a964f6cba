// Every limit of shardpool in one place. Units are named last (`Bytes`, `Ms`, `Count`).
// Relations between limits are asserted at load so that a bad edit fails at start-up, not in the field.
import { assert } from './assert.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** On-disk format version of pool.json, disk.json and fragment files. Bump on any layout change. */
export const FORMAT_VERSION = 1;
/** On-device format of block devices (label, journal, checkpoints, fragment records). 2: the on-device allocator. */
export const DEVICE_FORMAT_VERSION = 2;
/** Catalog schema version; migrations in pool/catalog/schema.ts (one list for both engines) bring older catalogs up to it. */
export const CATALOG_SCHEMA_VERSION = 8;
/**
 * The extent index under which a version's manifest copies are stored (format/version-manifest.ts): past every data
 * extent (a version never has this many), and the largest value a 32-bit INTEGER column holds.
 */
export const MANIFEST_EXTENT_INDEX = 2_147_483_647;
/** Version of the catalog dump format (`shardpool catalog dump`, src/format/catalog-dump.ts). Bump on any change. */
export const CATALOG_DUMP_FORMAT_VERSION = 1;
/**
 * The longest line a catalog dump may hold. The widest row is an object's: a 1 KiB key, or S3 metadata (2 KiB of
 * user metadata), JSON-escaped at most six bytes per byte; 1 MiB leaves room and bounds what a load buffers.
 */
export const CATALOG_DUMP_LINE_MAX_BYTES = 1 * MiB;
/** Rows a dump reads per statement (keyset pagination; no statement stays open while the consumer runs). */
export const CATALOG_DUMP_PAGE_ROWS = 1000;
/** A dump is written in pieces of about this size (lines are gathered, so each write is not one small line). */
export const CATALOG_DUMP_WRITE_PIECE_BYTES = 256 * KiB;

/** Extent: the unit an object is cut into before encoding. */
export const EXTENT_SIZE_DEFAULT_BYTES = 1 * MiB;
export const EXTENT_SIZE_MIN_BYTES = 4 * KiB;
export const EXTENT_SIZE_MAX_BYTES = 64 * MiB;
/** Extent sizes are multiples of this so that every fragment of every policy is sector-friendly. */
export const EXTENT_SIZE_ALIGNMENT_BYTES = 4 * KiB;

/** Keys: opaque UTF-8 data, never paths. S3 allows 1024 bytes; so do we. */
export const KEY_LENGTH_MAX_BYTES = 1024;

/** Redundancy limits. Reed–Solomon over GF(2^8) through @ronomon/reed-solomon allows k ≤ 24, m ≤ 6. */
export const EC_DATA_FRAGMENTS_MAX_COUNT = 24;
export const EC_PARITY_FRAGMENTS_MAX_COUNT = 6;
export const REPLICA_COUNT_MAX = 8;
/** Reed–Solomon shards must be a multiple of 8 bytes (the library works in 64-bit words). */
export const EC_SHARD_ALIGNMENT_BYTES = 8;

/** Streaming: how many extents of one object may be encoded and in flight at once (bounds memory). */
export const PUT_EXTENTS_IN_FLIGHT_MAX = 4;
/**
 * How far a get reads ahead of the consumer: up to 8 extents (at the default 1 MiB extent, 8 reads of 256 KiB in
 * flight per disk of an ec:4+2 pool on average about 5; 4 extents left the disks idle between requests: large gets
 * ran at 0.55 of the raw read rate, 8 at 0.75–0.95 on this machine), but no more than 16 MiB of extents, and at least
 * 2 so the next extent is always on its way.
 */
export const GET_EXTENTS_READ_AHEAD_MAX = 8;
export const GET_READ_AHEAD_BYTES_MAX = 16 * MiB;
export const GET_EXTENTS_READ_AHEAD_MIN = 2;

export function extentsReadAhead(extentSizeBytes: number): number {
  return Math.max(GET_EXTENTS_READ_AHEAD_MIN, Math.min(GET_EXTENTS_READ_AHEAD_MAX, Math.floor(GET_READ_AHEAD_BYTES_MAX / extentSizeBytes)));
}

/**
 * A put records its progress (flush, commit the rows of what it wrote so far under its intent, settle) every this
 * many extents, so it never holds more than about this many allocations pending on one device whatever its size: a
 * device's checkpoint carries at most PENDING_ALLOCATIONS_MAX_COUNT (16,384), shared by every put in flight.
 * SHARDPOOL_PUT_PROGRESS_EXTENTS overrides it (crash tests record progress in small objects).
 */
export const PUT_PROGRESS_EXTENTS = 256;

export function putProgressExtents(): number {
  const override = Number(process.env.SHARDPOOL_PUT_PROGRESS_EXTENTS);
  return Number.isInteger(override) && override >= 1 ? override : PUT_PROGRESS_EXTENTS;
}

/** The cluster key signing fragment service traffic between nodes (src/disk/remote/protocol.ts): 32 random bytes. */
export const CLUSTER_KEY_BYTES = 32;
/** A signed request's time may differ from the receiver's clock by at most this much (either way). */
export const FRAGMENT_SERVICE_CLOCK_SKEW_MAX_MS = 30_000;
/**
 * Nonces a fragment service remembers to refuse replays: each for twice the skew window after it arrived (a request
 * older than the window is refused by its time). A full cache refuses new requests (retryable) rather than forget a
 * nonce still inside the window: about 4,000 requests a second sustained, some 30 MiB.
 */
export const FRAGMENT_SERVICE_NONCES_MAX_COUNT = 262_144;
/** The JSON part of any fragment service request or answer (settle batches, scan hints, node info). */
export const FRAGMENT_SERVICE_JSON_MAX_BYTES = 16 * MiB;
/** The JSON part of a write (a fragment's header fields: a key of at most 1 KiB escaped, checksums, numbers). */
export const FRAGMENT_SERVICE_WRITE_JSON_MAX_BYTES = 64 * KiB;
/** A fragment's data is at most one extent (a replica holds the whole extent; a shard of ec:K+M less). */
export const FRAGMENT_DATA_MAX_BYTES = EXTENT_SIZE_MAX_BYTES;
/** One line of a streamed scan (a found fragment: its key, JSON-escaped, and fixed fields) with its signature. */
export const FRAGMENT_SERVICE_SCAN_LINE_MAX_BYTES = 64 * KiB;
/** Expected locations a remote scan passes on as its read-ahead hint (each at most 17 bytes of JSON: under 16 MiB). */
export const FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT = 500_000;
/** Fragments one settle request carries (a put settles at most a few hundred at a time; larger batches are split). */
export const FRAGMENT_SERVICE_SETTLE_BATCH_MAX_COUNT = 10_000;
/** Connections a node keeps open to each other node (keep-alive; more requests queue for a socket). */
export const FRAGMENT_CLIENT_SOCKETS_PER_NODE_MAX = 16;
/** A node that does not accept a connection within this is unreachable (a refused connection fails at once). */
export const FRAGMENT_CLIENT_CONNECT_TIMEOUT_MS = 3_000;
/** A request whose connection stays silent this long (no byte either way) is abandoned: the node is unreachable. */
export const FRAGMENT_CLIENT_IDLE_TIMEOUT_MS = 60_000;

/** A mutating command waits this long for the pool lock before failing with POOL_BUSY. */
export const POOL_LOCK_WAIT_DEFAULT_MS = 30_000;
export const POOL_LOCK_POLL_INTERVAL_MS = 50;

/** Fragment files: the fixed header part; the key follows it. */
export const FRAGMENT_HEADER_FIXED_BYTES = 160;
/** Checksums are xxh3-128. */
export const CHECKSUM_BYTES = 16;

assert(EXTENT_SIZE_MIN_BYTES % EXTENT_SIZE_ALIGNMENT_BYTES === 0, 'minimum extent size is aligned');
assert(EXTENT_SIZE_MAX_BYTES % EXTENT_SIZE_ALIGNMENT_BYTES === 0, 'maximum extent size is aligned');
assert(EXTENT_SIZE_DEFAULT_BYTES >= EXTENT_SIZE_MIN_BYTES, 'default extent size within limits');
assert(EXTENT_SIZE_DEFAULT_BYTES <= EXTENT_SIZE_MAX_BYTES, 'default extent size within limits');
assert(EXTENT_SIZE_ALIGNMENT_BYTES % EC_SHARD_ALIGNMENT_BYTES === 0, 'extent alignment implies shard alignment');
// A put holds at most (in flight) × (extent + parity) bytes; keep the worst case well under 1 GiB.
assert(PUT_EXTENTS_IN_FLIGHT_MAX * EXTENT_SIZE_MAX_BYTES * 2 < 1 * GiB, 'put memory is bounded');
assert(extentsReadAhead(EXTENT_SIZE_MAX_BYTES) * EXTENT_SIZE_MAX_BYTES * 2 < 1 * GiB, 'get memory is bounded');
assert(FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT * 17 < FRAGMENT_SERVICE_JSON_MAX_BYTES, 'a scan hint fits a request');
assert(FRAGMENT_SERVICE_SETTLE_BATCH_MAX_COUNT * 200 < FRAGMENT_SERVICE_JSON_MAX_BYTES, 'a settle batch fits a request');
assert(extentsReadAhead(EXTENT_SIZE_MIN_BYTES) * EXTENT_SIZE_MIN_BYTES <= GET_READ_AHEAD_BYTES_MAX, 'read-ahead is bounded');
