// S3 requests built by hand, for what the AWS SDK never sends: bodies spelled as other clients' XML writers spell
// them, raw Latin-1 bytes in header values, Expect headers, no signature at all. Signed with the SDK's own signer over
// the bytes that go on the wire (node writes header strings as Latin-1, one byte per character).
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface RawRequest {
  readonly method: string;
  /** "/bucket/key", already percent-encoded as it goes on the wire. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | string;
  /** False: send no Authorization header (an anonymous request). */
  readonly sign?: boolean;
  /** Sends the headers, then waits for 100 Continue (or the final answer) before the body. */
  readonly expectContinue?: boolean;
}

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** Whether a 100 Continue arrived before the answer. */
  readonly continued: boolean;
}

/**
 * Hashes what it is given as the bytes that go on the wire: a client that signs the very bytes it sends (Go, curl
 * --aws-sigv4). The signer hands over its strings (canonical request, string to sign) as UTF-8; node sends header
 * strings as Latin-1, so the text is turned back into those bytes. (The body is never hashed here: its digest is
 * given in x-amz-content-sha256.)
 */
class WireSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | Uint8Array) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', secret);
  }
  update(data: string | Uint8Array): void {
    const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
    this.hash.update(Buffer.from(text, 'latin1'));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

export async function rawS3Request(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  request: RawRequest,
): Promise<RawResponse> {
  const url = new URL(endpoint);
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body);
  const headers: Record<string, string> = {
    host: url.host,
    'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
    'content-length': String(body.length),
    ...request.headers,
  };
  if (request.expectContinue) headers['expect'] = '100-continue';
  if (request.sign !== false) {
    const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: WireSha256 as never, uriEscapePath: false, applyChecksum: false });
    const signed = await signer.sign({
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: request.path,
      query: { ...request.query },
      headers,
      body,
    } as never);
    Object.assign(headers, (signed as unknown as { headers: Record<string, string> }).headers);
  }
  const query = new URLSearchParams(request.query ?? {}).toString().replace(/\+/g, '%20');
  return new Promise<RawResponse>((resolve, reject) => {
    let continued = false;
    const outgoing = httpRequest(
      { host: url.hostname, port: url.port, method: request.method, path: query === '' ? request.path : `${request.path}?${query}`, headers, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks), continued }));
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    if (request.expectContinue) {
      outgoing.on('continue', () => {
        continued = true;
        outgoing.end(body);
      });
      outgoing.flushHeaders();
    } else {
      outgoing.end(body);
    }
  });
}
