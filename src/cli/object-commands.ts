// Object commands: put, get, ls, stat, rm.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { ShardpoolError } from '../errors.js';
import { fileSizeBytes, openInputStream, pathKind, writeStreamDurable } from '../io/durable-files.js';
import type { ObjectRow } from '../pool/catalog/catalog.js';
import type { ObjectReader } from '../pool/object-reader.js';
import type { Pool } from '../pool/pool.js';
import type { ObjectDescription } from '../pool/status.js';
import { parsePolicy } from '../redundancy/policy.js';
import {
  jsonOption,
  optionsOf,
  poolOption,
  printJson,
  printLine,
  progressEnabled,
  warn,
  withPool,
  withPoolCatalog,
  type CommonOptions,
} from './context.js';
import { startByteProgress } from './progress.js';
import { formatBytes, formatTable } from './units.js';
import { resolveUserPath, terminal } from './terminal.js';

const STANDARD_STREAM = '-';

export function registerObjectCommands(program: Command): void {
  program
    .command('put')
    .description('store FILE (or standard input) under KEY; an existing KEY is replaced atomically')
    .argument('<key>', 'the object key: 1–1024 bytes of UTF-8 without control characters')
    .argument('[file]', 'the file to store; - or absent reads standard input')
    .addOption(poolOption())
    .option('--policy <policy>', 'redundancy for this object (default: the pool default), e.g. replica:3 or ec:8+3')
    .option('--no-progress', 'do not draw a progress bar')
    .addOption(jsonOption())
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool put --pool /srv/pool photos/cat.jpg ./cat.jpg\n' +
        '  $ tar c ./project | shardpool put --pool /srv/pool backups/project.tar --policy replica:3',
    )
    .action(async (key: string, file: string | undefined, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      const policy = options.policy === undefined ? undefined : parsePolicy(String(options.policy));
      const input = await openPutInput(file);
      const progress = startByteProgress({ label: 'put', totalBytes: input.sizeBytes, enabled: progressEnabled(options) });
      const result = await withPool(options, 'write', async (pool) => {
        try {
          return await pool.put(key, input.stream, { policy, onProgress: (bytes) => progress.update(bytes) });
        } finally {
          progress.stop();
          input.stream.destroy();
        }
      }, 'shared');
      const { object } = result;
      if (options.json) {
        printJson({ ...object, replacedVersionId: result.replacedVersionId ?? null });
        return;
      }
      printLine(
        `stored ${JSON.stringify(object.key)}: ${formatBytes(object.sizeBytes)} in ${object.extentCount} extents, ` +
          `${object.policy}${result.replacedVersionId ? ' (replaced the previous version)' : ''}`,
      );
    });

  program
    .command('get')
    .description('read KEY back, verified, to FILE (or standard output); rebuilds from redundancy if it must')
    .argument('<key>', 'the object key')
    .argument('[file]', 'where to write; - or absent writes standard output. FILE appears only when complete')
    .addOption(poolOption())
    .option('--no-progress', 'do not draw a progress bar')
    .addHelpText(
      'after',
      '\nExamples:\n  $ shardpool get --pool /srv/pool photos/cat.jpg ./cat.jpg\n' +
        '  $ shardpool get --pool /srv/pool backups/project.tar | tar x',
    )
    .action(async (key: string, file: string | undefined, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      await withPool(options, 'read', async (pool) => {
        const reader = await pool.openObject(key);
        await refuseEncrypted(pool, reader);
        const toStdout = file === undefined || file === STANDARD_STREAM;
        const progress = startByteProgress({
          label: 'get',
          totalBytes: reader.object.sizeBytes,
          // The bar shares the terminal with the data when writing to standard output; draw it only for files.
          enabled: progressEnabled(options) && !toStdout,
        });
        try {
          const chunks = countingChunks(reader, (bytes) => progress.update(bytes));
          if (toStdout) await writeToStdout(chunks);
          else await writeToFile(resolveUserPath(file), chunks);
        } finally {
          progress.stop();
          reader.close();
        }
        reportDegradedRead(reader);
      });
    });

  program
    .command('ls')
    .description('list objects, optionally only those whose key starts with PREFIX')
    .argument('[prefix]', 'key prefix', '')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool ls --pool /srv/pool photos/')
    .action(async (prefix: string, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      await withPoolCatalog(options, async (pool) => {
        const objects: ObjectRow[] = [];
        for await (const object of pool.listObjects(prefix)) objects.push(object);
        if (options.json) {
          printJson(
            objects.map((object) => ({
              key: object.key,
              sizeBytes: object.sizeBytes,
              policy: object.policy,
              extentCount: object.extentCount,
              versionId: object.versionId,
              createdAt: new Date(object.createdAtMs).toISOString(),
            })),
          );
          return;
        }
        if (objects.length === 0) return;
        printLine(
          formatTable(
            ['SIZE', 'POLICY', 'CREATED', 'KEY'],
            objects.map((object) => [
              formatBytes(object.sizeBytes),
              object.policy,
              new Date(object.createdAtMs).toISOString().replace(/\.\d+Z$/, 'Z'),
              // JSON quoting keeps keys with spaces or unusual characters unambiguous, one per line.
              /^[\x21-\x7e]+$/.test(object.key) ? object.key : JSON.stringify(object.key),
            ]),
          ),
        );
      });
    });

  program
    .command('stat')
    .description('show one object: size, policy, extents, where each fragment lives, and its health')
    .argument('<key>', 'the object key')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool stat --pool /srv/pool photos/cat.jpg --json')
    .action(async (key: string, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      const description = await withPool(options, 'read', async (pool) => pool.statObject(key));
      if (options.json) printJson(description);
      else printLine(formatObject(description));
    });

  program
    .command('rm')
    .description('remove KEY; its fragments are deleted and their space freed')
    .argument('<key>', 'the object key')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool rm --pool /srv/pool photos/cat.jpg')
    .action(async (key: string, _options: unknown, command: Command) => {
      const options: CommonOptions = optionsOf(command);
      const removed = await withPool(options, 'write', (pool) => pool.removeObject(key), 'shared');
      if (options.json) printJson({ removed: removed.key, sizeBytes: removed.sizeBytes, versionId: removed.versionId });
      else printLine(`removed ${JSON.stringify(removed.key)} (${formatBytes(removed.sizeBytes)})`);
    });
}

async function openPutInput(file: string | undefined): Promise<{ stream: Readable; sizeBytes: number | undefined }> {
  if (file === undefined || file === STANDARD_STREAM) {
    if (file === undefined && terminal().stdin.isTTY) {
      // Almost always a forgotten FILE argument; `-` still reads a terminal on purpose.
      throw new ShardpoolError('USAGE_INVALID', 'put reads standard input, which is a terminal: pass FILE, pipe data in, or use - to type it');
    }
    return { stream: terminal().stdin, sizeBytes: undefined };
  }
  file = resolveUserPath(file);
  const kind = await pathKind(file);
  if (kind === 'missing') throw new ShardpoolError('INPUT_NOT_FOUND', `input file ${file} does not exist`, { file });
  if (kind === 'directory') {
    throw new ShardpoolError('INPUT_NOT_FOUND', `input ${file} is a directory; put stores one file or stream`, { file });
  }
  return { stream: openInputStream(file), sizeBytes: kind === 'file' ? await fileSizeBytes(file) : undefined };
}

async function* countingChunks(reader: ObjectReader, onProgress: (bytes: number) => void): AsyncGenerator<Buffer> {
  let doneBytes = 0;
  for await (const chunk of reader.chunks()) {
    doneBytes += chunk.length;
    onProgress(doneBytes);
    yield chunk;
  }
}

export async function writeToStdout(chunks: AsyncIterable<Buffer>): Promise<void> {
  try {
    // pipeline honours back-pressure: extents are read only as fast as the consumer takes them.
    await pipeline(Readable.from(chunks), terminal().stdout);
  } catch (error) {
    // The reader went away (`get KEY | head`): that is the consumer's choice, not a failure of ours.
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') return;
    if (error instanceof ShardpoolError) throw error;
    throw new ShardpoolError('OUTPUT_FAILED', `cannot write to standard output: ${(error as Error).message}`, {}, {
      cause: error,
    });
  }
}

export async function writeToFile(file: string, chunks: AsyncIterable<Buffer>, options: { mode?: number } = {}): Promise<void> {
  try {
    await writeStreamDurable(file, chunks, options);
  } catch (error) {
    if (error instanceof ShardpoolError) throw error;
    throw new ShardpoolError('OUTPUT_FAILED', `cannot write ${file}: ${(error as Error).message}`, { file }, {
      cause: error,
    });
  }
}

function reportDegradedRead(reader: ObjectReader): void {
  const { extentsDegraded, fragmentFailures } = reader.stats;
  if (extentsDegraded === 0) return;
  const reasons = [...new Set(fragmentFailures.map((failure) => `disk ${failure.diskId}: ${failure.reason}`))];
  warn(
    `${JSON.stringify(reader.object.key)} was read degraded: ${extentsDegraded} of ${reader.object.extentCount} ` +
      `extents were rebuilt from redundancy (${reasons.join(', ')}); the data is intact and verified`,
  );
}

function formatObject(object: ObjectDescription): string {
  const lines = [
    `key       ${JSON.stringify(object.key)}`,
    `size      ${formatBytes(object.sizeBytes)} (${object.sizeBytes} bytes)`,
    `policy    ${object.policy}, extent size ${formatBytes(object.extentSizeBytes)}, ${object.extentCount} extents`,
    `version   ${object.versionId}, created ${object.createdAt}`,
    `health    ${object.health}` +
      (object.health === 'healthy'
        ? ''
        : ` (${object.extentsBelowFullRedundancy} extents below full redundancy, ${object.extentsUnreadable} unreadable)`),
  ];
  if (object.extents.length > 0) {
    lines.push(
      '',
      formatTable(
        ['EXTENT', 'LENGTH', 'HEALTH', 'FRAGMENTS (index@disk)'],
        object.extents.map((extent) => [
          String(extent.index),
          formatBytes(extent.lengthBytes),
          extent.health,
          extent.fragments
            .map((fragment) => `${fragment.index}@${fragment.diskId}${fragment.available ? '' : `(${fragment.diskState})`}`)
            .join(' '),
        ]),
      ),
    );
  }
  return lines.join('\n');
}

/**
 * An object the S3 API encrypted at rest is ciphertext to the pool: `get` would write bytes no one can use as the
 * object, so it is refused, pointing to S3 (which decrypts it with its key).
 */
async function refuseEncrypted(pool: Pool, reader: ObjectReader): Promise<void> {
  const encryption = (await pool.catalog.objectMetadata(reader.object.versionId))?.encryption;
  if (encryption === undefined) return;
  reader.close();
  throw new ShardpoolError(
    'OBJECT_ENCRYPTED',
    `${JSON.stringify(reader.object.key)} is encrypted at rest (${String(encryption.kind)}) by the S3 API: read it through S3 (GetObject), which decrypts it`,
    { key: reader.object.key },
  );
}
