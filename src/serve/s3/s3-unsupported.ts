// What shardpool's S3 API does not do, refused in one place: a request that asks for encryption, an ACL that grants
// more than what is in force, tags, another storage class or object lock is answered with S3's error before anything
// is stored, never accepted and ignored (a client told 200 believes its data is shared, locked...). When one of these
// is implemented (tenants and ACLs), its rule here is what it switches off; encryption at rest was (s3-sse.ts).
//
// Canned ACLs and grants are s3-acl.ts's (tenants): what is left here is x-amz-acl on CreateMultipartUpload, where
// only what holds of every object anyway (private, bucket-owner-full-control) is accepted.
import type { IncomingHttpHeaders } from 'node:http';
import { S3Error } from './s3-error.js';

/** The operations that store an object or its settings, where most of these headers mean something. */
const OBJECT_WRITES = new Set(['PutObject', 'CopyObject', 'CreateMultipartUpload']);
const VERSIONED = new Set(['GetObject', 'HeadObject', 'DeleteObject']);

interface Rule {
  /** Header names (lower case), or a prefix ending in "*". */
  readonly headers: ReadonlyArray<string>;
  /** Where the rule applies: operation names (CopyObject is told apart from PutObject). */
  readonly operations: ReadonlySet<string>;
  /** The refusal for this value, or undefined when the value asks for nothing beyond what holds. */
  refuse(value: string, name: string): S3Error | undefined;
}

const CANNED_ACLS = new Set([
  'private', 'public-read', 'public-read-write', 'authenticated-read', 'aws-exec-read', 'bucket-owner-read', 'bucket-owner-full-control', 'log-delivery-write',
]);
const ACLS_IN_FORCE = new Set(['private', 'bucket-owner-full-control']);
const STORAGE_CLASSES = new Set([
  'STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE', 'OUTPOSTS', 'GLACIER_IR', 'SNOW', 'EXPRESS_ONEZONE',
]);

const notImplemented = (what: string): S3Error => new S3Error('NotImplemented', 501, `shardpool does not implement ${what}`);

const RULES: ReadonlyArray<Rule> = [
  // Server-side encryption (SSE-S3, SSE-C; SSE-KMS refused) is s3-sse.ts's, in the handlers that store and read.
  {
    // The source's key means something only where there is a source (CopyObject; UploadPartCopy is refused).
    headers: ['x-amz-copy-source-server-side-encryption-customer-*'],
    operations: new Set(['PutObject', 'CreateMultipartUpload', 'UploadPart']),
    refuse: (_value, name) => new S3Error('InvalidArgument', 400, `${name} is given only with x-amz-copy-source`, { ArgumentName: name }),
  },
  {
    // The upload's object is private; public-read is given with PutObjectAcl once it is complete.
    headers: ['x-amz-acl'],
    operations: new Set(['CreateMultipartUpload']),
    refuse: (value) => {
      const acl = value.trim();
      if (!CANNED_ACLS.has(acl)) return new S3Error('InvalidArgument', 400, `${JSON.stringify(acl)} is not a canned ACL`, { ArgumentName: 'x-amz-acl', ArgumentValue: acl });
      if (ACLS_IN_FORCE.has(acl)) return undefined;
      return notImplemented(`the canned ACL ${acl} on a multipart upload: complete it, then set the ACL with PutObjectAcl`);
    },
  },
  {
    headers: ['x-amz-grant-*'],
    operations: new Set(['CreateMultipartUpload']),
    refuse: (_value, name) => notImplemented(`access control grants (${name}): grant access with shardpool user allow`),
  },
  {
    headers: ['x-amz-tagging'],
    operations: OBJECT_WRITES,
    refuse: () => notImplemented('object tagging (x-amz-tagging)'),
  },
  {
    // COPY copies the source's tags, of which there are none; REPLACE would set new ones.
    headers: ['x-amz-tagging-directive'],
    operations: new Set(['CopyObject']),
    refuse: (value) => (value.trim().toUpperCase() === 'COPY' ? undefined : notImplemented('object tagging (x-amz-tagging-directive REPLACE)')),
  },
  {
    headers: ['x-amz-storage-class'],
    operations: OBJECT_WRITES,
    refuse: (value) => {
      const storageClass = value.trim();
      if (storageClass === 'STANDARD') return undefined;
      if (!STORAGE_CLASSES.has(storageClass)) return new S3Error('InvalidStorageClass', 400, 'The storage class you specified is not valid', { StorageClassRequested: storageClass });
      return notImplemented(`the storage class ${storageClass}: every object is STANDARD (kept by the pool's redundancy policy)`);
    },
  },
  {
    headers: ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold'],
    operations: OBJECT_WRITES,
    refuse: (_value, name) => notImplemented(`object lock (${name})`),
  },
  {
    headers: ['x-amz-bucket-object-lock-enabled'],
    operations: new Set(['CreateBucket']),
    refuse: (value) => (value.trim().toLowerCase() === 'false' ? undefined : notImplemented('object lock (x-amz-bucket-object-lock-enabled)')),
  },
  {
    headers: ['x-amz-website-redirect-location'],
    operations: OBJECT_WRITES,
    refuse: () => notImplemented('website redirects (x-amz-website-redirect-location)'),
  },
];

/**
 * Throws the S3 error for the first header of this request that asks for something shardpool does not do; run once
 * the request is authenticated (an anonymous one is AccessDenied first) and before its body is read.
 */
export function refuseUnsupported(operation: string, headers: IncomingHttpHeaders, query: URLSearchParams): void {
  // Versions: every object has the one version "null" (what S3 calls the version of an unversioned object).
  const versionId = query.get('versionId');
  if (versionId !== null && versionId !== 'null' && VERSIONED.has(operation)) {
    throw new S3Error('NoSuchVersion', 404, 'The specified version does not exist: shardpool keeps no object versions', { VersionId: versionId });
  }
  for (const rule of RULES) {
    if (!rule.operations.has(operation)) continue;
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || !rule.headers.some((pattern) => matches(pattern, name))) continue;
      const error = rule.refuse(Array.isArray(value) ? value.join(',') : value, name);
      if (error) throw error;
    }
  }
}

function matches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}
