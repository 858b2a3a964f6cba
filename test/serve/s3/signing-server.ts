// A bare node:http server for the signing tests: it verifies each request's signature exactly as the S3 server does
// (verifySignature on the request line and headers node hands over, then decodeBody), records what arrived — the
// raw body as it came off the wire, still aws-chunked, and the decoded one — and answers 200 or the S3 error
// document, so an S3 client on the other end sees the error code the server would give it.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { decodeBody } from '../../../src/serve/s3/s3-body.js';
import { S3Error } from '../../../src/serve/s3/s3-error.js';
import { verifySignature, type SignedRequest, type VerifiedRequest } from '../../../src/serve/s3/sigv4.js';

export const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';
export const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
export const REGION = 'us-east-1';
export const lookupSecret = (accessKeyId: string): string | undefined => (accessKeyId === ACCESS_KEY ? SECRET : undefined);

/** The AWS SDK's own signer (what S3Client uses inside), hashing with node:crypto, for requests built by hand. */
export const sdkSigner = new SignatureV4({
  service: 's3',
  region: REGION,
  credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
  sha256: class {
    private readonly hash: Hash | Hmac;
    constructor(secret?: string | Uint8Array) {
      this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
    }
    update(data: string | Uint8Array) {
      this.hash.update(data);
    }
    async digest() {
      return new Uint8Array(this.hash.digest());
    }
  } as never,
  uriEscapePath: false,
  applyChecksum: true,
});

export interface ReceivedRequest {
  readonly signed: SignedRequest;
  /** The body as node delivered it (HTTP chunked transfer undone, aws-chunked framing still there). */
  rawBody: Buffer;
  verified?: VerifiedRequest;
  /** The body decodeBody produced: the object's bytes. */
  body?: Buffer;
  error?: S3Error;
}

export interface SigningServer {
  readonly endpoint: string;
  readonly received: ReceivedRequest[];
  /** Changes the request before it is verified (to tamper with what the client signed). Reset by each test. */
  tamper: ((request: SignedRequest) => SignedRequest) | undefined;
  /** The server's clock. */
  nowMs: () => number;
  last(): ReceivedRequest;
  client(config?: Partial<ConstructorParameters<typeof S3Client>[0]>): S3Client;
  close(): Promise<void>;
}

export async function startSigningServer(): Promise<SigningServer> {
  const received: ReceivedRequest[] = [];
  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      response.destroy(error as Error);
    });
  });
  const state: SigningServer = {
    endpoint: '',
    received,
    tamper: undefined,
    nowMs: () => Date.now(),
    last: () => {
      const request = received.at(-1);
      if (request === undefined) throw new Error('no request arrived');
      return request;
    },
    client: (config = {}) =>
      new S3Client({
        region: REGION,
        endpoint: state.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
        maxAttempts: 1,
        ...config,
      }),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = request.url ?? '/';
    const at = url.indexOf('?');
    const asSent: SignedRequest = {
      method: request.method ?? 'GET',
      rawPath: at < 0 ? url : url.slice(0, at),
      rawQuery: at < 0 ? '' : url.slice(at + 1),
      headers: request.headers,
    };
    const signed = state.tamper ? state.tamper(asSent) : asSent;
    const record: ReceivedRequest = { signed, rawBody: Buffer.alloc(0) };
    received.push(record);
    const rawChunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => rawChunks.push(chunk));
    try {
      const verified = verifySignature(signed, { region: REGION, lookupSecret, nowMs: state.nowMs() });
      record.verified = verified;
      const decoded: Buffer[] = [];
      for await (const chunk of decodeBody(request, verified).stream as AsyncIterable<Buffer>) decoded.push(chunk);
      record.body = Buffer.concat(decoded);
      record.rawBody = Buffer.concat(rawChunks);
      respond(response, signed);
    } catch (error) {
      if (!(error instanceof S3Error)) throw error;
      record.error = error;
      record.rawBody = Buffer.concat(rawChunks);
      request.resume();
      const document = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${escapeXml(error.message)}</Message></Error>`;
      response.writeHead(error.httpStatus, { 'content-type': 'application/xml', connection: 'close' });
      response.end(document);
    }
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  (state as { endpoint: string }).endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** The smallest answers the SDK's deserializers accept for the operations the tests send. */
function respond(response: ServerResponse, request: SignedRequest): void {
  const query = new URLSearchParams(request.rawQuery);
  if (request.method === 'GET' && query.has('list-type')) {
    response.writeHead(200, { 'content-type': 'application/xml' });
    response.end('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>');
    return;
  }
  if (request.method === 'POST' && query.has('uploads')) {
    response.writeHead(200, { 'content-type': 'application/xml' });
    response.end('<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId></InitiateMultipartUploadResult>');
    return;
  }
  response.writeHead(200, { etag: '"d41d8cd98f00b204e9800998ecf8427e"', 'content-length': '0' });
  response.end();
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (character) => `&#${character.charCodeAt(0)};`);
}
