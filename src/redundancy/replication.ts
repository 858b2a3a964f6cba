// replica:N: every fragment is a full copy of the extent. Any one intact copy is enough.
import { assert } from '../assert.js';
import type { Codec } from './codec.js';
import type { Policy } from './policy.js';
import { unrecoverable } from './unrecoverable.js';

export class ReplicationCodec implements Codec {
  readonly fragmentCount: number;
  readonly fragmentsNeeded = 1;

  constructor(readonly policy: Extract<Policy, { kind: 'replica' }>) {
    this.fragmentCount = policy.copies;
  }

  fragmentLengthBytes(extentLengthBytes: number): number {
    return extentLengthBytes;
  }

  async encode(extent: Buffer): Promise<Buffer[]> {
    // Fragments are only read by the writer, so the copies may share the extent's memory.
    return Array.from({ length: this.fragmentCount }, () => extent);
  }

  assemblyBytes(extentLengthBytes: number): number {
    return extentLengthBytes;
  }

  slotOf(assembly: Buffer, fragmentIndex: number, extentLengthBytes: number): Buffer | undefined {
    assert(assembly.length === extentLengthBytes && fragmentIndex >= 0 && fragmentIndex < this.fragmentCount, 'a slot of an assembly');
    return assembly;
  }

  async decode(fragments: ReadonlyArray<Buffer | undefined>, extentLengthBytes: number): Promise<Buffer> {
    const copy = this.firstCopy(fragments, extentLengthBytes);
    assert(copy.length === extentLengthBytes, 'a replica has the extent length');
    return copy;
  }

  async reconstruct(
    fragments: ReadonlyArray<Buffer | undefined>,
    extentLengthBytes: number,
    wanted: ReadonlyArray<number>,
  ): Promise<Map<number, Buffer>> {
    const copy = this.firstCopy(fragments, extentLengthBytes);
    const rebuilt = new Map<number, Buffer>();
    for (const index of wanted) {
      assert(index >= 0 && index < this.fragmentCount, 'wanted fragment index is within the policy');
      rebuilt.set(index, copy);
    }
    return rebuilt;
  }

  private firstCopy(fragments: ReadonlyArray<Buffer | undefined>, extentLengthBytes: number): Buffer {
    assert(fragments.length === this.fragmentCount, 'one slot per fragment');
    const copy = fragments.find((fragment) => fragment !== undefined && fragment.length === extentLengthBytes);
    if (copy === undefined) throw unrecoverable(this.policy, 0, this.fragmentsNeeded);
    return copy;
  }
}
