// The daemon's command socket: a `shardpool` command started while `shardpool serve` holds the pool is run by the
// daemon against its open pool instead of failing with POOL_BUSY. The client sends its command line, working
// directory and terminal facts, then its standard input; the daemon sends back standard output, standard error and
// the exit code. Every message is a frame: 1 byte type, 4 bytes big-endian length, payload.

export const COMMAND_SOCKET_NAME = 'serve.sock';
/** The longest path a unix socket can be bound at (sun_path is 108 bytes, one of them the terminating zero). */
export const SOCKET_PATH_MAX_BYTES = 107;

/**
 * Without a daemon, the CLI process holding the pool lock for an object write (put, rm) takes the object writes of
 * other CLI processes on this socket while it runs (cli/hand-off.ts). Its clients wait for `started` before they
 * send standard input, so a command it declines (closing the connection before `started`) ran nowhere and lost
 * nothing, and the client may take it elsewhere. The daemon's socket keeps the protocol older clients speak.
 */
export const HAND_OFF_SOCKET_NAME = 'handoff.sock';

export const FRAME = {
  /** client → daemon, first frame: JSON CommandHello. */
  hello: 0x48,
  /** client → daemon: standard input bytes; an empty payload-less `stdinEnd` closes it. */
  stdin: 0x49,
  stdinEnd: 0x45,
  /** client → daemon: Ctrl-C. */
  interrupt: 0x43,
  /** daemon → client. */
  stdout: 0x4f,
  stderr: 0x52,
  /** daemon → client, last frame: JSON { exitCode }. */
  exit: 0x58,
  /** daemon → client, first frame: the command runs now (see HAND_OFF_SOCKET_NAME); older clients ignore it. */
  started: 0x53,
} as const;

export interface CommandHello {
  readonly argv: string[];
  readonly cwd: string;
  readonly stdinIsTty: boolean;
  readonly stdoutIsTty: boolean;
  readonly stderrIsTty: boolean;
  readonly columns: number | undefined;
}

const HEADER_BYTES = 5;
/** Larger frames are a protocol error (clients send input in pieces of at most 1 MiB). */
const FRAME_PAYLOAD_MAX_BYTES = 16 * 1024 * 1024;

export function encodeFrame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** Cuts a byte stream into frames, whatever the packet boundaries. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(data: Buffer): Array<{ type: number; payload: Buffer }> {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    const frames: Array<{ type: number; payload: Buffer }> = [];
    while (this.pending.length >= HEADER_BYTES) {
      const length = this.pending.readUInt32BE(1);
      if (length > FRAME_PAYLOAD_MAX_BYTES) throw new Error(`command socket frame of ${length} bytes is too large`);
      if (this.pending.length < HEADER_BYTES + length) break;
      frames.push({ type: this.pending.readUInt8(0), payload: this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length) });
      this.pending = this.pending.subarray(HEADER_BYTES + length);
    }
    return frames;
  }
}
