// Encryption at rest in tests: a plaintext that shows wherever it is stored in the clear, a scan of the disks for it,
// and SSE-C keys as the AWS SDK takes them.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export const MARKER = Buffer.from('<<shardpool-sse-plaintext-marker:0123456789abcdef>>');

/** `length` bytes of the marker repeated: a plaintext any fragment holding it in the clear would show. */
export function markedBytes(length: number): Buffer {
  const data = Buffer.alloc(length);
  for (let offset = 0; offset < length; offset += MARKER.length) MARKER.copy(data, offset);
  return data;
}

/** Every file under the disk directories holding `needle`. */
export async function filesHolding(root: string, needle: Buffer): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/^disk\d+$/.test(path.relative(root, entry.parentPath).split(path.sep)[0] ?? '')) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await fs.readFile(file)).includes(needle)) found.push(file);
  }
  return found;
}

export function customerKey(): { SSECustomerAlgorithm: 'AES256'; SSECustomerKey: string; md5: string } {
  const key = randomBytes(32);
  return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: key.toString('base64'), md5: createHash('md5').update(key).digest('base64') };
}

