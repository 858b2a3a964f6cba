// The client side of the fragment service (src/serve/fragment-service.ts): one per pool, shared by every remote disk.
// It keeps a bounded number of keep-alive connections per node, signs every request with the pool's cluster key,
// refuses any answer not signed with it by the node it asked, bounds what it reads, and turns a node that cannot
// be reached (refused, reset, silent past a timeout) into NODE_UNREACHABLE, naming the node and its URL.
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { assert } from '../../assert.js';
import {
  FRAGMENT_CLIENT_CONNECT_TIMEOUT_MS,
  FRAGMENT_CLIENT_IDLE_TIMEOUT_MS,
  FRAGMENT_CLIENT_SOCKETS_PER_NODE_MAX,
  FRAGMENT_DATA_MAX_BYTES,
  FRAGMENT_SERVICE_JSON_MAX_BYTES,
  FRAGMENT_SERVICE_SCAN_LINE_MAX_BYTES,
} from '../../constants.js';
import { ShardpoolError, isShardpoolError, systemErrorCode } from '../../errors.js';
import { readFileIfExists } from '../../io/durable-files.js';
import {
  AUTH_HEADERS,
  STREAMED_BODY,
  assertClusterKey,
  decodeFrame,
  encodeFrame,
  errorFromWire,
  isNodeName,
  lineStringToSign,
  newNonce,
  parseJsonObject,
  requestStringToSign,
  responseStringToSign,
  sha256Hex,
  sign,
  signatureMatches,
} from './protocol.js';

export interface FragmentClientOptions {
  readonly poolUuid: string;
  /** This node's name, signed into every request. */
  readonly nodeName: string;
  readonly clusterKey: Buffer;
  /** PEM file of the CA that signed the nodes' certificates (https URLs); without it the system's CAs are trusted. */
  readonly caFile?: string;
  readonly connectTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly socketsPerNodeMax?: number;
  /** The clock requests are signed with (tests move it). */
  readonly nowMs?: () => number;
}

/** Which node a request goes to: its name (its answers must carry it) and its fragment service's base URL. */
export interface NodeTarget {
  readonly node: string;
  readonly baseUrl: string;
}

export interface NodeAnswer {
  /** The answer's JSON: `result` and, for calls about a disk, `state`. */
  readonly json: Record<string, unknown>;
  readonly payload: Buffer;
}

/** Free keep-alive sockets are closed after this, well before the service closes them (65 s), so none is reused as it closes. */
const FREE_SOCKET_TIMEOUT_MS = 30_000;

export class FragmentClient {
  readonly poolUuid: string;
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly nowMs: () => number;
  private closed = false;

  /** Reads the CA file, if any, and makes the client. */
  static async open(options: FragmentClientOptions): Promise<FragmentClient> {
    if (options.caFile === undefined) return new FragmentClient(options, undefined);
    const ca = await readFileIfExists(options.caFile);
    if (!ca) throw new ShardpoolError('INPUT_NOT_FOUND', `the fragment service CA file ${options.caFile} does not exist`, { path: options.caFile });
    return new FragmentClient(options, ca);
  }

  constructor(
    private readonly options: FragmentClientOptions,
    ca: Buffer | undefined,
  ) {
    assertClusterKey(options.clusterKey);
    if (!isNodeName(options.nodeName)) throw new ShardpoolError('USAGE_INVALID', `not a node name: ${JSON.stringify(options.nodeName)}`);
    this.poolUuid = options.poolUuid;
    const maxSockets = options.socketsPerNodeMax ?? FRAGMENT_CLIENT_SOCKETS_PER_NODE_MAX;
    const agentOptions = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: FREE_SOCKET_TIMEOUT_MS };
    this.http = new HttpAgent(agentOptions);
    this.https = new HttpsAgent({ ...agentOptions, ...(ca ? { ca } : {}) });
    this.connectTimeoutMs = options.connectTimeoutMs ?? FRAGMENT_CLIENT_CONNECT_TIMEOUT_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? FRAGMENT_CLIENT_IDLE_TIMEOUT_MS;
    this.nowMs = options.nowMs ?? Date.now;
  }

  /**
   * One call: its answer's JSON and payload, or the node's error rethrown with its own code. `onAnswer` sees the
   * JSON of every signed answer, an error's too (a disk's state travels with both).
   */
  async call(
    target: NodeTarget,
    request: { method: 'GET' | 'POST'; path: string; json?: unknown; payload?: Buffer; answerPayloadMaxBytes?: number },
    onAnswer?: (json: Record<string, unknown>) => void,
  ): Promise<NodeAnswer> {
    const parts = request.json === undefined ? [] : encodeFrame(request.json, request.payload);
    const { response, nonce } = await this.send(target, request.method, request.path, parts);
    const body = await this.readAnswer(target, response, FRAGMENT_SERVICE_JSON_MAX_BYTES + (request.answerPayloadMaxBytes ?? 0) + 4);
    const signedHash = this.verifyAnswerHeaders(target, response, nonce);
    const invalid = (why: string) => answerInvalid(target, why);
    if (signedHash === undefined || sha256Hex([body]) !== signedHash) {
      throw this.forged(target, response.statusCode ?? 0, body, signedHash === undefined ? 'its signature does not verify' : 'its body does not match its signed hash');
    }
    const frame = decodeFrame(body, FRAGMENT_SERVICE_JSON_MAX_BYTES, invalid);
    onAnswer?.(frame.json);
    if (response.statusCode !== 200) throw errorFromWire(frame.json.error, origin(target));
    if (frame.payload.length > (request.answerPayloadMaxBytes ?? 0)) throw invalid(`it carries ${frame.payload.length} bytes more than the call answers with`);
    return { json: frame.json, payload: frame.payload };
  }

  /**
   * A streamed call (a scan): yields each signed line's JSON until the signed last line, which `onLast` receives
   * (an error there is rethrown). Stopping early closes the connection, which stops the node's scan.
   */
  async *stream(target: NodeTarget, path: string, json: unknown, onLast: (json: Record<string, unknown>) => void): AsyncGenerator<Record<string, unknown>> {
    const { response, nonce, request } = await this.send(target, 'POST', path, encodeFrame(json));
    try {
      if (response.statusCode !== 200) {
        // A refusal is an ordinary framed answer.
        const body = await this.readAnswer(target, response, FRAGMENT_SERVICE_JSON_MAX_BYTES + 4);
        const signedHash = this.verifyAnswerHeaders(target, response, nonce);
        if (signedHash === undefined || sha256Hex([body]) !== signedHash) throw this.forged(target, response.statusCode ?? 0, body, 'its signature does not verify');
        const frame = decodeFrame(body, FRAGMENT_SERVICE_JSON_MAX_BYTES, (why) => answerInvalid(target, why));
        onLast(frame.json);
        throw errorFromWire(frame.json.error, origin(target));
      }
      if (this.verifyAnswerHeaders(target, response, nonce) !== STREAMED_BODY) throw this.forged(target, 200, Buffer.alloc(0), 'its signature does not verify');
      let sequence = 0;
      let pending: Buffer = Buffer.alloc(0);
      for await (const chunk of response as AsyncIterable<Buffer>) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let newline: number;
        while ((newline = pending.indexOf(10)) >= 0) {
          const line = this.verifiedLine(target, pending.subarray(0, newline), nonce, sequence);
          pending = pending.subarray(newline + 1);
          sequence += 1;
          if (line.found === undefined) {
            onLast(line);
            if (line.error !== undefined) throw errorFromWire(line.error, origin(target));
            if (line.end !== true) throw answerInvalid(target, 'a scan line holds neither a fragment nor its end');
            return;
          }
          yield line;
        }
        if (pending.length > FRAGMENT_SERVICE_SCAN_LINE_MAX_BYTES) throw answerInvalid(target, `a scan line is longer than ${FRAGMENT_SERVICE_SCAN_LINE_MAX_BYTES} bytes`);
      }
      throw answerInvalid(target, 'the scan ended before its signed last line');
    } catch (error) {
      throw isShardpoolError(error) ? error : unreachable(target, error);
    } finally {
      request.destroy();
    }
  }

  /** Ends the connections kept open; the client takes no calls after. */
  close(): void {
    this.closed = true;
    this.http.destroy();
    this.https.destroy();
  }

  private verifiedLine(target: NodeTarget, line: Buffer, nonce: string, sequence: number): Record<string, unknown> {
    const space = line.indexOf(32);
    const signature = space < 0 ? '' : line.subarray(0, space).toString('latin1');
    const json = line.subarray(space + 1);
    const text = lineStringToSign({ nonce, node: target.node, sequence, jsonSha256: sha256Hex([json]) });
    if (space < 0 || !signatureMatches(this.options.clusterKey, text, signature)) {
      throw new ShardpoolError('CLUSTER_AUTH_FAILED', `line ${sequence} of a scan from node ${target.node} (${target.baseUrl}) is not signed with the pool's cluster key (or is out of order)`, {
        ...origin(target),
        reason: 'answer-signature',
      });
    }
    return parseJsonObject(json, (why) => answerInvalid(target, why));
  }

  /** The signed body hash when the answer's headers are signed by the node asked, for this request; else undefined. */
  private verifyAnswerHeaders(target: NodeTarget, response: IncomingMessage, nonce: string): string | undefined {
    const node = response.headers[AUTH_HEADERS.node];
    const bodySha256 = response.headers[AUTH_HEADERS.bodySha256];
    const signature = response.headers[AUTH_HEADERS.signature];
    if (node !== target.node || typeof bodySha256 !== 'string' || typeof signature !== 'string') return undefined;
    const text = responseStringToSign({ status: response.statusCode ?? 0, nonce, node, bodySha256 });
    return signatureMatches(this.options.clusterKey, text, signature) ? bodySha256 : undefined;
  }

  /**
   * An answer that is not the node's: refused whatever it says. When it is the service's own refusal of our
   * signature (our key is not the pool's), that is the more useful message.
   */
  private forged(target: NodeTarget, status: number, body: Buffer, why: string): ShardpoolError {
    let refusedOurs = '';
    if (status === 401) {
      try {
        const error = decodeFrame(body, FRAGMENT_SERVICE_JSON_MAX_BYTES, (reason) => answerInvalid(target, reason)).json.error as { code?: unknown; message?: unknown } | undefined;
        if (error?.code === 'CLUSTER_AUTH_FAILED' && typeof error.message === 'string') refusedOurs = ` (it says: ${error.message})`;
      } catch {
        // Not even a frame: the answer is refused as unsigned all the same.
      }
    }
    return new ShardpoolError(
      'CLUSTER_AUTH_FAILED',
      `the answer from ${target.baseUrl} is not signed by node ${target.node} with the pool's cluster key: ${why}${refusedOurs}`,
      { ...origin(target), reason: 'answer-signature' },
    );
  }

  private send(target: NodeTarget, method: string, path: string, parts: ReadonlyArray<Buffer>): Promise<{ response: IncomingMessage; nonce: string; request: ClientRequest }> {
    assert(!this.closed, 'a closed fragment client takes no calls');
    const url = new URL(path, target.baseUrl);
    const pathWithQuery = `${url.pathname}${url.search}`;
    const nonce = newNonce();
    const bodySha256 = sha256Hex(parts);
    const timeMs = this.nowMs();
    const signature = sign(this.options.clusterKey, requestStringToSign({ method, pathWithQuery, node: this.options.nodeName, timeMs, nonce, bodySha256 }));
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const request = (secure ? httpsRequest : httpRequest)({
        agent: secure ? this.https : this.http,
        method,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port,
        path: pathWithQuery,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': parts.reduce((sum, part) => sum + part.length, 0),
          [AUTH_HEADERS.node]: this.options.nodeName,
          [AUTH_HEADERS.time]: String(timeMs),
          [AUTH_HEADERS.nonce]: nonce,
          [AUTH_HEADERS.bodySha256]: bodySha256,
          [AUTH_HEADERS.signature]: signature,
        },
      });
      let connectTimer: NodeJS.Timeout | undefined;
      request.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => request.destroy(timedOut(`no connection within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      request.setTimeout(this.idleTimeoutMs, () => request.destroy(timedOut(`no answer for ${this.idleTimeoutMs} ms`)));
      request.on('error', (error) => {
        clearTimeout(connectTimer);
        reject(unreachable(target, error));
      });
      request.on('response', (response) => {
        clearTimeout(connectTimer);
        resolve({ response, nonce, request });
      });
      for (const part of parts) request.write(part);
      request.end();
    });
  }

  /** The whole answer body, refused past `maxBytes`; a connection cut while reading is NODE_UNREACHABLE. */
  private async readAnswer(target: NodeTarget, response: IncomingMessage, maxBytes: number): Promise<Buffer> {
    const declared = Number(response.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      response.destroy();
      throw answerInvalid(target, `its body of ${declared} bytes exceeds ${maxBytes}`);
    }
    const chunks: Buffer[] = [];
    let lengthBytes = 0;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        lengthBytes += chunk.length;
        if (lengthBytes > maxBytes) {
          response.destroy();
          throw answerInvalid(target, `its body exceeds ${maxBytes} bytes`);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      throw isShardpoolError(error) ? error : unreachable(target, error);
    }
    return Buffer.concat(chunks, lengthBytes);
  }
}

/** The largest payload an answer may carry: a fragment's data (read). */
export const ANSWER_PAYLOAD_MAX_BYTES = FRAGMENT_DATA_MAX_BYTES;

function origin(target: NodeTarget): { node: string; url: string } {
  return { node: target.node, url: target.baseUrl };
}

class TimedOut extends Error {}

function timedOut(message: string): TimedOut {
  return new TimedOut(message);
}

/** TLS verification failures say the node is not who it claims; every other transport failure, that it is not there. */
const TLS_IDENTITY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function unreachable(target: NodeTarget, error: unknown): ShardpoolError {
  const code = systemErrorCode(error);
  const why = error instanceof TimedOut ? error.message : `${code ?? 'error'}: ${error instanceof Error ? error.message : String(error)}`;
  if (code !== undefined && TLS_IDENTITY_CODES.has(code)) {
    return new ShardpoolError('CLUSTER_AUTH_FAILED', `node ${target.node} (${target.baseUrl}) has a TLS certificate the pool's CA does not vouch for: ${why}`, {
      ...origin(target),
      reason: 'tls',
    }, { cause: error });
  }
  return new ShardpoolError('NODE_UNREACHABLE', `node ${target.node} cannot be reached at ${target.baseUrl}: ${why}`, origin(target), { cause: error });
}

/** An answer outside the protocol (the remote disk uses it for the fields it reads). */
export function answerInvalid(target: NodeTarget, why: string): ShardpoolError {
  return new ShardpoolError('NODE_ANSWER_INVALID', `node ${target.node} (${target.baseUrl}) answered outside the fragment service protocol: ${why}`, origin(target));
}
