// Encrypted objects below the S3 layer: the pool stores their ciphertext like any object's bytes, so scrub and
// rebuild keep working on it; a pool key rotation keeps the older objects readable; `shardpool import` rebuilds a
// catalog that still decrypts them (what decrypts travels in each version's manifest, never a key); losing the key
// file loses the SSE-S3 objects only; and a ciphertext altered behind the checksums' back never returns plaintext.
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Pool } from '../../src/pool/pool.js';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon, type RunningDaemon } from '../support/daemon.js';
import { getBuffer } from '../support/read-object.js';
import { bodyBytes, openCatalog, s3Client, s3Error } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';
import { testCatalogArgs } from '../support/test-catalog.js';
import { customerKey, filesHolding, markedBytes, MARKER } from '../support/sse.js';

const SEGMENT_KEY_ID = (encryption: unknown): string => ((encryption as { segments: Array<{ keyId: string }> }).segments[0] as { keyId: string }).keyId;

test('encrypted objects survive scrub, rebuild, key rotation and import, and a tampered ciphertext is never served', async (t) => {
  const root = await makeTempDir(t, 's3-sse-at-rest');
  const pool = await createCliPool(root, { disks: 4, policy: 'ec:2+1' });
  const disks = [1, 2, 3, 4].map((index) => path.join(root, `disk${index}`));
  const early = markedBytes(150_000);
  const late = markedBytes(70_001).reverse();
  const secret = markedBytes(200_003);
  const alice = customerKey();
  const ssec = { SSECustomerAlgorithm: alice.SSECustomerAlgorithm, SSECustomerKey: alice.SSECustomerKey };
  const expected: ReadonlyArray<[string, Buffer, Record<string, string>]> = [
    ['early', early, {}],
    ['late', late, {}],
    ['secret', secret, ssec],
  ];

  const serve = async (poolDirectory: string): Promise<{ daemon: RunningDaemon; s3: S3Client }> => {
    // An admin: the imported pool's bucket keeps its first owner's name, and each serve adds a user of its own.
    const keys = await addUser(poolDirectory, `u${Math.random().toString(36).slice(2, 8)}`, { admin: true });
    const daemon = await startDaemon(t, poolDirectory, ['--scrub-interval', 'off']);
    const s3 = s3Client(daemon.s3Endpoint, keys);
    return { daemon, s3 };
  };
  const stop = async (served: { daemon: RunningDaemon; s3: S3Client }): Promise<void> => {
    served.s3.destroy();
    assert.equal(await served.daemon.stop(), 0);
  };
  const readsBack = async (s3: S3Client, context: string): Promise<void> => {
    for (const [key, data, extra] of expected) {
      const body = await bodyBytes((await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key, ...extra }))).Body);
      assert.ok(body.equals(data), `${key} decrypts ${context}`);
    }
  };

  {
    const served = await serve(pool);
    try {
      await served.s3.send(new CreateBucketCommand({ Bucket: 'bkt' }));
      await served.s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'early', Body: early, ServerSideEncryption: 'AES256' }));
      // Rotated while the daemon runs: it takes the new key for the next object at once.
      const rotated = JSON.parse((await runCliOk(['sse', 'rotate-key', '--pool', pool, '--json'])).stdout.toString()) as { currentKeyId: string; keys: number };
      assert.equal(rotated.keys, 2, 'the first key stays beside the new one');
      await served.s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'late', Body: late, ServerSideEncryption: 'AES256' }));
      await served.s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'secret', Body: secret, ...ssec }));
      await readsBack(served.s3, 'after a rotation');
      const listed = JSON.parse((await runCliOk(['sse', 'keys', '--pool', pool, '--json'])).stdout.toString()) as { keys: Array<{ id: string; current: boolean }> };
      assert.deepEqual(listed.keys.map((key) => key.current), [false, true]);
      assert.equal(listed.keys[1]?.id, rotated.currentKeyId);
      assert.doesNotMatch(JSON.stringify(listed), /"key"/, 'key material is never printed');
      const catalog = await openCatalog(pool);
      try {
        const keyIdOf = async (key: string) => SEGMENT_KEY_ID((await catalog.objectMetadata((await catalog.getObject(`bkt/${key}`))!.versionId))?.encryption);
        assert.equal(await keyIdOf('late'), rotated.currentKeyId);
        assert.equal(await keyIdOf('early'), listed.keys[0]?.id, 'the older object stays wrapped with the older key');
      } finally {
        await catalog.close();
      }
    } finally {
      await stop(served);
    }
  }
  assert.deepEqual(await filesHolding(root, MARKER), [], 'no disk holds the plaintext');
  const get = await runCli(['get', '--pool', pool, 'bkt/early', '-']);
  assert.equal(get.code, 2);
  assert.match(get.stderr.toString(), /OBJECT_ENCRYPTED/, 'shardpool get refuses what only S3 decrypts');
  assert.equal(get.stdout.length, 0);
  const scrub = JSON.parse((await runCliOk(['scrub', '--pool', pool, '--json'])).stdout.toString()) as { counts: Record<string, number> };
  assert.ok(Object.values(scrub.counts).every((count) => count === 0), `scrub verifies the ciphertext clean: ${JSON.stringify(scrub.counts)}`);

  // The catalog is lost: import rebuilds it from the disks, and with the key file copied back everything decrypts.
  const keyFileCopy = path.join(root, 'sse-keys.json.backup');
  await fs.copyFile(path.join(pool, 'sse-keys.json'), keyFileCopy);
  await fs.rm(pool, { recursive: true });
  const restored = path.join(root, 'restored');
  await runCliOk(['import', '--pool', restored, ...disks.flatMap((disk) => ['--disk', disk]), ...(await testCatalogArgs())]);
  {
    // Without the key file: SSE-C objects read (their key comes with the request), SSE-S3 ones cannot be.
    const served = await serve(restored);
    try {
      const lost = await s3Error(served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'early' })));
      assert.equal(lost.$metadata.httpStatusCode, 500);
      assert.match(lost.message, /SSE_KEY_UNKNOWN/);
      assert.ok((await bodyBytes((await served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'secret', ...ssec }))).Body)).equals(secret));
    } finally {
      await stop(served);
    }
  }
  await fs.copyFile(keyFileCopy, path.join(restored, 'sse-keys.json'));
  await fs.chmod(path.join(restored, 'sse-keys.json'), 0o644);
  {
    const served = await serve(restored);
    try {
      const exposed = await s3Error(served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'early' })));
      assert.match(exposed.message, /SSE_KEY_FILE_EXPOSED/, 'a key file others may read is refused');
      await fs.chmod(path.join(restored, 'sse-keys.json'), 0o600);
      await readsBack(served.s3, 'after import');
    } finally {
      await stop(served);
    }
  }

  // A disk fails: its fragments are rebuilt from the others (ciphertext, like any), and everything still decrypts.
  await runCliOk(['fail-disk', '--pool', restored, '--disk', disks[0] as string]);
  await runCliOk(['rebuild', '--pool', restored]);
  const status = JSON.parse((await runCliOk(['status', '--pool', restored, '--json'])).stdout.toString()) as { extentsBelowFullRedundancy: number };
  assert.equal(status.extentsBelowFullRedundancy, 0);

  // The stored bytes of `early` rewritten with one byte changed — in its first chunk, and in a later one — under the
  // same record: fragments and checksums are consistent (it is a proper version), only the AES-GCM tag can tell.
  const tamper = async (offset: number): Promise<void> => {
    const opened = await Pool.open(restored, { access: 'write', lockWaitMs: 10_000 });
    try {
      const object = await opened.requireObject('bkt/early');
      const metadata = await opened.catalog.objectMetadata(object.versionId);
      assert.ok(metadata?.encryption);
      const stored = await getBuffer(opened, 'bkt/early');
      stored[offset] = (stored[offset] as number) ^ 0x01;
      await opened.put('bkt/early', [stored], { metadata: () => metadata });
    } finally {
      await opened.close();
    }
  };
  await tamper(10);
  {
    const served = await serve(restored);
    try {
      const refused = await s3Error(served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'early' })));
      assert.equal(refused.$metadata.httpStatusCode, 500);
      assert.match(refused.message, /SSE_CIPHERTEXT_INVALID/);
      for (const [key, data, extra] of expected.slice(1)) {
        assert.ok((await bodyBytes((await served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key, ...extra }))).Body)).equals(data), `${key} after a rebuild`);
      }
    } finally {
      await stop(served);
    }
  }
  await tamper(10); // undone
  await tamper(100_000); // in the second chunk: the first goes out before the second fails
  {
    const served = await serve(restored);
    try {
      const answer = await served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'early' }));
      const received: Buffer[] = [];
      await assert.rejects(async () => {
        for await (const chunk of answer.Body as AsyncIterable<Uint8Array>) received.push(Buffer.from(chunk));
      }, 'the body is cut, never completed');
      const body = Buffer.concat(received);
      assert.ok(body.length < early.length && body.length <= 65536, `no byte past the failing chunk went out (${body.length})`);
      assert.ok(early.subarray(0, body.length).equals(body));
      const ranged = await s3Error(served.s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'early', Range: 'bytes=99000-99999' })));
      assert.match(ranged.message, /SSE_CIPHERTEXT_INVALID/, 'a range in the altered chunk is refused');
    } finally {
      await stop(served);
    }
  }
  assert.equal((await runCli(['recover', '--pool', restored])).code, 0);
});
