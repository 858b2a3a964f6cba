// Self-describing object values for the torture test. Every byte of a write's body is a pure function of its write id
// and its offset, so the checker can regenerate any legal value (or any slice of one) instead of keeping bodies, and
// a body read back names the writes it came from. Layout of one value, block by block:
//
//   block b (4096 bytes, the last one may be short; a value shorter than 16 bytes is a prefix of block 0):
//   offset  0  u32 BE  magic 0x54525456 ("TRTV")
//   offset  4  u32 BE  write id (unique in a run)
//   offset  8  u32 BE  block index b
//   offset 12  u32 BE  length of the whole value in bytes
//   offset 16  4080 bytes of xorshift32 output seeded by (write id, block index)
//
// A multipart object is the concatenation of its parts' values (segments); every part but the last is a multiple of
// 4096 bytes, so every block header of the object still starts at a multiple of 4096 from the object's start.
import { createHash } from 'node:crypto';

export const VALUE_BLOCK_BYTES = 4096;
const HEADER_BYTES = 16;
const MAGIC = 0x54525456;

/** One write's bytes inside a value: the write that produced them and how many there are. */
export interface Segment {
  readonly writeId: number;
  readonly lengthBytes: number;
}

/** What a key can hold: nothing (never written, or deleted), or the concatenation of one or more segments. */
export type Value = { readonly absent: true } | { readonly absent: false; readonly segments: ReadonlyArray<Segment> };

export const ABSENT: { readonly absent: true } = { absent: true };

export function valueOf(segments: ReadonlyArray<Segment>): Value {
  return { absent: false, segments: segments.filter((segment) => segment.lengthBytes > 0) };
}

export function sizeOf(value: Value): number {
  return value.absent ? 0 : value.segments.reduce((sum, segment) => sum + segment.lengthBytes, 0);
}

/** A stable name for a value: "absent", "empty" or "w12:70000+w13:4096". Equal names mean equal bytes. */
export function nameOf(value: Value): string {
  if (value.absent) return 'absent';
  if (value.segments.length === 0) return 'empty';
  return value.segments.map((segment) => `w${segment.writeId}:${segment.lengthBytes}`).join('+');
}

/** The body of one write: `lengthBytes` bytes of write `writeId`. */
export function segmentBytes(writeId: number, lengthBytes: number): Buffer {
  return sliceOfSegment({ writeId, lengthBytes }, 0, lengthBytes);
}

/** Bytes [startByte, endByteExclusive) of a present value. */
export function valueSlice(value: Value, startByte: number, endByteExclusive: number): Buffer {
  if (value.absent) throw new Error('an absent value has no bytes');
  const pieces: Buffer[] = [];
  let segmentStart = 0;
  for (const segment of value.segments) {
    const segmentEnd = segmentStart + segment.lengthBytes;
    const from = Math.max(startByte, segmentStart);
    const to = Math.min(endByteExclusive, segmentEnd);
    if (from < to) pieces.push(sliceOfSegment(segment, from - segmentStart, to - segmentStart));
    segmentStart = segmentEnd;
  }
  return Buffer.concat(pieces);
}

function sliceOfSegment(segment: Segment, startByte: number, endByteExclusive: number): Buffer {
  const out = Buffer.alloc(endByteExclusive - startByte);
  const firstBlock = Math.floor(startByte / VALUE_BLOCK_BYTES);
  const lastBlock = Math.floor((endByteExclusive - 1) / VALUE_BLOCK_BYTES);
  for (let block = firstBlock; block <= lastBlock && out.length > 0; block += 1) {
    const bytes = blockBytes(segment.writeId, block, segment.lengthBytes);
    const blockStart = block * VALUE_BLOCK_BYTES;
    const from = Math.max(startByte, blockStart) - blockStart;
    const to = Math.min(endByteExclusive, blockStart + VALUE_BLOCK_BYTES) - blockStart;
    bytes.copy(out, blockStart + from - startByte, from, to);
  }
  return out;
}

function blockBytes(writeId: number, blockIndex: number, valueLengthBytes: number): Buffer {
  const block = Buffer.alloc(VALUE_BLOCK_BYTES);
  block.writeUInt32BE(MAGIC, 0);
  block.writeUInt32BE(writeId >>> 0, 4);
  block.writeUInt32BE(blockIndex >>> 0, 8);
  block.writeUInt32BE(valueLengthBytes >>> 0, 12);
  let state = (Math.imul(writeId ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(blockIndex + 1, 0xc2b2ae35)) >>> 0 || 1;
  for (let offset = HEADER_BYTES; offset < VALUE_BLOCK_BYTES; offset += 4) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    block.writeUInt32BE(state, offset);
  }
  return block;
}

/** What a read saw, kept instead of the bytes: which range of how large an object, a digest, the writes it names. */
export type Observation =
  | { readonly absent: true }
  | {
      readonly absent: false;
      readonly objectSizeBytes: number;
      readonly startByte: number;
      readonly endByteExclusive: number;
      readonly sha256: string;
      /** Write ids in the block headers found at 4096-byte boundaries of the object (diagnostics only). */
      readonly writeIdsSeen: ReadonlyArray<number>;
    }
  /** A ranged read answered 416: the object existed and was at most `sizeBytesAtMost` bytes long. */
  | { readonly absent: false; readonly rangeNotSatisfiable: true; readonly sizeBytesAtMost: number };

export function observe(body: Buffer, options: { objectSizeBytes: number; startByte: number }): Observation {
  return {
    absent: false,
    objectSizeBytes: options.objectSizeBytes,
    startByte: options.startByte,
    endByteExclusive: options.startByte + body.length,
    sha256: digest(body),
    writeIdsSeen: writeIdsIn(body, options.startByte),
  };
}

function writeIdsIn(body: Buffer, startByte: number): number[] {
  const seen = new Set<number>();
  const first = Math.ceil(startByte / VALUE_BLOCK_BYTES) * VALUE_BLOCK_BYTES - startByte;
  for (let offset = first; offset + 8 <= body.length; offset += VALUE_BLOCK_BYTES) {
    if (body.readUInt32BE(offset) === MAGIC) seen.add(body.readUInt32BE(offset + 4));
  }
  return [...seen];
}

function digest(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Matches observations against values, remembering the digests it computed (the same slices recur). */
export class ValueMatcher {
  private readonly digests = new Map<string, string>();

  matches(value: Value, observation: Observation): boolean {
    if (value.absent || observation.absent) return value.absent === observation.absent;
    if ('rangeNotSatisfiable' in observation) return sizeOf(value) <= observation.sizeBytesAtMost;
    if (sizeOf(value) !== observation.objectSizeBytes) return false;
    const name = `${nameOf(value)}@${observation.startByte}-${observation.endByteExclusive}`;
    let expected = this.digests.get(name);
    if (expected === undefined) {
      expected = digest(valueSlice(value, observation.startByte, observation.endByteExclusive));
      this.digests.set(name, expected);
    }
    return expected === observation.sha256;
  }
}
