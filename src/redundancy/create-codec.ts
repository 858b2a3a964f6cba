import type { Codec } from './codec.js';
import { formatPolicy, type Policy } from './policy.js';
import { ReedSolomonCodec } from './reed-solomon.js';
import { ReplicationCodec } from './replication.js';

// Codecs hold no per-call state, so one per policy serves every caller (the Reed–Solomon context is reusable
// concurrently, per the library).
const codecs = new Map<string, Codec>();

export function createCodec(policy: Policy): Codec {
  const name = formatPolicy(policy);
  let codec = codecs.get(name);
  if (codec === undefined) {
    codec = policy.kind === 'replica' ? new ReplicationCodec(policy) : new ReedSolomonCodec(policy);
    codecs.set(name, codec);
  }
  return codec;
}
