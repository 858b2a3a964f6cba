// What both catalog engines do the same way: settling the pieces of a group commit, listing objects by keyset
// pages (no statement, cursor or connection held between two pages), and S3 metadata as columns.
import { assert } from '../../assert.js';
import type { BucketGrant, BucketRow, CannedAcl, CatalogTransaction, ObjectMetadata, ObjectRow, UploadRow, UserRow } from './catalog.js';
import { reportCatalogBatch } from './catalog.js';

/** One piece of work of a group commit, with the promise its caller waits on. */
export interface BatchPiece {
  readonly work: (tx: CatalogTransaction) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export type PieceOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * Settles a batch after its transaction ended: each piece by its own outcome once the commit is durable, or every
 * piece with the commit's failure (none of it is durable then).
 */
export function settleBatch(pieces: ReadonlyArray<BatchPiece>, result: { outcomes: ReadonlyArray<PieceOutcome> } | { failure: unknown }): void {
  if ('failure' in result) {
    for (const piece of pieces) piece.reject(result.failure);
    return;
  }
  reportCatalogBatch(pieces.length);
  pieces.forEach((piece, index) => {
    const outcome = result.outcomes[index];
    assert(outcome !== undefined, 'every piece of a batch has an outcome');
    if (outcome.ok) piece.resolve(outcome.value);
    else piece.reject(outcome.error);
  });
}

/** How many rows a listing reads at a time. */
export const LISTING_PAGE_ROWS = 1000;

/** Objects whose key starts with `prefix`, a page at a time from `page(prefix, afterKey, limit)`. */
export async function* pagedObjects(
  page: (prefix: string, afterKey: string | undefined, limit: number) => Promise<ObjectRow[]>,
  prefix: string,
): AsyncGenerator<ObjectRow> {
  let afterKey: string | undefined;
  for (;;) {
    const rows = await page(prefix, afterKey, LISTING_PAGE_ROWS);
    yield* rows;
    if (rows.length < LISTING_PAGE_ROWS) return;
    afterKey = rows[rows.length - 1]?.key;
  }
}

// ── S3 metadata as both engines store it ──────────────────────────────────────────────────────────────────────

/** The columns of object_metadata (and of multipart_uploads' content type, user metadata and headers). */
export interface StoredMetadata {
  readonly etag: string;
  readonly contentType: string | null;
  readonly userMetadata: string;
  readonly contentHeaders: string;
  readonly partSizes: string | null;
  readonly encryption: string | null;
  readonly acl: CannedAcl;
}

export function storedMetadata(metadata: ObjectMetadata): StoredMetadata {
  return {
    etag: metadata.etag,
    contentType: metadata.contentType ?? null,
    userMetadata: JSON.stringify(metadata.userMetadata),
    contentHeaders: JSON.stringify(metadata.contentHeaders ?? {}),
    partSizes: metadata.partSizesBytes === undefined ? null : JSON.stringify(metadata.partSizesBytes),
    encryption: metadata.encryption === undefined ? null : JSON.stringify(metadata.encryption),
    acl: metadata.acl ?? 'private',
  };
}

/** The stored columns as ObjectMetadata: headers and part sizes left out when there are none (as they were given). */
export function metadataOfStored(row: StoredMetadata): ObjectMetadata {
  const contentHeaders = JSON.parse(row.contentHeaders) as Record<string, string>;
  return {
    etag: row.etag,
    contentType: row.contentType ?? undefined,
    userMetadata: JSON.parse(row.userMetadata) as Record<string, string>,
    ...(Object.keys(contentHeaders).length > 0 ? { contentHeaders } : {}),
    ...(row.partSizes === null ? {} : { partSizesBytes: JSON.parse(row.partSizes) as number[] }),
    ...(row.encryption === null ? {} : { encryption: JSON.parse(row.encryption) as Record<string, unknown> }),
    ...(row.acl === 'private' ? {} : { acl: row.acl }),
  };
}

export type StoredUpload = Omit<UploadRow, 'userMetadata' | 'contentType' | 'contentHeaders' | 'encryption'> & {
  userMetadata: string;
  contentType: string | null;
  contentHeaders: string;
  encryption: string | null;
};

export function uploadOfStored(row: StoredUpload): UploadRow {
  const { contentHeaders: storedHeaders, contentType, userMetadata, encryption, ...rest } = row;
  const contentHeaders = JSON.parse(storedHeaders) as Record<string, string>;
  return {
    ...rest,
    contentType: contentType ?? undefined,
    userMetadata: JSON.parse(userMetadata) as Record<string, string>,
    ...(Object.keys(contentHeaders).length > 0 ? { contentHeaders } : {}),
    ...(encryption === null ? {} : { encryption: JSON.parse(encryption) as Record<string, unknown> }),
  };
}

/** The values of a multipart_uploads row, in the order of the engines' INSERT. */
export function storedUploadValues(row: UploadRow): Array<string | number | null> {
  return [
    row.uploadId,
    row.bucket,
    row.key,
    row.contentType ?? null,
    JSON.stringify(row.userMetadata),
    row.createdAtMs,
    JSON.stringify(row.contentHeaders ?? {}),
    row.encryption === undefined ? null : JSON.stringify(row.encryption),
  ];
}

// ── tenants as both engines store them (flags as 0/1 integers, no owner as NULL) ─────────────────────────────────

export type StoredUser = Omit<UserRow, 'admin'> & { admin: number | boolean };
export type StoredBucket = Omit<BucketRow, 'owner'> & { owner: string | null };
export type StoredGrant = { bucket: string; user: string; read: number | boolean; write: number | boolean; owner: number | boolean };

export function userOfStored(row: StoredUser): UserRow {
  return { ...row, admin: Boolean(row.admin) };
}

export function bucketOfStored(row: StoredBucket): BucketRow {
  return { ...row, owner: row.owner ?? undefined };
}

export function grantOfStored(row: StoredGrant): BucketGrant {
  return { bucket: row.bucket, user: row.user, read: Boolean(row.read), write: Boolean(row.write), owner: Boolean(row.owner) };
}
