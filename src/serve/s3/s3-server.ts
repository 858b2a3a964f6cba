// The S3-compatible HTTP API: path-style requests (http://host:port/BUCKET/KEY) authenticated with AWS Signature
// Version 4 (header or presigned URL) against the pool's access keys, routed to the bucket, object and multipart
// operations, every failure answered with an S3 XML error document.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { decodeBody, type DecodedBody } from './s3-body.js';
import { createBucket, deleteBucket, getBucketLocation, headBucket, listBuckets, listObjects } from './s3-buckets.js';
import { toS3Error, type S3Call, type S3Context } from './s3-call.js';
import { S3Error } from './s3-error.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
} from './s3-multipart.js';
import { deleteObject, deleteObjects, getObject, putObject } from './s3-objects.js';
import { ANONYMOUS, authorize, type Principal } from './s3-access.js';
import { getBucketAcl, getObjectAcl, putBucketAcl, putObjectAcl } from './s3-acl.js';
import { refuseUnsupported } from './s3-unsupported.js';
import { verifySignature, type VerifiedRequest } from './sigv4.js';
import { xmlError } from './xml.js';

export interface S3RequestObserver {
  (operation: string, httpStatus: number, seconds: number): void;
}

type Handler = (call: S3Call) => void | Promise<void>;

interface Route {
  readonly operation: string;
  readonly handler: Handler;
}

export function createS3Server(context: S3Context, observe: S3RequestObserver = () => undefined): Server {
  const server = createServer((request, response) => {
    void handle(context, observe, request, response, { expectsContinue: false });
  });
  // Expect: 100-continue. The 100 goes out only when the request is accepted and its body wanted (call.body()), so a
  // request refused first — not authenticated, a missing bucket, a failing condition — is answered without the client
  // ever sending its body. Node's default would send 100 Continue before any of that.
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    void handle(context, observe, request, response, { expectsContinue: true });
  });
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    // An empty Expect header expects nothing, and is served as if absent (S3 does); any other expectation is 417.
    if (String(request.headers.expect ?? '').trim() === '') {
      void handle(context, observe, request, response, { expectsContinue: false });
      return;
    }
    response.writeHead(417, { 'Content-Length': '0', Connection: 'close' });
    response.end();
  });
  // Uploads of any size: no overall request deadline (headers must still arrive promptly).
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

async function handle(
  context: S3Context,
  observe: S3RequestObserver,
  request: IncomingMessage,
  response: ServerResponse,
  expectation: { expectsContinue: boolean },
): Promise<void> {
  /** True while the client waits for 100 Continue that was not sent: it has not sent its body, and will not. */
  let awaitingContinue = expectation.expectsContinue;
  const startedAt = process.hrtime.bigint();
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  response.setHeader('x-amz-request-id', requestId);
  response.setHeader('Server', 'shardpool');
  let operation = 'Unknown';
  let bucket: string | undefined;
  let key: string | undefined;
  let payload: string | undefined;
  try {
    const target = parseTarget(request.url ?? '/');
    bucket = target.bucket;
    key = target.key;
    const route = routeOf(request.method ?? 'GET', target, request.headers);
    operation = route.operation;
    const { verified, principal } = await authenticate(context, request, target);
    const access = await authorize(context, principal, { operation, bucket: target.bucket, key: target.key });
    refuseUnsupported(operation, request.headers, target.query);
    payload = verified.payload.kind;
    let body: DecodedBody | undefined;
    const call: S3Call = {
      context,
      request,
      response,
      bucket: target.bucket,
      key: target.key,
      query: target.query,
      verified,
      access,
      requestId,
      body: (options) =>
        (body ??= (() => {
          if (awaitingContinue) {
            awaitingContinue = false;
            response.writeContinue();
          }
          return decodeBody(request, verified, {
            checksumHeadersDescribeBody: options?.checksumHeadersDescribeBody ?? true,
            idleTimeoutMs: context.bodyIdleTimeoutMs,
          });
        })()),
    };
    await route.handler(call);
  } catch (error) {
    const s3Error = toS3Error(error, { bucket, key });
    if (s3Error.httpStatus >= 500) context.log.error({ err: error, requestId, operation, bucket, key }, 'S3 request failed');
    sendError(request, response, s3Error, { requestId, bodyWithheld: awaitingContinue });
  } finally {
    const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const status = response.statusCode;
    observe(operation, status, seconds);
    context.log.info({ requestId, operation, method: request.method, bucket, key, status, payload, ms: Math.round(seconds * 1000) }, 'S3 request');
  }
}

function sendError(request: IncomingMessage, response: ServerResponse, error: S3Error, options: { requestId: string; bodyWithheld: boolean }): void {
  const { requestId } = options;
  if (response.headersSent) {
    // The status line is gone (a GET failed mid-stream): all that is left is to cut the connection, so the client
    // sees a short body instead of a complete-looking wrong one.
    response.destroy(error);
    return;
  }
  const resource = (request.url ?? '/').split('?')[0] ?? '/';
  const body = request.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(xmlError({ code: error.code, message: error.message, resource, requestId, details: error.details }));
  const headers: Record<string, string> = { 'Content-Type': 'application/xml', 'Content-Length': String(body.length) };
  if (error.code === 'RequestTimeout' || options.bodyWithheld) {
    // Also a client still waiting for 100 Continue: its body was never asked for, so the connection cannot carry
    // another request after this answer (RFC 9110 § 10.1.1); it is closed instead of waiting for a body.
    // The client stopped sending part way through its body: the rest is not worth waiting for (that is what timed
    // out), so the answer goes out and node closes the connection after it, as S3 does.
    headers['Connection'] = 'close';
    response.writeHead(error.httpStatus, headers);
    response.end(body);
    return;
  }
  response.writeHead(error.httpStatus, headers);
  response.end(body);
  if (!request.complete) drainRefusedBody(request);
}

/** What a refused request may still send, and for how long, before its connection is cut. */
export const REFUSED_BODY_DRAIN_BYTES_MAX = 64 * 1024 * 1024;
const REFUSED_BODY_DRAIN_MS = 5_000;

/**
 * A request refused before its body was read (or part way through it): the answer is sent, and the rest of the body
 * is read and dropped so the client can finish sending and then read the answer (closing at once made it fail
 * with EPIPE instead of the error; nginx's lingering close avoids the same). Past 64 MiB or 5 s of it, the
 * connection is cut rather than read what may be gigabytes; a body that ends in time leaves the connection usable.
 * The cost is bandwidth only: drained bytes are dropped as they arrive.
 */
function drainRefusedBody(request: IncomingMessage): void {
  let drained = 0;
  const cut = (): void => {
    request.socket.destroy();
  };
  const timer = setTimeout(cut, REFUSED_BODY_DRAIN_MS);
  timer.unref();
  request.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > REFUSED_BODY_DRAIN_BYTES_MAX) cut();
  });
  request.once('end', () => clearTimeout(timer));
  request.once('close', () => clearTimeout(timer));
  request.resume();
}

interface Target {
  readonly rawPath: string;
  readonly rawQuery: string;
  readonly bucket: string | undefined;
  readonly key: string | undefined;
  readonly query: URLSearchParams;
}

/** Path-style addressing: /BUCKET/KEY, both percent-decoded; the key keeps every slash it has. */
function parseTarget(url: string): Target {
  const question = url.indexOf('?');
  const rawPath = question >= 0 ? url.slice(0, question) : url;
  const rawQuery = question >= 0 ? url.slice(question + 1) : '';
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.");
  }
  if (!path.startsWith('/')) throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.");
  const slash = path.indexOf('/', 1);
  const bucket = slash < 0 ? path.slice(1) : path.slice(1, slash);
  const key = slash < 0 ? undefined : path.slice(slash + 1);
  return {
    rawPath,
    rawQuery,
    bucket: bucket === '' ? undefined : bucket,
    key: key === '' ? undefined : key,
    query: new URLSearchParams(rawQuery),
  };
}

function routeOf(method: string, target: Target, headers: IncomingHttpHeaders): Route {
  const { bucket, key, query } = target;
  const route = (operation: string, handler: Handler): Route => ({ operation, handler });
  if (bucket === undefined) {
    if (method === 'GET' && !hasUnsupportedSubresource(query)) return route('ListBuckets', listBuckets);
  } else if (key === undefined) {
    switch (method) {
      case 'GET':
        if (query.has('location')) return route('GetBucketLocation', getBucketLocation);
        if (query.has('acl')) return route('GetBucketAcl', getBucketAcl);
        if (query.has('uploads')) return route('ListMultipartUploads', listMultipartUploads);
        if (hasUnsupportedSubresource(query)) break;
        return route(query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects', listObjects);
      case 'HEAD':
        return route('HeadBucket', headBucket);
      case 'PUT':
        if (query.has('acl')) return route('PutBucketAcl', putBucketAcl);
        if (hasUnsupportedSubresource(query)) break;
        return route('CreateBucket', createBucket);
      case 'DELETE':
        if (hasUnsupportedSubresource(query)) break;
        return route('DeleteBucket', deleteBucket);
      case 'POST':
        if (query.has('delete')) return route('DeleteObjects', deleteObjects);
        break;
    }
  } else {
    switch (method) {
      case 'GET':
        if (query.has('uploadId')) return route('ListParts', listParts);
        if (query.has('acl')) return route('GetObjectAcl', getObjectAcl);
        if (hasUnsupportedSubresource(query)) break;
        return route('GetObject', (call) => getObject(call, { head: false }));
      case 'HEAD':
        return route('HeadObject', (call) => getObject(call, { head: true }));
      case 'PUT':
        if (query.has('uploadId') && query.has('partNumber')) return route('UploadPart', uploadPart);
        if (query.has('acl')) return route('PutObjectAcl', putObjectAcl);
        if (hasUnsupportedSubresource(query)) break;
        return route(headers['x-amz-copy-source'] !== undefined ? 'CopyObject' : 'PutObject', putObject);
      case 'DELETE':
        if (query.has('uploadId')) return route('AbortMultipartUpload', abortMultipartUpload);
        return route('DeleteObject', deleteObject);
      case 'POST':
        if (query.has('uploads')) return route('CreateMultipartUpload', createMultipartUpload);
        if (query.has('uploadId')) return route('CompleteMultipartUpload', completeMultipartUpload);
        break;
    }
  }
  return {
    operation: 'NotImplemented',
    handler: () => {
      throw new S3Error('NotImplemented', 501, `shardpool does not implement ${method} with ${describeQuery(query)}`);
    },
  };
}

/** Sub-resources (?tagging, ?versioning, ?policy, ...) that shardpool does not implement. */
const QUERY_PARAMETERS = new Set([
  'list-type', 'prefix', 'delimiter', 'max-keys', 'marker', 'continuation-token', 'start-after', 'fetch-owner',
  'encoding-type', 'x-id', 'versionId', 'response-content-type', 'response-content-disposition', 'response-cache-control',
  'response-content-encoding', 'response-content-language', 'response-expires', 'partNumber', 'uploadId', 'max-buckets',
  'bucket-region',
]);

function hasUnsupportedSubresource(query: URLSearchParams): boolean {
  for (const name of query.keys()) {
    if (!QUERY_PARAMETERS.has(name) && !name.toLowerCase().startsWith('x-amz-')) return true;
  }
  return false;
}

function describeQuery(query: URLSearchParams): string {
  const names = [...query.keys()].filter((name) => !name.toLowerCase().startsWith('x-amz-'));
  return names.length === 0 ? 'this path' : `?${names.join('&')}`;
}

/**
 * The request's signature checked against the pool's access keys: the user who signed it, or the anonymous principal
 * when it carries no credentials at all (what it may do is then s3-access.ts's to decide: public-read only).
 */
async function authenticate(context: S3Context, request: IncomingMessage, target: Target): Promise<{ verified: VerifiedRequest; principal: Principal }> {
  const hasCredentials = request.headers.authorization !== undefined || target.query.has('X-Amz-Signature') || target.query.has('Signature');
  if (!hasCredentials) return { verified: { accessKeyId: '', payload: { kind: 'unsigned' }, chunkSigning: undefined }, principal: ANONYMOUS };
  // Keys are read afresh for every request (`shardpool user` changes them while the daemon runs); the table is small.
  const users = await context.s3.listUsers();
  const byKey = new Map(users.map((user) => [user.accessKeyId, user]));
  try {
    const verified = verifySignature(
      { method: request.method ?? 'GET', rawPath: target.rawPath, rawQuery: target.rawQuery, headers: request.headers },
      { region: context.region, lookupSecret: (accessKeyId) => byKey.get(accessKeyId)?.secretAccessKey, nowMs: Date.now() },
    );
    const user = byKey.get(verified.accessKeyId);
    if (user === undefined) throw new S3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.');
    return { verified, principal: { kind: 'user', user } };
  } catch (error) {
    // The commonest first-day mistake, answered with what to do about it.
    if (error instanceof S3Error && error.code === 'InvalidAccessKeyId' && users.length === 0) {
      throw new S3Error('InvalidAccessKeyId', 403, 'The pool has no access keys yet: create one with "shardpool user add NAME"');
    }
    throw error;
  }
}
