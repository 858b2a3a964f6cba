// --listen values: "HOST:PORT", "[IPv6]:PORT", ":PORT" (all interfaces) or "PORT" (loopback).
import { ShardpoolError } from '../errors.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListenAddress(value: string, flag: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new ShardpoolError('USAGE_INVALID', `${flag} takes HOST:PORT (e.g. 127.0.0.1:9000, [::1]:9000 or :9000), not "${value}"`);
  }
  const host = match[1] ?? match[2] ?? '';
  const bare = /^\d{1,5}$/.test(value);
  return { host: bare ? '127.0.0.1' : host === '' ? '0.0.0.0' : host, port };
}

export function formatListenAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
