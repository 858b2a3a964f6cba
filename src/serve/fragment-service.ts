// The fragment service: this node's local disks, offered to the other nodes of the pool over HTTP (internal; never
// for S3 clients). Each call is one method of the Disk interface (src/disk/disk.ts) on one disk, run on the disk
// object the daemon's pool holds, so the owner's own rules (group commit, latching, pending allocations) apply
// unchanged. The client is src/disk/remote/; the protocol (framing, signatures) src/disk/remote/protocol.ts and
// docs/format.md § Fragment service protocol.
//
//   GET  /v1/node                                  pool uuid, node name, every disk served with its state
//   POST /v1/disks/<diskUuid>/<call>               call: write read verify delete delete-version flush space
//                                                        scan holds-record settle
//
// Every request is signed with the pool's cluster key and refused unless the signature, the body's hash, the time
// (±30 s) and a fresh nonce all check out; every answer is signed over its status, the request's nonce, this node's
// name and its body's hash (a scan's answer line by line), so nothing but a holder of the key can answer as a node.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  FRAGMENT_DATA_MAX_BYTES,
  FRAGMENT_SERVICE_CLOCK_SKEW_MAX_MS,
  FRAGMENT_SERVICE_JSON_MAX_BYTES,
  FRAGMENT_SERVICE_NONCES_MAX_COUNT,
  FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT,
  FRAGMENT_SERVICE_SETTLE_BATCH_MAX_COUNT,
  FRAGMENT_SERVICE_WRITE_JSON_MAX_BYTES,
} from '../constants.js';
import type { Disk } from '../disk/disk.js';
import {
  AUTH_HEADERS,
  PROTOCOL_PATH_PREFIX,
  STREAMED_BODY,
  WireFields,
  addressFromWire,
  assertClusterKey,
  decodeFrame,
  encodeFrame,
  errorToWire,
  foundFromWire,
  fragmentToWriteFromWire,
  isNodeName,
  isNonce,
  isSha256Hex,
  lineStringToSign,
  locationFromWire,
  requestStringToSign,
  responseStringToSign,
  sha256Hex,
  sign,
  signatureMatches,
  statusOfError,
  timeWithinSkew,
  toWire,
  type WireDiskState,
} from '../disk/remote/protocol.js';
import { ShardpoolError, isShardpoolError } from '../errors.js';
import { isUuid } from '../format/uuid.js';
import { formatListenAddress } from './listen-address.js';

export interface FragmentServiceOptions {
  readonly poolUuid: string;
  /** This node's name: every answer is signed with it, and a client refuses an answer from another node. */
  readonly nodeName: string;
  readonly clusterKey: Buffer;
  /** The local disk with this uuid, if this node serves it now (an offline or failed disk: undefined). */
  diskByUuid(diskUuid: string): Disk | undefined;
  /** Every local disk served now (for node info). */
  listDisks(): Iterable<Disk>;
  /** The clock requests are checked against (tests move it). */
  readonly nowMs?: () => number;
}

export interface FragmentServiceListener {
  /** The base URL other nodes call, e.g. http://127.0.0.1:7070. */
  readonly url: string;
  close(): Promise<void>;
}

export type FragmentRequestHandler = (request: IncomingMessage, response: ServerResponse) => void;

/** Whether a request is the fragment service's (a daemon mounting the handler on its own listener routes by this). */
export function isFragmentServiceRequest(request: IncomingMessage): boolean {
  return (request.url ?? '').startsWith(PROTOCOL_PATH_PREFIX);
}

/** A request handler serving this node's disks; mount it on any listener (it answers only its own paths). */
export function createFragmentHandler(options: FragmentServiceOptions): FragmentRequestHandler {
  assertClusterKey(options.clusterKey);
  if (!isNodeName(options.nodeName)) throw new ShardpoolError('USAGE_INVALID', `not a node name: ${JSON.stringify(options.nodeName)}`);
  const service = new FragmentService(options);
  return (request, response) => {
    void service.serve(request, response);
  };
}

/** Listens on host:port (https with `tls`) and serves the fragment service there alone. */
export async function startFragmentService(
  options: FragmentServiceOptions & { host: string; port: number; tls?: { cert: string | Buffer; key: string | Buffer } },
): Promise<FragmentServiceListener> {
  const handler = createFragmentHandler(options);
  const server: Server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createHttpServer(handler);
  // Longer than a client keeps an idle socket (FragmentClient: 30 s), so a client never reuses one the server is closing.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(new ShardpoolError('SERVE_FAILED', `the fragment service cannot listen on ${formatListenAddress(options)}: ${error.code ?? error.message}`, {}, { cause: error }));
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `${options.tls ? 'https' : 'http'}://${formatListenAddress({ host: address.address, port: address.port })}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    // Once, whoever asks: a second server.close() would wait for a 'close' event that never comes again.
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

type Call = 'write' | 'read' | 'verify' | 'delete' | 'delete-version' | 'flush' | 'space' | 'scan' | 'holds-record' | 'settle';

const CALLS: ReadonlyArray<Call> = ['write', 'read', 'verify', 'delete', 'delete-version', 'flush', 'space', 'scan', 'holds-record', 'settle'];

interface Route {
  readonly call: Call | 'node';
  readonly diskUuid: string | undefined;
  readonly jsonMaxBytes: number;
  readonly bodyMaxBytes: number;
}

interface Answer {
  readonly result: unknown;
  readonly payload?: Buffer;
}

const FRAME_OVERHEAD_BYTES = 4;

class FragmentService {
  private readonly nonces: NonceWindow;
  private readonly nowMs: () => number;

  constructor(private readonly options: FragmentServiceOptions) {
    this.nowMs = options.nowMs ?? Date.now;
    this.nonces = new NonceWindow(FRAGMENT_SERVICE_NONCES_MAX_COUNT, 2 * FRAGMENT_SERVICE_CLOCK_SKEW_MAX_MS);
  }

  async serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const nonceHeader = request.headers[AUTH_HEADERS.nonce];
    const nonce = isNonce(nonceHeader) ? nonceHeader : '';
    let bodyRead = false;
    let disk: Disk | undefined;
    let bodyMaxBytes = 0;
    try {
      const route = routeOf(request);
      bodyMaxBytes = route.bodyMaxBytes;
      const claimed = this.authenticate(request, route);
      const body = await readBody(request, route.bodyMaxBytes);
      bodyRead = true;
      if (sha256Hex([body]) !== claimed.bodySha256) throw authFailed('the body does not match the hash it was signed with', 'body-hash');
      if (!this.nonces.admit(claimed.nonce, this.nowMs())) throw authFailed('the request replays a nonce already used', 'replayed');
      if (route.call === 'node') {
        this.reply(response, 200, nonce, { result: this.nodeInfo() });
        return;
      }
      disk = this.disk(route.diskUuid as string);
      const frame = decodeFrame(body, route.jsonMaxBytes, invalidRequest);
      const fields = WireFields.of(frame.json, invalidRequest, 'request');
      if (route.call === 'scan') {
        await this.streamScan(response, nonce, disk, fields);
        return;
      }
      const answer = await this.run(route.call, disk, fields, frame.payload);
      this.reply(response, 200, nonce, { result: answer.result, state: stateOf(disk) }, answer.payload);
    } catch (error) {
      const refusal = isShardpoolError(error)
        ? error
        : new ShardpoolError('NODE_ANSWER_INVALID', `node ${this.options.nodeName} failed internally: ${error instanceof Error ? error.message : String(error)}`);
      if (response.headersSent) {
        response.destroy();
        return;
      }
      const status = refusal.details.reason === 'too-large' ? 413 : statusOfError(refusal.code);
      // A refused body is not kept: one within its limit is read and dropped, one beyond it is cut off once the
      // answer is out (never read without bound); either way the connection closes after the answer.
      if (!bodyRead) response.setHeader('connection', 'close');
      this.reply(response, status, nonce, { error: errorToWire(refusal), state: disk ? stateOf(disk) : null });
      if (bodyRead) return;
      if (status === 413) response.once('finish', () => request.destroy());
      else discardBody(request, bodyMaxBytes);
    }
  }

  /** Checks the signed headers before any of the body is read; the body's hash is checked once it is. */
  private authenticate(request: IncomingMessage, route: Route): { nonce: string; bodySha256: string } {
    const header = (name: string) => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    const node = header(AUTH_HEADERS.node);
    const timeText = header(AUTH_HEADERS.time);
    const nonce = header(AUTH_HEADERS.nonce);
    const bodySha256 = header(AUTH_HEADERS.bodySha256);
    const signature = header(AUTH_HEADERS.signature);
    if (!isNodeName(node) || timeText === undefined || !/^\d{1,16}$/.test(timeText) || !isNonce(nonce) || !isSha256Hex(bodySha256)) {
      throw authFailed('the request is not signed (its signature headers are missing or malformed)', 'unsigned');
    }
    const declaredBytes = Number(request.headers['content-length'] ?? 0);
    if (declaredBytes > route.bodyMaxBytes) throw tooLarge(declaredBytes, route.bodyMaxBytes);
    const text = requestStringToSign({ method: request.method ?? '', pathWithQuery: request.url ?? '', node, timeMs: Number(timeText), nonce, bodySha256 });
    if (!signatureMatches(this.options.clusterKey, text, signature)) {
      throw authFailed(`the request from "${node}" is not signed with this pool's cluster key`, 'signature');
    }
    const skewMs = this.nowMs() - Number(timeText);
    if (!timeWithinSkew(Number(timeText), this.nowMs())) {
      throw authFailed(`the request's time is ${Math.round(skewMs / 1000)} s off this node's clock (at most ${FRAGMENT_SERVICE_CLOCK_SKEW_MAX_MS / 1000} s allowed): check both clocks (NTP)`, 'skew');
    }
    return { nonce, bodySha256 };
  }

  private disk(diskUuid: string): Disk {
    const disk = this.options.diskByUuid(diskUuid);
    if (!disk) {
      throw new ShardpoolError('DISK_OFFLINE', `node ${this.options.nodeName} does not serve disk ${diskUuid} now (not its disk, or offline there)`, {
        diskUuid,
        node: this.options.nodeName,
      });
    }
    return disk;
  }

  private nodeInfo(): unknown {
    return {
      poolUuid: this.options.poolUuid,
      node: this.options.nodeName,
      disks: [...this.options.listDisks()].map((disk) => ({
        diskUuid: disk.diskUuid,
        kind: disk.kind,
        path: disk.path,
        geometry: disk.geometry ?? null,
        ...stateOf(disk),
      })),
    };
  }

  private async run(call: Exclude<Call, 'scan'>, disk: Disk, fields: WireFields, payload: Buffer): Promise<Answer> {
    switch (call) {
      case 'write': {
        const fragment = fragmentToWriteFromWire(fields.object('fragment'));
        if (payload.length !== fragment.dataLengthBytes) {
          throw invalidRequest(`the write carries ${payload.length} data bytes, its fragment says ${fragment.dataLengthBytes}`);
        }
        const { locationBytes } = await disk.writeFragment(fragment, payload);
        return { result: { locationBytes } };
      }
      case 'read': {
        const { header, data } = await disk.readFragment(locationFromWire(fields.object('fragment')));
        return { result: { header: toWire(header) }, payload: data };
      }
      case 'verify':
        return { result: { header: toWire(await disk.verifyFragment(locationFromWire(fields.object('fragment')))) } };
      case 'delete': {
        const fragment = fields.object('fragment');
        const address = addressFromWire(fragment);
        await disk.deleteFragment(fragment.has('locationBytes') ? { ...address, locationBytes: fragment.integer('locationBytes') } : address);
        return { result: {} };
      }
      case 'delete-version':
        return { result: { count: await disk.deleteVersion(fields.uuid('versionId')) } };
      case 'flush':
        // Covers every write this node finished before now, which includes every write a client saw finish before
        // it sent this flush: a write's answer is sent only after the disk's writeFragment resolved.
        await disk.flush();
        return { result: {} };
      case 'space':
        return { result: await disk.space() };
      case 'holds-record':
        return { result: { holds: await disk.holdsRecord(foundFromWire(fields.object('fragment'))) } };
      case 'settle':
        disk.settle(fields.list('fragments', FRAGMENT_SERVICE_SETTLE_BATCH_MAX_COUNT).map(addressFromWire));
        return { result: {} };
    }
  }

  /** A scan's answer is NDJSON, each line signed; the last line says it is the last (or carries the error). */
  private async streamScan(response: ServerResponse, nonce: string, disk: Disk, fields: WireFields): Promise<void> {
    const hints = fields.has('expectedLocations') ? fields.integers('expectedLocations', FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT) : undefined;
    const node = this.options.nodeName;
    response.writeHead(200, {
      'content-type': 'application/x-ndjson',
      [AUTH_HEADERS.node]: node,
      [AUTH_HEADERS.bodySha256]: STREAMED_BODY,
      [AUTH_HEADERS.signature]: sign(this.options.clusterKey, responseStringToSign({ status: 200, nonce, node, bodySha256: STREAMED_BODY })),
    });
    let sequence = 0;
    const line = (json: unknown): string => {
      const text = JSON.stringify(json);
      const jsonSha256 = sha256Hex([Buffer.from(text, 'utf8')]);
      return `${sign(this.options.clusterKey, lineStringToSign({ nonce, node, sequence: sequence++, jsonSha256 }))} ${text}\n`;
    };
    let count = 0;
    try {
      for await (const found of disk.scanFragments(hints)) {
        if (response.destroyed) return; // the caller stopped reading: leaving the loop ends the disk's scan too
        count += 1;
        if (!response.write(line({ found: toWire(found) }))) await drainedOrClosed(response);
      }
      response.end(line({ end: true, count, state: stateOf(disk) }));
    } catch (error) {
      if (!isShardpoolError(error)) {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      response.end(line({ error: errorToWire(error), state: stateOf(disk) }));
    }
  }

  private reply(response: ServerResponse, status: number, nonce: string, json: unknown, payload?: Buffer): void {
    const parts = encodeFrame(json, payload);
    const bodySha256 = sha256Hex(parts);
    const node = this.options.nodeName;
    response.writeHead(status, {
      'content-type': 'application/octet-stream',
      'content-length': parts.reduce((sum, part) => sum + part.length, 0),
      [AUTH_HEADERS.node]: node,
      [AUTH_HEADERS.bodySha256]: bodySha256,
      [AUTH_HEADERS.signature]: sign(this.options.clusterKey, responseStringToSign({ status, nonce, node, bodySha256 })),
    });
    for (const part of parts) response.write(part);
    response.end();
  }
}

/**
 * Nonces seen within the window, oldest first (a Map keeps insertion order, and arrival times only grow), each
 * forgotten `keepMs` after it arrived: a request accepted at arrival time a had |a − t| ≤ skew, so a replay is refused
 * by its time from t + skew ≤ a + 2·skew on. At `maxCount` live nonces new requests are refused: forgetting a live
 * nonce early would let its request be replayed.
 */
export class NonceWindow {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxCount: number,
    private readonly keepMs: number,
  ) {}

  /** True for a nonce not seen within the window (it is remembered now); false for a replay. Throws when full. */
  admit(nonce: string, nowMs: number): boolean {
    for (const [oldest, forgetAtMs] of this.seen) {
      if (forgetAtMs > nowMs) break;
      this.seen.delete(oldest);
    }
    if (this.seen.has(nonce)) return false;
    if (this.seen.size >= this.maxCount) {
      throw new ShardpoolError('NODE_REQUEST_INVALID', `this node has ${this.seen.size} requests of the last minute in its replay window; retry shortly`, { reason: 'busy' });
    }
    this.seen.set(nonce, nowMs + this.keepMs);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

function routeOf(request: IncomingMessage): Route {
  const url = request.url ?? '';
  if (url === `${PROTOCOL_PATH_PREFIX}node` && request.method === 'GET') return { call: 'node', diskUuid: undefined, jsonMaxBytes: 0, bodyMaxBytes: 0 };
  const match = /^\/v1\/disks\/([^/?]+)\/([a-z-]+)$/.exec(url);
  const call = match?.[2] as Call | undefined;
  if (!match || !isUuid(match[1]) || call === undefined || !CALLS.includes(call) || request.method !== 'POST') {
    throw invalidRequest(`no fragment service call is ${request.method ?? ''} ${url}`);
  }
  // A write carries a fragment's data after a small JSON part; every other call is JSON alone.
  if (call === 'write') {
    const jsonMaxBytes = FRAGMENT_SERVICE_WRITE_JSON_MAX_BYTES;
    return { call, diskUuid: match[1], jsonMaxBytes, bodyMaxBytes: FRAME_OVERHEAD_BYTES + jsonMaxBytes + FRAGMENT_DATA_MAX_BYTES };
  }
  return { call, diskUuid: match[1], jsonMaxBytes: FRAGMENT_SERVICE_JSON_MAX_BYTES, bodyMaxBytes: FRAME_OVERHEAD_BYTES + FRAGMENT_SERVICE_JSON_MAX_BYTES };
}

/** The whole body, refused as soon as it passes `maxBytes` (whatever Content-Length said). */
async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let lengthBytes = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    lengthBytes += chunk.length;
    if (lengthBytes > maxBytes) throw tooLarge(lengthBytes, maxBytes);
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, lengthBytes);
}

/** Reads a refused body to its end (so the answer is not cut off by a reset), but never more than its limit. */
function discardBody(request: IncomingMessage, maxBytes: number): void {
  let seenBytes = 0;
  request.on('data', (chunk: Buffer) => {
    seenBytes += chunk.length;
    if (seenBytes > maxBytes) request.destroy();
  });
}

function stateOf(disk: Disk): WireDiskState {
  return { acceptsFragments: disk.acceptsFragments, latchedFailure: disk.latchedFailure ? errorToWire(disk.latchedFailure) : null };
}

function drainedOrClosed(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.once('drain', done);
    response.once('close', done);
  });
}

function authFailed(message: string, reason: string): ShardpoolError {
  return new ShardpoolError('CLUSTER_AUTH_FAILED', `refused by the fragment service: ${message}`, { reason });
}

function invalidRequest(why: string): ShardpoolError {
  return new ShardpoolError('NODE_REQUEST_INVALID', `the fragment service request is invalid: ${why}`, { reason: 'malformed' });
}

function tooLarge(lengthBytes: number, maxBytes: number): ShardpoolError {
  return new ShardpoolError('NODE_REQUEST_INVALID', `the fragment service request body of ${lengthBytes} bytes or more exceeds its limit of ${maxBytes}`, {
    reason: 'too-large',
    maxBytes,
  });
}
