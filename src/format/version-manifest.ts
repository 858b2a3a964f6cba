// The version manifest: the commit record a put (or a removal) leaves on the disks themselves, so the disks describe
// the pool without its catalog (`shardpool import`). It is stored as the data of fragment records at the reserved
// extent index MANIFEST_EXTENT_INDEX of the version, one copy per disk on as many distinct disks as the version's
// policy can lose plus one, written in the same flush round as the version's fragments and before the catalog
// commit. Its fragment header's data checksum covers it like any fragment's data.
//
// A manifest proves a version committed only together with its fragments: an import counts a version only when
// every extent the manifest names has enough fragments on the disks whose extent checksum is the one named here,
// so a put torn by a crash (some fragments or copies flushed, others not) never looks committed.
//
// Layout: a JSON document (docs/format.md § Version manifest), UTF-8, one line:
//   {"format":"shardpool-version-manifest","formatVersion":1,"kind":"version"|"removal","sequence":N,
//    "key":"…","versionId":"…","createdAtMs":N,
//    version only: "sizeBytes":N,"policy":"ec:4+2","extentSizeBytes":N,"extentChecksums":"<32 hex per extent>",
//                  "diskUuids":["…"],"metadata":{"etag":"…",…}|null}
// `sequence` orders the versions and removals of one key (the catalog hands them out, increasing): the highest
// committed one is the key's state. `diskUuids` are the disks the version's fragments were written to, so an import
// that lacks fragments can tell a torn write (every such disk present) from a missing disk.
import { CHECKSUM_BYTES, KEY_LENGTH_MAX_BYTES } from '../constants.js';
import { ShardpoolError } from '../errors.js';
import { decodeJsonDocument } from './json-document.js';

export const VERSION_MANIFEST_FORMAT = 'shardpool-version-manifest';
export const VERSION_MANIFEST_FORMAT_VERSION = 1;

/**
 * What S3 clients see of the version beside its bytes (ETag, content type, user metadata, ...), as the pool layer
 * keeps it: a JSON object with at least a string "etag". Kept as given, so fields added later round-trip.
 */
export type ManifestMetadata = Readonly<Record<string, unknown>> & { readonly etag: string };

interface ManifestCommon {
  readonly key: string;
  readonly versionId: string;
  readonly sequence: number;
  readonly createdAtMs: number;
}

export interface VersionManifest extends ManifestCommon {
  readonly kind: 'version';
  readonly sizeBytes: number;
  readonly policy: string;
  readonly extentSizeBytes: number;
  /** One per extent, in order. */
  readonly extentChecksums: ReadonlyArray<Buffer>;
  readonly diskUuids: ReadonlyArray<string>;
  readonly metadata: ManifestMetadata | undefined;
}

export interface RemovalManifest extends ManifestCommon {
  readonly kind: 'removal';
}

export type Manifest = VersionManifest | RemovalManifest;

export function encodeManifest(manifest: Manifest): Buffer {
  const common = {
    format: VERSION_MANIFEST_FORMAT,
    formatVersion: VERSION_MANIFEST_FORMAT_VERSION,
    kind: manifest.kind,
    sequence: manifest.sequence,
    key: manifest.key,
    versionId: manifest.versionId,
    createdAtMs: manifest.createdAtMs,
  };
  if (manifest.kind === 'removal') return Buffer.from(JSON.stringify(common), 'utf8');
  return Buffer.from(
    JSON.stringify({
      ...common,
      sizeBytes: manifest.sizeBytes,
      policy: manifest.policy,
      extentSizeBytes: manifest.extentSizeBytes,
      extentChecksums: Buffer.concat(manifest.extentChecksums as Buffer[]).toString('hex'),
      diskUuids: manifest.diskUuids,
      metadata: manifest.metadata ?? null,
    }),
    'utf8',
  );
}

/** Decodes and validates a manifest; anything malformed is FRAGMENT_HEADER_INVALID naming `source`. */
export function decodeManifest(bytes: Buffer, source: string): Manifest {
  const invalid = (why: string) =>
    new ShardpoolError('FRAGMENT_HEADER_INVALID', `version manifest in ${source} is invalid: ${why}`, { source });
  const fields = decodeJsonDocument(bytes, {
    source,
    formatTag: VERSION_MANIFEST_FORMAT,
    invalid,
    maxFormatVersion: VERSION_MANIFEST_FORMAT_VERSION,
  });
  const count = (name: string): number => {
    const value = fields[name];
    if (!Number.isSafeInteger(value) || (value as number) < 0) throw invalid(`"${name}" must be a non-negative integer`);
    return value as number;
  };
  const string = (name: string): string => {
    const value = fields[name];
    if (typeof value !== 'string' || value === '') throw invalid(`"${name}" must be a non-empty string`);
    return value;
  };
  const key = string('key');
  if (Buffer.byteLength(key, 'utf8') > KEY_LENGTH_MAX_BYTES) throw invalid('"key" is too long');
  const common = { key, versionId: string('versionId'), sequence: count('sequence'), createdAtMs: count('createdAtMs') };
  if (fields.kind === 'removal') return { kind: 'removal', ...common };
  if (fields.kind !== 'version') throw invalid('"kind" must be "version" or "removal"');
  const hex = fields.extentChecksums;
  if (typeof hex !== 'string') throw invalid('"extentChecksums" must be a string');
  if (!/^([0-9a-f]{2})*$/.test(hex) || hex.length % (2 * CHECKSUM_BYTES) !== 0) throw invalid('"extentChecksums" must be hex, 16 bytes per extent');
  const packed = Buffer.from(hex, 'hex');
  const extentChecksums: Buffer[] = [];
  for (let offset = 0; offset < packed.length; offset += CHECKSUM_BYTES) extentChecksums.push(packed.subarray(offset, offset + CHECKSUM_BYTES));
  const sizeBytes = count('sizeBytes');
  const extentSizeBytes = count('extentSizeBytes');
  if (extentSizeBytes === 0 || Math.ceil(sizeBytes / extentSizeBytes) !== extentChecksums.length) {
    throw invalid(`${extentChecksums.length} extent checksums do not fit ${sizeBytes} bytes in extents of ${extentSizeBytes}`);
  }
  const diskUuids = fields.diskUuids;
  if (!Array.isArray(diskUuids) || !diskUuids.every((uuid) => typeof uuid === 'string')) throw invalid('"diskUuids" must be a list of strings');
  return {
    kind: 'version',
    ...common,
    sizeBytes,
    policy: string('policy'),
    extentSizeBytes,
    extentChecksums,
    diskUuids: diskUuids as string[],
    metadata: decodeMetadata(fields.metadata, invalid),
  };
}

function decodeMetadata(value: unknown, invalid: (why: string) => ShardpoolError): ManifestMetadata | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid('"metadata" must be an object or null');
  if (typeof (value as Record<string, unknown>).etag !== 'string') throw invalid('"metadata.etag" must be a string');
  return value as ManifestMetadata;
}

/** The length of extent `index` of a version of `sizeBytes` cut into extents of `extentSizeBytes`. */
export function manifestExtentLength(manifest: VersionManifest, index: number): number {
  return Math.min(manifest.extentSizeBytes, manifest.sizeBytes - index * manifest.extentSizeBytes);
}
