// disk.json: the label at the root of a directory disk. It says which pool owns the directory, so a disk can never
// be claimed by two pools, and its `kind` is how directory disks are told apart from block devices (whose label is
// an on-device superblock).
// Layout (docs/format.md § disk.json):
//   { "format": "shardpool-disk", "formatVersion": 1, "kind": "directory", "poolUuid": UUID, "diskUuid": UUID,
//     "createdAt": ISO-8601 }
import { ShardpoolError } from '../errors.js';
import { decodeJsonDocument } from './json-document.js';
import { isUuid } from './uuid.js';

export const DISK_LABEL_FILE_NAME = 'disk.json';
const DISK_FORMAT_TAG = 'shardpool-disk';

export interface DiskLabel {
  readonly formatVersion: number;
  readonly kind: 'directory';
  readonly poolUuid: string;
  readonly diskUuid: string;
  readonly createdAt: string;
}

export function encodeDiskLabel(label: DiskLabel): Buffer {
  const document = {
    format: DISK_FORMAT_TAG,
    formatVersion: label.formatVersion,
    kind: label.kind,
    poolUuid: label.poolUuid,
    diskUuid: label.diskUuid,
    createdAt: label.createdAt,
  };
  return Buffer.from(`${JSON.stringify(document, null, 2)}\n`, 'utf8');
}

export function decodeDiskLabel(bytes: Buffer, source: string): DiskLabel {
  const invalid = (why: string) =>
    new ShardpoolError('DISK_LABEL_INVALID', `${source} is not a valid shardpool disk label: ${why}`, { path: source });
  const fields = decodeJsonDocument(bytes, { source, formatTag: DISK_FORMAT_TAG, invalid });
  if (fields.kind !== 'directory') throw invalid('"kind" must be "directory"');
  if (!isUuid(fields.poolUuid)) throw invalid('"poolUuid" must be a UUID');
  if (!isUuid(fields.diskUuid)) throw invalid('"diskUuid" must be a UUID');
  if (typeof fields.createdAt !== 'string') throw invalid('"createdAt" must be a string');
  return {
    formatVersion: fields.formatVersion,
    kind: 'directory',
    poolUuid: fields.poolUuid,
    diskUuid: fields.diskUuid,
    createdAt: fields.createdAt,
  };
}
