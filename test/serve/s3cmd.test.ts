// A command-line S3 client from Debian (s3cmd, installed by .ci/run) against `shardpool serve`: bucket and object
// commands, a multipart upload, and its own MD5 checks of what it downloads.
import { writeS3cmdConfig } from '../support/s3cmd-config.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { makeTempDir } from '../support/temp-dir.js';

const run = promisify(execFile);

async function s3cmdAvailable(): Promise<string | undefined> {
  try {
    await run('s3cmd', ['--version']);
    return undefined;
  } catch {
    return 's3cmd is not installed (bash .ci/run installs it)';
  }
}

const missing = await s3cmdAvailable();
if (missing && process.env['CI'] === 'true') throw new Error(`under CI the s3cmd test must run: ${missing}`);

test('s3cmd: mb, put (single and multipart), ls, get with MD5 check, del, rb', { skip: missing }, async (t) => {
  const root = await makeTempDir(t, 's3cmd');
  const pool = await createCliPool(root, { disks: 6, policy: 'ec:4+2' });
  const keys = await addUser(pool, 's3cmd');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const host = daemon.s3Endpoint.replace('http://', '');
  const config = path.join(root, 's3cfg');
  await writeS3cmdConfig(config, host, keys, ['check_ssl_certificate = False']);
  const s3cmd = async (...args: string[]) => {
    try {
      return (await run('s3cmd', ['-c', config, '--no-progress', ...args], { cwd: root })).stdout;
    } catch (error) {
      const failure = error as { stdout?: string; stderr?: string };
      throw new Error(`s3cmd ${args.join(' ')} failed: ${failure.stderr ?? ''}${failure.stdout ?? ''}`);
    }
  };
  const small = randomBytes(100_000);
  const large = randomBytes(12 * 1024 * 1024 + 7);
  await fs.writeFile(path.join(root, 'small.bin'), small);
  await fs.writeFile(path.join(root, 'large.bin'), large);

  await s3cmd('mb', 's3://backups');
  assert.match(await s3cmd('ls'), /s3:\/\/backups/);
  await s3cmd('put', 'small.bin', 's3://backups/daily/small.bin');
  await s3cmd('put', '--multipart-chunk-size-mb=5', 'large.bin', 's3://backups/daily/large.bin');
  const listing = await s3cmd('ls', '--recursive', 's3://backups');
  assert.match(listing, /s3:\/\/backups\/daily\/small\.bin/);
  assert.match(listing, /s3:\/\/backups\/daily\/large\.bin/);
  assert.match(await s3cmd('ls', 's3://backups/'), /DIR\s+s3:\/\/backups\/daily\//);
  await s3cmd('get', 's3://backups/daily/small.bin', 'small.copy');
  await s3cmd('get', 's3://backups/daily/large.bin', 'large.copy');
  const digest = (data: Buffer) => createHash('sha256').update(data).digest('hex');
  assert.equal(digest(await fs.readFile(path.join(root, 'small.copy'))), digest(small));
  assert.equal(digest(await fs.readFile(path.join(root, 'large.copy'))), digest(large));
  const info = await s3cmd('info', 's3://backups/daily/small.bin');
  assert.match(info, new RegExp(createHash('md5').update(small).digest('hex')));
  await s3cmd('del', '--recursive', '--force', 's3://backups/daily/');
  await s3cmd('rb', 's3://backups');
  assert.doesNotMatch(await s3cmd('ls'), /backups/);
  assert.equal(await daemon.stop(), 0);
});
