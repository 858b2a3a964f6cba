// The CLI put's control: a fresh node process that puts FILE under KEY with the library directly (open, put, close)
// and exits — a CLI process's start-up and cold code without the CLI. bench/cli.ts times its whole run.
import { openInputStream } from '../src/io/durable-files.js';
import { Pool } from '../src/pool/pool.js';

async function main(): Promise<void> {
  const [poolDirectory, key, file] = process.argv.slice(2) as [string, string, string];
  const pool = await Pool.open(poolDirectory, { access: 'write', lockWaitMs: 30_000 });
  try {
    await pool.put(key, openInputStream(file));
  } finally {
    await pool.close();
  }
}

await main();
