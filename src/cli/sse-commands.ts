// Server-side encryption keys of the S3 API: sse keys, sse rotate-key. The SSE-S3 pool keys live in POOL/sse-keys.json
// (mode 0600, outside the catalog: docs/operations.md § Encryption at rest); these commands never print key material.
import type { Command } from 'commander';
import { readPoolConfig } from '../pool/catalog/open-catalog.js';
import { keyFilePath, readKeyFile, rotatePoolKey } from '../serve/s3/sse-keys.js';
import { jsonOption, optionsOf, poolDirectory, poolOption, printJson, printLine } from './context.js';
import { formatTable } from './units.js';

export function registerSseCommands(program: Command): void {
  const sse = program.command('sse').description('the SSE-S3 pool keys that wrap encrypted objects\' data keys: keys, rotate-key');
  sse
    .command('keys')
    .description('list the pool keys (ids and creation times, never the keys) and which one new objects use')
    .addOption(poolOption())
    .addOption(jsonOption())
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const directory = poolDirectory(options);
      await readPoolConfig(directory);
      const file = await readKeyFile(directory);
      const rows = (file?.keys ?? []).map((key) => ({ id: key.id, createdAt: new Date(key.createdAtMs).toISOString(), current: key.id === file?.currentKeyId }));
      if (options.json) {
        printJson({ keyFile: keyFilePath(directory), keys: rows });
        return;
      }
      if (rows.length === 0) {
        printLine(`no pool key yet: ${keyFilePath(directory)} is created when the first SSE-S3 object is stored (or by shardpool sse rotate-key)`);
        return;
      }
      printLine(formatTable(['KEY ID', 'CREATED', 'CURRENT'], rows.map((row) => [row.id, row.createdAt, row.current ? 'yes' : ''])));
    });
  sse
    .command('rotate-key')
    .description(
      'add a new pool key and make it the one new SSE-S3 objects are wrapped with; older keys stay in the file to\n' +
        'unwrap the objects written with them. A running daemon uses the new key at once. Back up the key file after it',
    )
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExample:\n  $ shardpool sse rotate-key --pool /srv/pool\n  new current key 3f9a0c1d2e4b5a69 (2 keys in /srv/pool/sse-keys.json): back up the key file\n' +
        'On a cluster, copy the file to every node that serves the pool afterwards (docs/operations.md § Encryption at rest).',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const directory = poolDirectory(options);
      await readPoolConfig(directory);
      const rotated = await rotatePoolKey(directory);
      if (options.json) {
        printJson({ keyFile: keyFilePath(directory), currentKeyId: rotated.keyId, keys: rotated.keys });
        return;
      }
      printLine(`new current key ${rotated.keyId} (${rotated.keys} key${rotated.keys === 1 ? '' : 's'} in ${keyFilePath(directory)}): back up the key file`);
    });
}
