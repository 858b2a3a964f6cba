// pool.json: the pool's identity and defaults, in the pool directory beside the catalog.
// Layout (docs/format.md § pool.json):
//   { "format": "shardpool-pool", "formatVersion": 1, "poolUuid": UUID, "defaultPolicy": "ec:4+2",
//     "extentSizeBytes": 1048576, "createdAt": ISO-8601 }
// Version 2 adds "catalog": { "engine": "postgresql", "url": "postgresql://USER@HOST:PORT/DB" } for a pool whose
// catalog lives in PostgreSQL (never a password: libpq's PGPASSWORD / PGPASSFILE supply it). A pool with the embedded
// SQLite catalog is written as version 1, so the shardpool before this one still opens it.
import {
  EXTENT_SIZE_ALIGNMENT_BYTES,
  EXTENT_SIZE_MAX_BYTES,
  EXTENT_SIZE_MIN_BYTES,
} from '../constants.js';
import { parse as parseConnectionString } from 'pg-connection-string';
import { ShardpoolError } from '../errors.js';
import { formatPolicy, parsePolicy, type Policy } from '../redundancy/policy.js';
import { decodeJsonDocument } from './json-document.js';
import { isUuid } from './uuid.js';

export const POOL_CONFIG_FILE_NAME = 'pool.json';
const POOL_FORMAT_TAG = 'shardpool-pool';

/** Version 2 added `catalog`; version 1 files (no `catalog`: SQLite) still decode. */
export const POOL_CONFIG_FORMAT_VERSION = 2;

/** Where the catalog is: the embedded default (catalog.sqlite in the pool directory) or a PostgreSQL database. */
export type CatalogLocation = { readonly engine: 'sqlite' } | { readonly engine: 'postgresql'; readonly url: string };

export interface PoolConfig {
  readonly formatVersion: number;
  readonly catalog: CatalogLocation;
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
    ...(config.catalog.engine === 'sqlite' ? {} : { catalog: { engine: config.catalog.engine, url: config.catalog.url } }),
  };
  return Buffer.from(`${JSON.stringify(document, null, 2)}\n`, 'utf8');
}

/** Parses and validates pool.json; every failure is POOL_CONFIG_INVALID or POOL_FORMAT_UNSUPPORTED. */
export function decodePoolConfig(bytes: Buffer, source: string): PoolConfig {
  const invalid = (why: string) =>
    new ShardpoolError('POOL_CONFIG_INVALID', `${source} is not a valid pool.json: ${why}`, { path: source });
  const fields = decodeJsonDocument(bytes, { source, formatTag: POOL_FORMAT_TAG, invalid, maxFormatVersion: POOL_CONFIG_FORMAT_VERSION });
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
  let catalog: CatalogLocation = { engine: 'sqlite' };
  if (fields.catalog !== undefined) {
    const given = fields.catalog as { engine?: unknown; url?: unknown } | null;
    if (fields.formatVersion < 2 || typeof given !== 'object' || given === null || given.engine !== 'postgresql' || typeof given.url !== 'string') {
      throw invalid('"catalog" must be {"engine": "postgresql", "url": "postgresql://…"} (format version 2)');
    }
    try {
      catalog = { engine: 'postgresql', url: validatePostgresUrl(given.url) };
    } catch (error) {
      throw invalid(error instanceof Error ? error.message : String(error));
    }
  }
  return {
    formatVersion: fields.formatVersion,
    catalog,
    poolUuid: fields.poolUuid,
    defaultPolicy,
    extentSizeBytes,
    createdAt: fields.createdAt,
  };
}

/** The version a pool.json with this catalog is written as (the oldest that can describe it). */
export function poolConfigVersionFor(catalog: CatalogLocation): number {
  return catalog.engine === 'sqlite' ? 1 : 2;
}

/**
 * A catalog address as pool.json keeps it: postgresql:// (or postgres://) with a host and a database, and no
 * password (PGPASSWORD or PGPASSFILE give it, as for every libpq client). Returns it as given; USAGE_INVALID otherwise.
 */
export function validatePostgresUrl(text: string): string {
  const refuse = (why: string) => new ShardpoolError('USAGE_INVALID', `catalog address ${JSON.stringify(redactPassword(text))} ${why}`);
  if (!/^postgres(ql)?:\/\//.test(text)) throw refuse('must start with postgresql:// (the engines are sqlite, the default, and postgresql)');
  // libpq's URI form: the host may be empty when ?host= names it (a unix socket directory).
  let parsed: ReturnType<typeof parseConnectionString>;
  try {
    parsed = parseConnectionString(text);
  } catch {
    throw refuse('is not a PostgreSQL URI (expected postgresql://USER@HOST:PORT/DATABASE)');
  }
  if (parsed.password !== undefined && parsed.password !== null && parsed.password !== '') {
    throw refuse('holds a password: give it in PGPASSWORD or a PGPASSFILE (~/.pgpass), never in the address pool.json keeps');
  }
  if (!parsed.host) throw refuse('names no host');
  if (!parsed.database) throw refuse('names no database (postgresql://USER@HOST:PORT/DATABASE)');
  return text;
}

/** The address with any password replaced, for messages. */
export function redactPassword(text: string): string {
  return text.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@]*@/, '$1:***@');
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
