// Conditional requests, in one place: reads (If-Match, If-None-Match, If-(Un)Modified-Since on GET and HEAD), the
// source of a copy (x-amz-copy-source-if-*), and writes (If-None-Match: * and If-Match on PutObject, CopyObject's
// destination and CompleteMultipartUpload). A write's condition is decided inside the transaction that commits the
// object (PutOptions.inCommit, told the version it replaces while the key is held for it), never checked first and
// acted on later: of two writes with If-None-Match: * racing on one key exactly one commits, the other is 412.
import type { CatalogOperations } from '../../pool/catalog/catalog.js';
import { etagOfVersion, header, type S3Call } from './s3-call.js';
import { S3Error } from './s3-error.js';

export const preconditionFailed = (): S3Error => new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');

/** Evaluates If-Match / If-None-Match / If-(Un)Modified-Since of a read; true means answer 304 Not Modified. */
export function checkReadConditions(call: S3Call, etag: string, modifiedMs: number): boolean {
  const ifMatch = header(call, 'if-match');
  const ifNoneMatch = header(call, 'if-none-match');
  const ifModifiedSince = header(call, 'if-modified-since');
  const ifUnmodifiedSince = header(call, 'if-unmodified-since');
  const modifiedSeconds = Math.floor(modifiedMs / 1000);
  if (ifMatch !== undefined && !etagListMatches(ifMatch, etag)) throw preconditionFailed();
  if (ifMatch === undefined && ifUnmodifiedSince !== undefined && modifiedSeconds > Date.parse(ifUnmodifiedSince) / 1000) throw preconditionFailed();
  if (ifNoneMatch !== undefined) return etagListMatches(ifNoneMatch, etag);
  if (ifModifiedSince !== undefined && !Number.isNaN(Date.parse(ifModifiedSince))) return modifiedSeconds <= Date.parse(ifModifiedSince) / 1000;
  return false;
}

/**
 * CopyObject's conditions on its source, as S3 evaluates them: if-match decides over if-unmodified-since, and
 * if-none-match over if-modified-since (each pair as HTTP's If-Match and If-None-Match pairs); any that fails is 412.
 */
export function checkCopySourceConditions(call: S3Call, etag: string, modifiedMs: number): void {
  const ifMatch = header(call, 'x-amz-copy-source-if-match');
  const ifNoneMatch = header(call, 'x-amz-copy-source-if-none-match');
  const ifModifiedSince = httpDateMs(header(call, 'x-amz-copy-source-if-modified-since'));
  const ifUnmodifiedSince = httpDateMs(header(call, 'x-amz-copy-source-if-unmodified-since'));
  const modifiedSeconds = Math.floor(modifiedMs / 1000);
  if (ifMatch !== undefined) {
    if (!etagListMatches(ifMatch, etag)) throw preconditionFailed();
  } else if (ifUnmodifiedSince !== undefined && modifiedSeconds > ifUnmodifiedSince / 1000) {
    throw preconditionFailed();
  }
  if (ifNoneMatch !== undefined) {
    if (etagListMatches(ifNoneMatch, etag)) throw preconditionFailed();
  } else if (ifModifiedSince !== undefined && modifiedSeconds <= ifModifiedSince / 1000) {
    throw preconditionFailed();
  }
}

/** A write's condition on what its key holds when it commits; undefined when the request has none. */
export interface WriteCondition {
  /** If-None-Match: * — the key must hold no object. */
  readonly absent: boolean;
  /** If-Match — the key must hold an object with one of these ETags ("*": any object). */
  readonly etags: string | undefined;
}

export function writeConditionOf(call: S3Call): WriteCondition | undefined {
  const ifNoneMatch = header(call, 'if-none-match');
  const ifMatch = header(call, 'if-match');
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') {
    // S3 takes only "*" here (write the object only if the key has none).
    throw new S3Error('NotImplemented', 501, 'A header you provided implies functionality that is not implemented: If-None-Match on a write takes only "*"');
  }
  return { absent: ifNoneMatch !== undefined, etags: ifMatch };
}

/**
 * Decides a write's condition against the version the key holds (undefined: none), reading that version's ETag
 * through `catalog` — inside the commit's transaction, the one the commit replaces. If-Match on a key with no object
 * is 404 NoSuchKey, as S3 answers.
 */
export async function checkWriteCondition(
  catalog: Pick<CatalogOperations, 'objectMetadata'>,
  condition: WriteCondition | undefined,
  current: { versionId: string | undefined; key: string; superseded?: boolean },
): Promise<void> {
  if (condition === undefined) return;
  // A put or removal of the key that started later has committed first: whatever this write expected the key to
  // hold, the key has moved on (this one could only be ordered before that one, whose own condition then saw it).
  if (current.superseded === true) throw preconditionFailed();
  if (condition.absent && current.versionId !== undefined) throw preconditionFailed();
  if (condition.etags === undefined) return;
  if (current.versionId === undefined) throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.', { Key: current.key });
  if (!etagListMatches(condition.etags, await etagOfVersion(catalog, current.versionId))) throw preconditionFailed();
}

/** A comma-separated list of entity tags (quoted or not, weak ones compared as strong) or "*", against an ETag. */
function etagListMatches(list: string, etag: string): boolean {
  const wanted = normaliseEtag(etag);
  return list.split(',').some((tag) => tag.trim() === '*' || normaliseEtag(tag) === wanted);
}

function normaliseEtag(tag: string): string {
  return tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
}

function httpDateMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
