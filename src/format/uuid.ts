// UUIDs are strings in JSON and the catalog, and 16 raw bytes inside binary headers.
import { randomUUID } from 'node:crypto';
import { ShardpoolError } from '../errors.js';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const UUID_BYTES = 16;

export function newUuid(): string {
  return randomUUID();
}

export function isUuid(text: unknown): text is string {
  return typeof text === 'string' && UUID_PATTERN.test(text);
}

export function uuidToBytes(uuid: string): Buffer {
  if (!isUuid(uuid)) throw new ShardpoolError('USAGE_INVALID', `not a UUID: ${uuid}`);
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

export function uuidFromBytes(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, UUID_BYTES).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
