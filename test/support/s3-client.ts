// The AWS SDK as the S3 tests use it, and the means to make races deterministic: request bodies the test holds back
// until it says so, and a view of what the daemon has in flight and in its catalog.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Catalog } from '../../src/pool/catalog/catalog.js';
import { openPoolCatalog } from '../../src/pool/catalog/open-catalog.js';
import { toArray } from './async.js';
import { MULTIPART_KEY_PREFIX } from '../../src/serve/s3/s3-names.js';

export function s3Client(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }, region = 'us-east-1'): S3Client {
  return new S3Client({ endpoint, region, credentials, forcePathStyle: true, maxAttempts: 1 });
}

export async function bodyBytes(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The S3 error a request fails with (the test fails if it succeeds, or fails otherwise). */
export async function s3Error(promise: Promise<unknown>): Promise<S3ServiceException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return error;
    throw error;
  }
  assert.fail('the request was expected to fail');
}

export const md5 = (data: Buffer): Buffer => createHash('md5').update(data).digest();

/** S3's ETag of a multipart object made of these parts. */
export function multipartEtag(parts: ReadonlyArray<Buffer>): string {
  return `"${createHash('md5').update(Buffer.concat(parts.map(md5))).digest('hex')}-${parts.length}"`;
}

/** A request body that sends all but its last byte at once, and the last byte (and its end) only on release(). */
export function heldBody(data: Buffer): { stream: Readable; release: () => void } {
  assert.ok(data.length >= 2, 'a held body has at least two bytes');
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const stream = Readable.from(
    (async function* () {
      yield data.subarray(0, data.length - 1);
      await released;
      yield data.subarray(data.length - 1);
    })(),
  );
  return { stream, release };
}

/** Waits until the daemon's /health reports at least `count` object writes in flight (holding the pool gate). */
export async function waitForWritesInFlight(opsEndpoint: string, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const health = (await (await fetch(`${opsEndpoint}/health`)).json()) as { writesInFlight?: number };
    if ((health.writesInFlight ?? 0) >= count) return;
    if (Date.now() > deadline) assert.fail(`fewer than ${count} writes in flight after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The pool's catalog, read from the test process beside the daemon (SQLite WAL: committed state only). */
export async function openCatalog(pool: string): Promise<Catalog> {
  return (await openPoolCatalog(pool, { create: false })).catalog;
}

/** Keys of the hidden pool objects that hold multipart parts. */
export async function hiddenPartKeys(catalog: Catalog): Promise<string[]> {
  return (await toArray(catalog.listObjects(MULTIPART_KEY_PREFIX))).map((object) => object.key);
}
