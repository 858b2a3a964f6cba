// The fragment service's wire protocol (docs/format.md § Fragment service protocol), shared by the service
// (src/serve/fragment-service.ts) and its client (fragment-client.ts): how a body is framed, how requests, answers and
// the lines of a streamed scan are signed with the pool's cluster key, and how the Disk interface's values and errors
// are carried as JSON. Pure functions over buffers and strings; the HTTP is the callers'.
//
// A body (request or answer, except a scan's stream) is one frame:
//   offset size field
//        0    4 jsonLengthBytes (u32, little-endian)
//        4    n JSON (UTF-8)
//      4+n    * payload (fragment data; empty for most calls)
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CHECKSUM_BYTES, CLUSTER_KEY_BYTES, FRAGMENT_SERVICE_CLOCK_SKEW_MAX_MS, KEY_LENGTH_MAX_BYTES } from '../../constants.js';
import { ERROR_CODES, ShardpoolError, type ErrorCode, type ErrorDetails } from '../../errors.js';
import type { FragmentHeader } from '../../format/fragment-header.js';
import { isUuid } from '../../format/uuid.js';
import type { Policy } from '../../redundancy/policy.js';
import type { DiskGeometry, DiskKind, FoundFragment, FragmentAddress, FragmentLocation, FragmentToWrite } from '../disk.js';

/** Every path of the service starts with this; a later incompatible protocol gets /v2. */
export const PROTOCOL_PATH_PREFIX = '/v1/';

export const AUTH_HEADERS = {
  node: 'x-shardpool-node',
  time: 'x-shardpool-time',
  nonce: 'x-shardpool-nonce',
  bodySha256: 'x-shardpool-body-sha256',
  signature: 'x-shardpool-signature',
} as const;

/** The body hash a streamed answer's headers are signed over: its lines are signed one by one. */
export const STREAMED_BODY = 'streamed';

const SIGNATURE_TAG = 'shardpool-fragment-service-v1';
const FRAME_PREFIX_BYTES = 4;
const NODE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NONCE_PATTERN = /^[0-9a-f]{32}$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** Node names go into signed strings and error messages: letters, digits, '.', '_', '-' (at most 63). */
export function isNodeName(name: unknown): name is string {
  return typeof name === 'string' && NODE_NAME_PATTERN.test(name);
}

export function assertClusterKey(key: Buffer): void {
  if (key.length !== CLUSTER_KEY_BYTES) {
    throw new ShardpoolError('CLUSTER_AUTH_FAILED', `a cluster key is ${CLUSTER_KEY_BYTES} bytes, this one ${key.length}`, { reason: 'key-length' });
  }
}

// ---- signatures ----

export interface SignedRequest {
  readonly method: string;
  /** The path with its query, exactly as sent. */
  readonly pathWithQuery: string;
  readonly node: string;
  readonly timeMs: number;
  readonly nonce: string;
  readonly bodySha256: string;
}

export function requestStringToSign(request: SignedRequest): string {
  return [SIGNATURE_TAG, 'request', request.method, request.pathWithQuery, request.node, String(request.timeMs), request.nonce, request.bodySha256].join('\n');
}

/** An answer is bound to its request by the request's nonce, and names the node answering. */
export function responseStringToSign(response: { status: number; nonce: string; node: string; bodySha256: string }): string {
  return [SIGNATURE_TAG, 'response', String(response.status), response.nonce, response.node, response.bodySha256].join('\n');
}

/** One line of a streamed scan: numbered from 0, so a line dropped, repeated or moved is detected. */
export function lineStringToSign(line: { nonce: string; node: string; sequence: number; jsonSha256: string }): string {
  return [SIGNATURE_TAG, 'line', line.nonce, line.node, String(line.sequence), line.jsonSha256].join('\n');
}

export function sign(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('hex');
}

/** Timing-safe: how much of a guess matched never shows in how long the refusal took. */
export function signatureMatches(key: Buffer, text: string, signature: string | undefined): boolean {
  if (typeof signature !== 'string' || !SHA256_PATTERN.test(signature)) return false;
  return timingSafeEqual(createHmac('sha256', key).update(text, 'utf8').digest(), Buffer.from(signature, 'hex'));
}

export function sha256Hex(parts: ReadonlyArray<Uint8Array>): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function isNonce(text: unknown): text is string {
  return typeof text === 'string' && NONCE_PATTERN.test(text);
}

export function isSha256Hex(text: unknown): text is string {
  return typeof text === 'string' && SHA256_PATTERN.test(text);
}

/** Whether a signed time is inside the window around `nowMs`. */
export function timeWithinSkew(timeMs: number, nowMs: number): boolean {
  return Number.isSafeInteger(timeMs) && Math.abs(nowMs - timeMs) <= FRAGMENT_SERVICE_CLOCK_SKEW_MAX_MS;
}

// ---- frames ----

/** The parts of a frame (the payload is not copied). */
export function encodeFrame(json: unknown, payload?: Buffer): Buffer[] {
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const prefix = Buffer.alloc(FRAME_PREFIX_BYTES);
  prefix.writeUInt32LE(text.length, 0);
  return payload === undefined || payload.length === 0 ? [prefix, text] : [prefix, text, payload];
}

/** Splits a frame; `invalid(why)` makes the caller's error (a bad request, or a bad answer). */
export function decodeFrame(body: Buffer, jsonMaxBytes: number, invalid: (why: string) => ShardpoolError): { json: Record<string, unknown>; payload: Buffer } {
  if (body.length < FRAME_PREFIX_BYTES) throw invalid(`a frame of ${body.length} bytes is shorter than its length prefix`);
  const jsonLengthBytes = body.readUInt32LE(0);
  if (jsonLengthBytes > jsonMaxBytes) throw invalid(`its JSON part of ${jsonLengthBytes} bytes exceeds ${jsonMaxBytes}`);
  if (FRAME_PREFIX_BYTES + jsonLengthBytes > body.length) throw invalid('the frame ends inside its JSON part');
  return {
    json: parseJsonObject(body.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + jsonLengthBytes), invalid),
    payload: body.subarray(FRAME_PREFIX_BYTES + jsonLengthBytes),
  };
}

export function parseJsonObject(bytes: Uint8Array, invalid: (why: string) => ShardpoolError): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw invalid('its JSON part is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('its JSON part is not an object');
  return value as Record<string, unknown>;
}

// ---- values of the Disk interface as JSON ----

/** Reads the fields of one JSON object, each checked; a wrong one is `invalid(why)`. */
export class WireFields {
  constructor(
    private readonly value: Record<string, unknown>,
    private readonly invalid: (why: string) => ShardpoolError,
    private readonly where = '',
  ) {}

  static of(value: unknown, invalid: (why: string) => ShardpoolError, where: string): WireFields {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} is not an object`);
    return new WireFields(value as Record<string, unknown>, invalid, `${where}.`);
  }

  has(name: string): boolean {
    return this.value[name] !== undefined && this.value[name] !== null;
  }

  raw(name: string): unknown {
    return this.value[name];
  }

  object(name: string): WireFields {
    return WireFields.of(this.value[name], this.invalid, `${this.where}${name}`);
  }

  integer(name: string, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.value[name];
    if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > max) throw this.wrong(name, `an integer 0..${max}`);
    return value as number;
  }

  boolean(name: string): boolean {
    const value = this.value[name];
    if (typeof value !== 'boolean') throw this.wrong(name, 'a boolean');
    return value;
  }

  string(name: string, maxBytes = 4096): string {
    const value = this.value[name];
    if (typeof value !== 'string' || Buffer.byteLength(value, 'utf8') > maxBytes) throw this.wrong(name, `a string of at most ${maxBytes} bytes`);
    return value;
  }

  oneOf<T extends string>(name: string, values: ReadonlyArray<T>): T {
    const value = this.value[name];
    if (!values.includes(value as T)) throw this.wrong(name, `one of ${values.join(', ')}`);
    return value as T;
  }

  uuid(name: string): string {
    const value = this.value[name];
    if (!isUuid(value)) throw this.wrong(name, 'a UUID');
    return value;
  }

  checksum(name: string): Buffer {
    const value = this.value[name];
    if (typeof value !== 'string' || !new RegExp(`^[0-9a-f]{${2 * CHECKSUM_BYTES}}$`).test(value)) throw this.wrong(name, 'a checksum in hex');
    return Buffer.from(value, 'hex');
  }

  integers(name: string, maxCount: number): number[] {
    const value = this.value[name];
    if (!Array.isArray(value) || value.length > maxCount || !value.every((item) => Number.isSafeInteger(item) && item >= 0)) {
      throw this.wrong(name, `a list of at most ${maxCount} non-negative integers`);
    }
    return value as number[];
  }

  list(name: string, maxCount: number): WireFields[] {
    const value = this.value[name];
    if (!Array.isArray(value) || value.length > maxCount) throw this.wrong(name, `a list of at most ${maxCount}`);
    return value.map((item, index) => WireFields.of(item, this.invalid, `${this.where}${name}[${index}]`));
  }

  private wrong(name: string, what: string): ShardpoolError {
    return this.invalid(`${this.where}${name} is not ${what}`);
  }
}

type Wire<T> = { [K in keyof T]: T[K] extends Buffer ? string : T[K] };

export function policyFromWire(fields: WireFields): Policy {
  const kind = fields.oneOf('kind', ['replica', 'ec'] as const);
  if (kind === 'replica') return { kind, copies: fields.integer('copies', 255) };
  return { kind, dataFragments: fields.integer('dataFragments', 255), parityFragments: fields.integer('parityFragments', 255) };
}

export function addressFromWire(fields: WireFields): FragmentAddress {
  return { versionId: fields.uuid('versionId'), extentIndex: fields.integer('extentIndex'), fragmentIndex: fields.integer('fragmentIndex', 0xffff) };
}

export function locationFromWire(fields: WireFields): FragmentLocation {
  return { ...addressFromWire(fields), locationBytes: fields.integer('locationBytes'), storedBytes: fields.integer('storedBytes') };
}

export function toWire<T extends object>(value: T): Wire<T> {
  const wire: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) wire[name] = Buffer.isBuffer(field) ? field.toString('hex') : field;
  return wire as Wire<T>;
}

export function fragmentToWriteFromWire(fields: WireFields): FragmentToWrite {
  return {
    versionId: fields.uuid('versionId'),
    key: fields.string('key', KEY_LENGTH_MAX_BYTES),
    policy: policyFromWire(fields.object('policy')),
    extentIndex: fields.integer('extentIndex'),
    extentLengthBytes: fields.integer('extentLengthBytes'),
    fragmentIndex: fields.integer('fragmentIndex', 0xffff),
    dataLengthBytes: fields.integer('dataLengthBytes'),
    extentChecksum: fields.checksum('extentChecksum'),
    dataChecksum: fields.checksum('dataChecksum'),
  };
}

export function headerFromWire(fields: WireFields): FragmentHeader {
  return { ...fragmentToWriteFromWire(fields), poolUuid: fields.uuid('poolUuid'), diskUuid: fields.uuid('diskUuid'), locationBytes: fields.integer('locationBytes') };
}

export function foundFromWire(fields: WireFields): FoundFragment {
  return {
    ...locationFromWire(fields),
    key: fields.string('key', KEY_LENGTH_MAX_BYTES),
    policy: policyFromWire(fields.object('policy')),
    extentLengthBytes: fields.integer('extentLengthBytes'),
    extentChecksum: fields.checksum('extentChecksum'),
  };
}

export function geometryFromWire(fields: WireFields): DiskGeometry {
  return {
    logicalSectorBytes: fields.integer('logicalSectorBytes'),
    physicalSectorBytes: fields.integer('physicalSectorBytes'),
    allocationUnitBytes: fields.integer('allocationUnitBytes'),
    directIo: fields.boolean('directIo'),
  };
}

export function diskKindFromWire(fields: WireFields): DiskKind {
  return fields.oneOf('kind', ['directory', 'block-device'] as const);
}

// ---- errors and disk state ----

export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly details: ErrorDetails;
}

export function errorToWire(error: ShardpoolError): WireError {
  return { code: error.code, message: error.message, details: error.details };
}

/** The same ShardpoolError code on this side, so the pool reads around it as for a local disk. */
export function errorFromWire(value: unknown, origin: { node: string; url: string }): ShardpoolError {
  const fields = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const code = typeof fields.code === 'string' && Object.hasOwn(ERROR_CODES, fields.code) ? (fields.code as ErrorCode) : undefined;
  const message = typeof fields.message === 'string' ? fields.message : 'no message';
  if (code === undefined) {
    return new ShardpoolError('NODE_ANSWER_INVALID', `node ${origin.node} (${origin.url}) answered with an error of no known code: ${message}`, { ...origin });
  }
  const details: Record<string, string | number | boolean | null> = {};
  if (typeof fields.details === 'object' && fields.details !== null) {
    for (const [name, detail] of Object.entries(fields.details)) {
      if (['string', 'number', 'boolean'].includes(typeof detail) || detail === null) details[name] = detail as string | number | boolean | null;
    }
  }
  return new ShardpoolError(code, message, { ...details, node: origin.node });
}

/** What every answer about a disk carries, so a remote disk's sync members follow the owner's disk. */
export interface WireDiskState {
  readonly acceptsFragments: boolean;
  readonly latchedFailure: WireError | null;
}

/** The HTTP status an error travels with: refusals of the caller 4xx, the disk's or node's troubles 5xx. */
export function statusOfError(code: ErrorCode): number {
  switch (code) {
    case 'CLUSTER_AUTH_FAILED':
      return 401;
    case 'NODE_REQUEST_INVALID':
      return 400;
    case 'DISK_OFFLINE':
    case 'FRAGMENT_MISSING':
      return 404;
    case 'NOT_ON_OWNING_NODE':
      return 405;
    case 'DISK_FULL':
      return 507;
    case 'NODE_ANSWER_INVALID':
      return 500;
    default:
      // Codes of the disk's own (checksum, identity, I/O): the request was fine; the disk answered with a failure.
      return 422;
  }
}
