// Operating errors: every failure a user or a disk can cause is a ShardpoolError with a stable code.
// Codes never change once released (scripts match on them); messages may. Each code has a row in
// docs/errors.md with its cause and fix, and test/errors.test.ts keeps the two lists identical.

/** The catalog of codes, each with a one-line meaning. Add a line here and a row in docs/errors.md together. */
export const ERROR_CODES = {
  // command line
  USAGE_INVALID: 'the command line is malformed (unknown flag, missing argument, bad value)',
  INPUT_NOT_FOUND: 'an input file named on the command line cannot be read',
  OUTPUT_FAILED: 'the output file or stream could not be written',
  // pool
  POOL_NOT_SPECIFIED: 'no pool directory was given (--pool or SHARDPOOL_POOL)',
  POOL_NOT_FOUND: 'the pool directory holds no pool.json',
  POOL_ALREADY_EXISTS: 'init was pointed at a directory that already holds a pool or other files',
  POOL_CONFIG_INVALID: 'pool.json is unreadable, corrupt or fails validation',
  POOL_FORMAT_UNSUPPORTED: 'pool.json or the catalog was written by a newer shardpool',
  POOL_BUSY: 'another process holds the pool lock and did not release it in time',
  CATALOG_FAILED: 'the catalog database could not be opened or written',
  CATALOG_IO_FAILED: 'the catalog database failed while in use: an I/O error, a full or vanished filesystem, a damaged or locked file',
  CATALOG_UNREACHABLE: 'the PostgreSQL server holding the catalog cannot be reached: down, restarting, refusing connections, or the connection was lost',
  CATALOG_NOT_EMPTY: 'catalog load was pointed at a pool whose catalog already holds rows (disks, objects, S3 tables)',
  CATALOG_DUMP_INVALID: 'a line of a catalog dump is malformed, out of order, or disagrees with its trailer',
  CATALOG_DUMP_TRUNCATED: 'a catalog dump ends before its trailer line: it was cut short',
  CATALOG_DUMP_UNSUPPORTED: 'a catalog dump has a format version or catalog schema version this shardpool cannot load',
  CATALOG_DUMP_OTHER_POOL: "a catalog dump was taken of another pool: its pool uuid is not the one in pool.json",
  // daemon
  SERVE_FAILED: 'shardpool serve could not start: an address in use, a bad --listen value, a socket path too long',
  DAEMON_UNREACHABLE: "the pool is served by shardpool serve but its command socket cannot be used",
  USER_ALREADY_EXISTS: 'user add was given a name that already has an access key',
  USER_NOT_FOUND: 'user rm, allow or deny was given a name with no access key',
  BUCKET_NOT_FOUND: 'user allow or deny was given a bucket the pool does not have',
  // server-side encryption (S3 SSE)
  SSE_KEY_FILE_INVALID: 'the pool key file sse-keys.json is unreadable, corrupt or fails validation',
  SSE_KEY_FILE_EXPOSED: 'the pool key file sse-keys.json may be read by others than its owner (its mode is not 0600)',
  SSE_KEY_UNKNOWN: "an SSE-S3 object's data key was wrapped with a pool key the key file does not hold",
  SSE_RECORD_INVALID: "an encrypted object's encryption record (catalog or manifest metadata) is malformed",
  OBJECT_ENCRYPTED: 'get was asked for an object the S3 API encrypted at rest: only S3 decrypts it',
  SSE_CIPHERTEXT_INVALID: "an encrypted object's stored bytes fail authentication: tampered, or not what was written",
  // disks
  DISK_NOT_FOUND: 'the named disk is not part of the pool, or its path does not exist',
  DISK_NOT_A_DIRECTORY: 'a disk path that should be a directory is something else',
  DISK_ALREADY_IN_POOL: 'the disk is already a member of this pool',
  DISK_BELONGS_TO_OTHER_POOL: "the disk carries another pool's label",
  DISK_NOT_EMPTY: 'the directory holds files that are not shardpool data',
  DISK_LABEL_INVALID: 'disk.json is unreadable, corrupt or fails validation',
  DISK_OFFLINE: 'the disk cannot be reached or its label does not match the catalog',
  DISK_ONLINE: 'disk relocate was given a disk that is online at its recorded path',
  IMPORT_POOLS_MIXED: 'import was given disks of more than one pool, or one disk twice (or a copy of it)',
  DISK_IO_FAILED: 'a read, write or flush on the disk failed',
  DISK_FULL: 'the disk has no space left for a fragment',
  DEVICE_ALLOCATIONS_LIMIT: 'a block device holds as many uncommitted allocations as its checkpoint can carry',
  DRAIN_INCOMPLETE: 'remove-disk could not move every fragment off the disk',
  DISK_NOT_FAILED: 'rebuild was asked for a disk that is not marked failed',
  NOT_A_DEVICE: 'trim or defrag was asked for a disk that is not a block device',
  // block devices
  DEVICE_FLAG_REQUIRED: 'a block device or image file was given to add-disk without --device',
  DEVICE_FLAG_MISUSED: '--device was given for a directory',
  DEVICE_HAS_SIGNATURE: 'the device holds a filesystem, partition table, RAID/LVM/LUKS member or another pool\'s label',
  DEVICE_IN_USE: 'the device is mounted, held, an active swap, or a partition of a disk in use',
  DEVICE_PERMISSION_DENIED: 'the device cannot be opened for writing by this user',
  DEVICE_TOO_SMALL: 'the device is too small to hold a pool disk',
  DEVICE_LABEL_INVALID: 'every copy of the on-device label is damaged',
  DEVICE_METADATA_INVALID: "the device's allocator checkpoint is damaged, so its allocation state cannot be trusted",
  JOURNAL_RECORD_INVALID: 'a metadata journal record is torn, corrupt or of an unknown version (replay stops there)',
  CONFIRMATION_REQUIRED: 'formatting a device needs the operator to confirm (type the path back, or --yes)',
  // cluster: the fragment service between nodes
  CLUSTER_AUTH_FAILED: "a fragment service request or answer is not signed with the pool's cluster key, is too old or too new, or replays an earlier one",
  NODE_UNREACHABLE: "another node's fragment service cannot be reached: the connection was refused, reset or timed out",
  NODE_REQUEST_INVALID: 'a fragment service request is malformed or larger than the service accepts',
  NODE_ANSWER_INVALID: 'a node answered a fragment service request outside the protocol, or failed with an internal error',
  NOT_ON_OWNING_NODE: "an operation that only a disk's own node may run was asked of a remote disk",
  // redundancy and placement
  POLICY_INVALID: 'a redundancy policy string is not replica:N or ec:K+M within the limits',
  EXTENT_SIZE_INVALID: 'the extent size is out of range or not a multiple of 4 KiB',
  POLICY_NEEDS_MORE_DISKS: 'the policy needs more healthy disks than the pool has',
  POLICY_NEEDS_MORE_DOMAINS: 'the policy cannot be placed so that losing one failure domain (node) loses no more fragments of an extent than it can spare',
  // objects and fragments
  KEY_INVALID: 'the key is empty, too long, not UTF-8, or holds control characters',
  OBJECT_NOT_FOUND: 'no object has that key',
  OBJECT_CHANGED_DURING_READ: 'the object was overwritten or removed while it was being read',
  EXTENT_UNRECOVERABLE: 'fewer fragments of an extent survive than the policy needs to rebuild it',
  FRAGMENT_MISSING: 'a fragment the catalog names is not on its disk',
  FRAGMENT_HEADER_INVALID: 'a fragment header is truncated, corrupt or of an unknown version',
  FRAGMENT_CHECKSUM_MISMATCH: "a fragment's data does not match its checksum",
  FRAGMENT_IDENTITY_MISMATCH: 'a fragment header names another pool, disk, object or position',
  EXTENT_CHECKSUM_MISMATCH: 'an extent rebuilt from fragments does not match its recorded checksum',
  // native I/O layer
  NATIVE_ADDON_MISSING: 'the native I/O addon is not built (run npm ci or npm rebuild)',
  DEVICE_BUSY: 'the device or file is held exclusively by another process',
  DIRECT_IO_UNAVAILABLE: 'O_DIRECT was required (--direct-io always) but the device refuses it',
  IO_MISALIGNED: 'an I/O request was not aligned to the sector size and was refused before reaching the device',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorDetails = Readonly<Record<string, string | number | boolean | null | undefined>>;

export class ShardpoolError extends Error {
  override readonly name = 'ShardpoolError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

export function isShardpoolError(error: unknown, code?: ErrorCode): error is ShardpoolError {
  return error instanceof ShardpoolError && (code === undefined || error.code === code);
}

/** Node system errors carry an errno code string; this reads it without trusting the shape. */
export function systemErrorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
