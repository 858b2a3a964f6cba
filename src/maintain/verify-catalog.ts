// `shardpool recover --verify-catalog`: the catalog is a cache of what the disks prove. Every member disk is scanned
// and its version manifests replayed as an import would (maintain/import.ts), and the state the disks prove for each
// key — its current version, size, extent checksums and ETag, or its removal — is compared with the catalog's.
//
// What runs beside it: puts and removals may go on. The last sequence number is read before the scan; a key with a
// put or removal numbered after it (on the disks or in the catalog) changed during the check and is skipped, not
// reported. It runs as maintenance (one at a time under the daemon), so no drain or defrag moves fragments under the
// scan. Keys written before version manifests (sequence 0) prove nothing and are skipped.
import { isReservedKey } from '../pool/keys.js';
import type { Pool } from '../pool/pool.js';
import { planImport, scanDisks, type PlannedVersion, type ScannedDisk } from './import.js';

export interface CatalogDifference {
  readonly key: string;
  /** What the catalog says, e.g. "version V (12 bytes)" or "no object". */
  readonly catalog: string;
  /** What the disks prove. */
  readonly disks: string;
}

export interface CatalogVerification {
  readonly keysChecked: number;
  readonly differences: ReadonlyArray<CatalogDifference>;
  /** Keys a put or removal changed while the check ran. */
  readonly changedDuringCheck: number;
  /** Keys written before version manifests: nothing on the disks to compare with. */
  readonly withoutManifest: number;
  /** Disks that could not be scanned (offline or failed): keys that need them cannot be proven. */
  readonly disksNotScanned: ReadonlyArray<number>;
  readonly unprovable: number;
}

type ProvenState = { kind: 'absent' } | { kind: 'version'; version: PlannedVersion } | { kind: 'unprovable'; why: string };

export async function verifyCatalog(pool: Pool): Promise<CatalogVerification> {
  const before = await pool.catalog.lastSequence();
  const scanned: ScannedDisk[] = [];
  const disksNotScanned: number[] = [];
  for (const member of pool.listMembers()) {
    if (member.disk && member.row.state !== 'failed') scanned.push({ disk: member.disk, path: member.row.path });
    else disksNotScanned.push(member.row.id);
  }
  const { manifests, fragments } = await scanDisks(scanned, undefined);
  const plan = planImport(manifests, fragments, scanned);

  const proven = new Map<string, ProvenState>();
  const changed = new Set<string>();
  for (const [key, history] of plan.keys) {
    if (history.some((step) => step.manifest.sequence > before)) {
      changed.add(key);
      continue;
    }
    let state: ProvenState = { kind: 'absent' };
    for (const step of history) {
      if (step.manifest.kind === 'removal') state = { kind: 'absent' };
      else {
        const version = step as PlannedVersion;
        if (version.fate === 'complete' || version.fate === 'degraded') state = { kind: 'version', version };
        else if (version.fate === 'unreadable') state = { kind: 'unprovable', why: version.why };
        // torn: never committed, the state stays what it was
      }
    }
    proven.set(key, state);
  }

  const differences: CatalogDifference[] = [];
  let keysChecked = 0;
  let withoutManifest = 0;
  let unprovable = 0;
  const inCatalog = new Set<string>();
  for await (const object of pool.catalog.listObjects('')) {
    if (isReservedKey(object.key)) continue;
    inCatalog.add(object.key);
    if (object.sequence > before || changed.has(object.key)) {
      changed.add(object.key);
      continue;
    }
    if (object.sequence === 0) {
      withoutManifest += 1;
      continue;
    }
    keysChecked += 1;
    const said = `version ${object.versionId} (${object.sizeBytes} bytes, sequence ${object.sequence})`;
    const state = proven.get(object.key) ?? { kind: 'absent' };
    if (state.kind === 'unprovable') {
      unprovable += 1;
      continue;
    }
    if (state.kind === 'absent') {
      differences.push({ key: object.key, catalog: said, disks: 'no committed version (removed, or never written)' });
      continue;
    }
    const manifest = state.version.manifest;
    if (manifest.versionId !== object.versionId) {
      differences.push({ key: object.key, catalog: said, disks: `version ${manifest.versionId} (sequence ${manifest.sequence})` });
      continue;
    }
    const extents = await pool.catalog.extentsOf(object.versionId);
    const checksumsAgree =
      extents.length === manifest.extentChecksums.length && extents.every((extent, index) => extent.checksum.equals(manifest.extentChecksums[index] as Buffer));
    const metadata = await pool.catalog.objectMetadata(object.versionId);
    const problems = [
      ...(object.sizeBytes !== manifest.sizeBytes ? [`size ${manifest.sizeBytes}`] : []),
      ...(object.policy !== manifest.policy ? [`policy ${manifest.policy}`] : []),
      ...(checksumsAgree ? [] : ['other extent checksums']),
      ...((metadata?.etag ?? undefined) !== (manifest.metadata?.etag ?? undefined) ? [`ETag ${manifest.metadata?.etag ?? 'none'}`] : []),
    ];
    if (problems.length > 0) differences.push({ key: object.key, catalog: said, disks: `the same version with ${problems.join(', ')}` });
  }
  for (const [key, state] of proven) {
    if (inCatalog.has(key) || isReservedKey(key)) continue;
    if (state.kind === 'version') {
      keysChecked += 1;
      differences.push({ key, catalog: 'no object', disks: `version ${state.version.manifest.versionId} (${state.version.manifest.sizeBytes} bytes, sequence ${state.version.manifest.sequence})` });
    } else if (state.kind === 'unprovable') unprovable += 1;
  }
  return { keysChecked, differences, changedDuringCheck: changed.size, withoutManifest, disksNotScanned, unprovable };
}
