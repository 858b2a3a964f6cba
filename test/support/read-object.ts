// Reading a whole object back in a test (no engine choice involved: the bench's torture imports it through
// pool-audit.ts, and must not pull in the PostgreSQL test harness).
import type { Pool } from '../../src/pool/pool.js';

export async function getBuffer(pool: Pool, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await pool.openObject(key)).chunks()) chunks.push(chunk);
  return Buffer.concat(chunks);
}
