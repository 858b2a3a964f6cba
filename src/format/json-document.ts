// The envelope shared by shardpool's JSON files (pool.json, disk.json): a "format" tag naming the kind of file and a
// "formatVersion". Decoding checks both before any other field is looked at.
import { FORMAT_VERSION } from '../constants.js';
import { ShardpoolError } from '../errors.js';

/**
 * Parses `bytes` as a JSON object with the given format tag and a supported version, returning its fields.
 * `invalid(why)` builds the file kind's own corruption error; a newer version is POOL_FORMAT_UNSUPPORTED.
 */
export function decodeJsonDocument(
  bytes: Buffer,
  options: { source: string; formatTag: string; invalid: (why: string) => ShardpoolError; maxFormatVersion?: number },
): Record<string, unknown> & { formatVersion: number } {
  const { source, formatTag, invalid } = options;
  const maxFormatVersion = options.maxFormatVersion ?? FORMAT_VERSION;
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('not JSON');
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw invalid('not an object');
  const fields = document as Record<string, unknown>;
  if (fields.format !== formatTag) throw invalid(`"format" must be "${formatTag}"`);
  if (!Number.isInteger(fields.formatVersion) || (fields.formatVersion as number) < 1) {
    throw invalid('"formatVersion" must be a positive integer');
  }
  if ((fields.formatVersion as number) > maxFormatVersion) {
    throw new ShardpoolError(
      'POOL_FORMAT_UNSUPPORTED',
      `${source} has format version ${String(fields.formatVersion)}; this shardpool reads up to ${maxFormatVersion}: upgrade shardpool`,
      { path: source },
    );
  }
  return fields as Record<string, unknown> & { formatVersion: number };
}
