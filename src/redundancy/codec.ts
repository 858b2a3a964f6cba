// The one interface the pool uses to turn an extent into fragments and back, whatever the policy.
import type { Policy } from './policy.js';

export interface Codec {
  readonly policy: Policy;
  /** Fragments per extent (replica: N copies; ec: K + M). */
  readonly fragmentCount: number;
  /** Intact fragments needed to rebuild an extent (replica: 1; ec: K). */
  readonly fragmentsNeeded: number;

  /** Bytes of each fragment for an extent of `extentLengthBytes` (all fragments of an extent have this length). */
  fragmentLengthBytes(extentLengthBytes: number): number;

  /**
   * Encode one extent into exactly `fragmentCount` fragments, index 0 first. For ec, fragments 0..K-1 are the
   * data (zero-padded to the shard length) and K..K+M-1 the parity. Never mutates `extent`. Memory for the
   * fragments it creates comes from `allocate` when given (a writer chooses its alignment), else from Node.
   */
  encode(extent: Buffer, allocate?: (lengthBytes: number) => Buffer): Promise<Buffer[]>;

  /**
   * Where fragment `fragmentIndex` lies, whole, inside an extent being assembled in `assembly` (a buffer of
   * `assemblyBytes` bytes): ec data fragments at their shard's place, any replica over the whole. undefined for a
   * fragment that has no such place (ec parity). A reader that reads fragments straight into these slots lets decode
   * return the assembly without copying.
   */
  slotOf(assembly: Buffer, fragmentIndex: number, extentLengthBytes: number): Buffer | undefined;
  assemblyBytes(extentLengthBytes: number): number;

  /**
   * Rebuild the extent from the fragments that survive: `fragments[i]` is fragment i or undefined when it is
   * missing or failed verification. Needs at least `fragmentsNeeded` present; throws EXTENT_UNRECOVERABLE otherwise.
   * Returns exactly `extentLengthBytes` bytes.
   */
  decode(fragments: ReadonlyArray<Buffer | undefined>, extentLengthBytes: number): Promise<Buffer>;

  /**
   * Recreate the fragments whose indexes are in `wanted` from the surviving ones (for repair, rebuild and drain).
   * Same availability rule as decode.
   */
  reconstruct(
    fragments: ReadonlyArray<Buffer | undefined>,
    extentLengthBytes: number,
    wanted: ReadonlyArray<number>,
  ): Promise<Map<number, Buffer>>;
}
