// The daemon around the S3 API: CLI commands carried out by it while it holds the pool, /health, /metrics in the
// Prometheus text format, background scrub, and a clean stop on SIGTERM that finishes the upload in flight.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { listFilesRecursively, makeTempDir } from '../support/temp-dir.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

test('while serve runs, CLI commands on the pool are carried out by the daemon', async (t) => {
  const root = await makeTempDir(t, 'serve-cli');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+2' });
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const data = randomBytes(200_000);
  await fs.writeFile(path.join(root, 'input.bin'), data);

  const put = await runCli(['put', '--pool', pool, 'notes/a.bin', 'input.bin'], { cwd: root });
  assert.equal(put.code, 0, put.stderr);
  assert.match(put.stdout.toString('utf8'), /stored "notes\/a.bin"/);
  const piped = await runCliOk(['put', '--pool', pool, 'notes/b.bin'], { input: data });
  assert.match(piped.stdout.toString('utf8'), /stored/);
  const got = await runCliOk(['get', '--pool', pool, 'notes/a.bin']);
  assert.equal(sha256(got.stdout), sha256(data));
  await runCliOk(['get', '--pool', pool, 'notes/b.bin', 'copy.bin'], { cwd: root });
  assert.equal(sha256(await fs.readFile(path.join(root, 'copy.bin'))), sha256(data));
  const ls = await runCliOk(['ls', '--pool', pool, '--json']);
  assert.deepEqual((JSON.parse(ls.stdout.toString('utf8')) as Array<{ key: string }>).map((entry) => entry.key), ['notes/a.bin', 'notes/b.bin']);
  const status = await runCliOk(['status', '--pool', pool, '--json']);
  assert.equal((JSON.parse(status.stdout.toString('utf8')) as { objectCount: number }).objectCount, 2);
  const scrub = await runCli(['scrub', '--pool', pool, '--repair', '--json']);
  assert.equal(scrub.code, 0, scrub.stderr);
  const missing = await runCli(['get', '--pool', pool, 'nope']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^shardpool: error OBJECT_NOT_FOUND: /);
  const rm = await runCli(['rm', '--pool', pool, 'notes/b.bin'], { env: { SHARDPOOL_POOL: pool } });
  assert.equal(rm.code, 0, rm.stderr);
  assert.ok(daemon.logs.some((entry) => entry['msg'] === 'running a forwarded command'), 'the commands went through the daemon');

  assert.equal(await daemon.stop('SIGTERM'), 0);
  await assert.rejects(fs.stat(path.join(pool, 'serve.sock')), 'the command socket is removed on stop');
  // After the daemon, the CLI opens the pool itself again.
  const after = await runCliOk(['get', '--pool', pool, 'notes/a.bin']);
  assert.equal(sha256(after.stdout), sha256(data));
});

test('/health and /metrics; background scrub runs and is counted', async (t) => {
  const root = await makeTempDir(t, 'serve-ops');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+2' });
  await runCliOk(['put', '--pool', pool, 'seed.bin'], { input: randomBytes(300_000) });
  const keys = await addUser(pool);
  const daemon = await startDaemon(t, pool, ['--scrub-interval', '1s', '--scrub-rate', '1GiB/s']);
  const s3 = new S3Client({ endpoint: daemon.s3Endpoint, region: 'us-east-1', credentials: keys, forcePathStyle: true });
  t.after(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'metrics' }));
  await s3.send(new PutObjectCommand({ Bucket: 'metrics', Key: 'a', Body: randomBytes(70_000) }));
  await daemon.waitForLog(/background scrub completed/);

  const health = await fetch(`${daemon.opsEndpoint}/health`);
  assert.equal(health.status, 200);
  const healthBody = (await health.json()) as { status: string; disks: { healthy: number } };
  assert.equal(healthBody.status, 'ok');
  assert.equal(healthBody.disks.healthy, 4);

  const response = await fetch(`${daemon.opsEndpoint}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /text\/plain/);
  const families = parsePrometheusTextFormat(await response.text());
  const family = (name: string) => {
    const found = families.find((entry) => entry.name === name);
    assert.ok(found, `metric ${name} is exported`);
    return found;
  };
  for (const entry of families) {
    assert.match(entry.name, /^shardpool_[a-z0-9_]+$/);
    assert.ok(entry.help.length > 0, `${entry.name} has HELP`);
    if (entry.type === 'COUNTER') assert.match(entry.name, /_total$/, `counter ${entry.name} ends in _total`);
  }
  const latency = family('shardpool_disk_io_duration_seconds');
  assert.equal(latency.type, 'HISTOGRAM');
  assert.ok(latency.metrics.some((metric) => Number(metric.buckets?.['+Inf'] ?? 0) > 0), 'I/O latency is observed');
  const states = family('shardpool_disk_state').metrics as Array<{ labels: Record<string, string>; value: string }>;
  assert.equal(states.filter((metric) => metric.labels['state'] === 'healthy' && metric.value === '1').length, 4);
  assert.ok(Number((family('shardpool_disk_capacity_bytes').metrics[0] as { value: string }).value) > 0);
  assert.ok(family('shardpool_commit_batch_size').metrics.length > 0);
  const requests = family('shardpool_s3_requests_total').metrics as Array<{ labels: Record<string, string>; value: string }>;
  assert.ok(requests.some((metric) => metric.labels['operation'] === 'PutObject' && metric.labels['status'] === '200' && Number(metric.value) >= 1));
  assert.equal(Number((family('shardpool_pool_objects').metrics[0] as { value: string }).value), 2);
  const written = family('shardpool_disk_write_bytes_total').metrics as Array<{ value: string }>;
  assert.ok(written.length === 4 && written.every((metric) => Number(metric.value) > 0), 'every disk counted its writes');
  assert.equal(Number((family('shardpool_scrub_progress_ratio').metrics[0] as { value: string }).value), 1);
  assert.ok(Number((family('shardpool_scrub_last_completion_timestamp_seconds').metrics[0] as { value: string }).value) > 0);
  assert.equal(daemon.logs.every((entry) => typeof entry['level'] === 'number' && typeof entry['time'] === 'number'), true, 'logs are pino JSON');
  // A failed disk shows at once: its state, the data below full redundancy, /health degraded, degraded reads counted.
  await runCliOk(['fail-disk', '--pool', pool, '--disk', '1']);
  await runCliOk(['get', '--pool', pool, 'seed.bin']);
  const after = parsePrometheusTextFormat(await (await fetch(`${daemon.opsEndpoint}/metrics`)).text());
  const value = (name: string, labels: Record<string, string> = {}) =>
    Number(
      after
        .find((entry) => entry.name === name)
        ?.metrics.find((metric) => Object.entries(labels).every(([label, wanted]) => metric.labels?.[label] === wanted))?.value ?? NaN,
    );
  assert.equal(value('shardpool_disk_state', { disk: '1', state: 'failed' }), 1);
  assert.ok(value('shardpool_pool_extents_degraded') > 0, 'extents below full redundancy are reported');
  assert.equal(value('shardpool_pool_extents_unreadable'), 0);
  assert.ok(value('shardpool_degraded_reads_total') > 0, 'the degraded read is counted');
  assert.equal(((await (await fetch(`${daemon.opsEndpoint}/health`)).json()) as { status: string }).status, 'degraded');
  assert.equal(await daemon.stop('SIGINT'), 0);
});

test('SIGTERM lets the upload in flight finish and closes the pool cleanly', async (t) => {
  const root = await makeTempDir(t, 'serve-stop');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+2' });
  const keys = await addUser(pool);
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const s3 = new S3Client({ endpoint: daemon.s3Endpoint, region: 'us-east-1', credentials: keys, forcePathStyle: true, maxAttempts: 1 });
  t.after(() => s3.destroy());
  await s3.send(new CreateBucketCommand({ Bucket: 'uploads' }));
  const big = randomBytes(24 * 1024 * 1024);
  // The body trickles in over about a second, so the stop surely arrives while the upload is in flight.
  const slowBody = Readable.from(
    (async function* () {
      for (let offset = 0; offset < big.length; offset += 1024 * 1024) {
        await new Promise((resolve) => setTimeout(resolve, 40));
        yield big.subarray(offset, offset + 1024 * 1024);
      }
    })(),
  );
  const upload = s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: 'big', Body: slowBody, ContentLength: big.length }));
  // Stop while the body is still arriving.
  await new Promise((resolve) => setTimeout(resolve, 250));
  const stopped = daemon.stop('SIGTERM');
  const result = await upload;
  assert.ok(result.ETag);
  assert.equal(await stopped, 0);
  const stopping = daemon.logs.findIndex((entry) => String(entry['msg']).startsWith('stopping'));
  const putLogged = daemon.logs.findIndex((entry) => entry['operation'] === 'PutObject');
  assert.ok(stopping >= 0 && putLogged > stopping, 'the upload was still in flight when the stop began');
  assert.ok(daemon.logs.some((entry) => String(entry['msg']).startsWith('stopped: the pool is closed cleanly')));
  const got = await runCliOk(['get', '--pool', pool, 'uploads/big']);
  assert.equal(sha256(got.stdout), sha256(big));
  const recover = await runCli(['recover', '--pool', pool, '--json']);
  assert.equal(recover.code, 0, `nothing left behind: ${recover.stdout.toString('utf8')}`);
  const files = await listFilesRecursively(pool);
  assert.ok(!files.includes('serve.sock'));
});

test('block-device disks report group-commit flushes, capacity and I/O through /metrics', async (t) => {
  const root = await makeTempDir(t, 'serve-device');
  const pool = path.join(root, 'pool');
  await runCliOk(['init', '--pool', pool, '--policy', 'ec:2+2', '--extent-size', '64KiB']);
  for (let index = 1; index <= 4; index += 1) {
    const image = path.join(root, `disk${index}.img`);
    await fs.writeFile(image, '');
    await fs.truncate(image, 256 * 1024 * 1024);
    await runCliOk(['add-disk', '--pool', pool, '--disk', image, '--device', '--yes']);
  }
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const data = randomBytes(500_000);
  await runCliOk(['put', '--pool', pool, 'on-devices.bin'], { input: data });
  assert.equal(sha256((await runCliOk(['get', '--pool', pool, 'on-devices.bin'])).stdout), sha256(data));
  const families = parsePrometheusTextFormat(await (await fetch(`${daemon.opsEndpoint}/metrics`)).text());
  const values = (name: string) =>
    (families.find((entry) => entry.name === name)?.metrics ?? []).map((metric) => ({ labels: metric.labels ?? {}, value: Number(metric.value) }));
  assert.equal(values('shardpool_device_flushes_total').filter((metric) => metric.value > 0).length, 4);
  assert.equal(values('shardpool_device_group_commits_total').filter((metric) => metric.value > 0).length, 4);
  assert.ok(values('shardpool_disk_capacity_bytes').every((metric) => metric.value > 200 * 1024 * 1024 && metric.labels['kind'] === 'block-device'));
  assert.ok(values('shardpool_disk_read_bytes_total').some((metric) => metric.value > 0));
  assert.equal(values('shardpool_io_alignment_failures_total')[0]?.value, 0);
  assert.equal(await daemon.stop(), 0);
});
