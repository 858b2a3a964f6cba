// pool.json: the pool's identity and defaults, in the pool directory beside the catalog.
// Layout (docs/format.md § pool.json):
//   { "format": "shardpool-pool", "formatVersion": 1, "poolUuid": UUID, "defaultPolicy": "ec:4+2",
//     "extentSizeBytes": 1048576, "createdAt": ISO-8601 }
import {
  EXTENT_SIZE_ALIGNMENT_BYTES,
  EXTENT_SIZE_MAX_BYTES,
  EXTENT_SIZE_MIN_BYTES,
} from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { formatPolicy, parsePolicy, type Policy } from '../redundancy/policy.js';
import { decodeJsonDocument } from './json-document.js';
import { isUuid } from './uuid.js';

export const POOL_CONFIG_FILE_NAME = 'pool.json';
const POOL_FORMAT_TAG = 'shardpool-pool';

export interface PoolConfig {
  readonly formatVersion: number;
  readonly poolUuid: string;
  readonly defaultPolicy: Policy;
  readonly extentSizeBytes: number;
  readonly createdAt: string;
}

export function encodePoolConfig(config: PoolConfig): Buffer {
  const document = {
    format: POOL_FORMAT_TAG,
    formatVersion: config.formatVersion,
    poolUuid: config.poolUuid,
    defaultPolicy: formatPolicy(config.defaultPolicy),
    extentSizeBytes: config.extentSizeBytes,
    createdAt: config.createdAt,
  };
  return Buffer.from(`${JSON.stringify(document, null, 2)}\n`, 'utf8');
}

/** Parses and validates pool.json; every failure is POOL_CONFIG_INVALID or POOL_FORMAT_UNSUPPORTED. */
export function decodePoolConfig(bytes: Buffer, source: string): PoolConfig {
  const invalid = (why: string) =>
    new ShardpoolError('POOL_CONFIG_INVALID', `${source} is not a valid pool.json: ${why}`, { path: source });
  const fields = decodeJsonDocument(bytes, { source, formatTag: POOL_FORMAT_TAG, invalid });
  if (!isUuid(fields.poolUuid)) throw invalid('"poolUuid" must be a UUID');
  if (typeof fields.defaultPolicy !== 'string') throw invalid('"defaultPolicy" must be a string');
  const extentSizeBytes = fields.extentSizeBytes;
  if (typeof extentSizeBytes !== 'number') throw invalid('"extentSizeBytes" must be a number');
  let defaultPolicy: Policy;
  try {
    // The same rules as on the command line, but a bad value here is a damaged pool.json, reported as such.
    defaultPolicy = parsePolicy(fields.defaultPolicy);
    validateExtentSize(extentSizeBytes);
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : String(error));
  }
  if (typeof fields.createdAt !== 'string') throw invalid('"createdAt" must be a string');
  return {
    formatVersion: fields.formatVersion,
    poolUuid: fields.poolUuid,
    defaultPolicy,
    extentSizeBytes,
    createdAt: fields.createdAt,
  };
}

export function validateExtentSize(extentSizeBytes: number): void {
  if (
    !Number.isInteger(extentSizeBytes) ||
    extentSizeBytes < EXTENT_SIZE_MIN_BYTES ||
    extentSizeBytes > EXTENT_SIZE_MAX_BYTES ||
    extentSizeBytes % EXTENT_SIZE_ALIGNMENT_BYTES !== 0
  ) {
    throw new ShardpoolError(
      'EXTENT_SIZE_INVALID',
      `extent size ${extentSizeBytes} bytes is invalid: it must be a multiple of 4 KiB from 4 KiB to 64 MiB`,
      { extentSizeBytes },
    );
  }
}
