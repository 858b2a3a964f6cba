// ec:K+M through @ronomon/reed-solomon: a native, constant-time-per-byte Reed–Solomon coder over GF(2^8) that runs
// on the libuv threadpool (off the event loop) and encodes or repairs any set of shards in one call.
//
// Layout: the extent is cut into K data shards of `shardLengthBytes` (ceil(extent / K) rounded up to 8 bytes, the
// library's word size); the last shard is zero-padded. M parity shards follow. Fragment i is shard i.
import { createRequire } from 'node:module';
import { assert } from '../assert.js';
import { EC_SHARD_ALIGNMENT_BYTES } from '../constants.js';
import type { Codec } from './codec.js';
import type { Policy } from './policy.js';
import { unrecoverable } from './unrecoverable.js';

interface ReedSolomonLibrary {
  create(k: number, m: number): unknown;
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error: Error | undefined) => void,
  ): void;
}

// Loaded with the first codec, not at import: a command that codes nothing never loads the addon.
let library: ReedSolomonLibrary | undefined;

function reedSolomon(): ReedSolomonLibrary {
  library ??= createRequire(import.meta.url)('@ronomon/reed-solomon') as ReedSolomonLibrary;
  return library;
}

type EcPolicy = Extract<Policy, { kind: 'ec' }>;

export class ReedSolomonCodec implements Codec {
  readonly fragmentCount: number;
  readonly fragmentsNeeded: number;
  private readonly context: unknown;

  constructor(readonly policy: EcPolicy) {
    this.fragmentsNeeded = policy.dataFragments;
    this.fragmentCount = policy.dataFragments + policy.parityFragments;
    this.context = reedSolomon().create(policy.dataFragments, policy.parityFragments);
  }

  fragmentLengthBytes(extentLengthBytes: number): number {
    const unpadded = Math.ceil(extentLengthBytes / this.policy.dataFragments);
    return Math.ceil(unpadded / EC_SHARD_ALIGNMENT_BYTES) * EC_SHARD_ALIGNMENT_BYTES;
  }

  async encode(extent: Buffer, allocate: (lengthBytes: number) => Buffer = (lengthBytes) => Buffer.allocUnsafe(lengthBytes)): Promise<Buffer[]> {
    const { dataFragments: k, parityFragments: m } = this.policy;
    const shardBytes = this.fragmentLengthBytes(extent.length);
    // When the extent divides into K whole shards (every full extent of a power-of-two size does), the shards are
    // views of it: the coder only reads the sources, so no copy is needed. A short last extent is copied and padded.
    const data = extent.length === shardBytes * k ? extent : Buffer.alloc(shardBytes * k);
    if (data !== extent) extent.copy(data);
    // Not zero-filled: the coder writes every byte of the parity shards it is asked for.
    const parity = shardBytes > 0 ? allocate(shardBytes * m) : Buffer.alloc(0);
    if (shardBytes > 0) await this.run(data, parity, maskOf(range(0, k)), maskOf(range(k, k + m)));
    return [...shardsOf(data, k, shardBytes), ...shardsOf(parity, m, shardBytes)];
  }

  assemblyBytes(extentLengthBytes: number): number {
    return this.fragmentLengthBytes(extentLengthBytes) * this.policy.dataFragments;
  }

  slotOf(assembly: Buffer, fragmentIndex: number, extentLengthBytes: number): Buffer | undefined {
    assert(assembly.length === this.assemblyBytes(extentLengthBytes), 'an assembly holds every data shard');
    if (fragmentIndex >= this.policy.dataFragments) return undefined;
    const shardBytes = this.fragmentLengthBytes(extentLengthBytes);
    return assembly.subarray(fragmentIndex * shardBytes, (fragmentIndex + 1) * shardBytes);
  }

  async decode(fragments: ReadonlyArray<Buffer | undefined>, extentLengthBytes: number): Promise<Buffer> {
    const k = this.policy.dataFragments;
    const shardBytes = this.fragmentLengthBytes(extentLengthBytes);
    const dataPresent = range(0, k).every((index) => fragments[index]?.length === shardBytes);
    // Fast path: all data shards are intact, so the extent is their concatenation; no coding needed. When they
    // already lie end to end in one buffer (read into their slots of an assembly), that is the extent: no copy.
    if (dataPresent && shardBytes > 0 && laidEndToEnd(fragments.slice(0, k) as Buffer[])) {
      const first = fragments[0] as Buffer;
      return Buffer.from(first.buffer, first.byteOffset, extentLengthBytes);
    }
    const shards = dataPresent ? fragments : await this.withRebuilt(fragments, shardBytes, range(0, k));
    const extent = Buffer.concat(range(0, k).map((index) => shards[index] as Buffer));
    return extent.subarray(0, extentLengthBytes);
  }

  async reconstruct(
    fragments: ReadonlyArray<Buffer | undefined>,
    extentLengthBytes: number,
    wanted: ReadonlyArray<number>,
  ): Promise<Map<number, Buffer>> {
    const shardBytes = this.fragmentLengthBytes(extentLengthBytes);
    const shards = await this.withRebuilt(fragments, shardBytes, wanted);
    return new Map(wanted.map((index) => [index, shards[index] as Buffer]));
  }

  /** Returns all shards, with the `wanted` ones that were missing recreated from at least K intact ones. */
  private async withRebuilt(
    fragments: ReadonlyArray<Buffer | undefined>,
    shardBytes: number,
    wanted: ReadonlyArray<number>,
  ): Promise<ReadonlyArray<Buffer | undefined>> {
    const { dataFragments: k, parityFragments: m } = this.policy;
    assert(fragments.length === k + m, 'one slot per fragment');
    for (const index of wanted) assert(index >= 0 && index < k + m, 'wanted fragment index is within the policy');
    const present = range(0, k + m).filter((index) => fragments[index]?.length === shardBytes);
    if (present.length < k) throw unrecoverable(this.policy, present.length, k);
    const targets = wanted.filter((index) => !present.includes(index));
    if (targets.length === 0 || shardBytes === 0) {
      return range(0, k + m).map((index) => fragments[index] ?? Buffer.alloc(shardBytes));
    }
    const data = Buffer.alloc(shardBytes * k);
    const parity = Buffer.alloc(shardBytes * m);
    for (const index of present) {
      const fragment = fragments[index] as Buffer;
      if (index < k) fragment.copy(data, index * shardBytes);
      else fragment.copy(parity, (index - k) * shardBytes);
    }
    await this.run(data, parity, maskOf(present), maskOf(targets));
    return [...shardsOf(data, k, shardBytes), ...shardsOf(parity, m, shardBytes)];
  }

  private run(data: Buffer, parity: Buffer, sources: number, targets: number): Promise<void> {
    return new Promise((resolve, reject) => {
      reedSolomon().encode(this.context, sources, targets, data, 0, data.length, parity, 0, parity.length, (error) =>
        error ? reject(error) : resolve(),
      );
    });
  }
}

/** True when each buffer starts where the previous one ends, in the same memory. */
function laidEndToEnd(buffers: ReadonlyArray<Buffer>): boolean {
  const first = buffers[0] as Buffer;
  let offset = first.byteOffset;
  for (const buffer of buffers) {
    if (buffer.buffer !== first.buffer || buffer.byteOffset !== offset) return false;
    offset += buffer.length;
  }
  return true;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, offset) => from + offset);
}

function maskOf(indexes: ReadonlyArray<number>): number {
  // k + m ≤ 30, so the mask fits a positive 31-bit integer.
  return indexes.reduce((mask, index) => mask | (1 << index), 0);
}

function shardsOf(buffer: Buffer, count: number, shardBytes: number): Buffer[] {
  return range(0, count).map((index) => buffer.subarray(index * shardBytes, (index + 1) * shardBytes));
}
