// Tenants and access control through the AWS SDK: two users who must not see each other's buckets, a user granted
// read only, anonymous requests reaching only what public-read opens, and the ACL operations answering what holds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketAclCommand,
  PutObjectAclCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { runCli, runCliOk } from '../support/cli.js';
import { createCliPool } from '../support/cli-pool.js';
import { addUser, startDaemon } from '../support/daemon.js';
import { bodyBytes, s3Client as client, s3Error } from '../support/s3-client.js';
import { makeTempDir } from '../support/temp-dir.js';

test('tenants: users see only their own buckets, grants open read, anonymous reaches only public-read', async (t) => {
  const root = await makeTempDir(t, 's3-tenants');
  const pool = await createCliPool(root, { disks: 3, policy: 'ec:2+1' });
  const aliceKeys = await addUser(pool, 'alice');
  const bobKeys = await addUser(pool, 'bob');
  const readerKeys = await addUser(pool, 'reader');
  const daemon = await startDaemon(t, pool, ['--scrub-interval', 'off']);
  const alice = client(daemon.s3Endpoint, aliceKeys);
  const bob = client(daemon.s3Endpoint, bobKeys);
  const reader = client(daemon.s3Endpoint, readerKeys);
  t.after(() => [alice, bob, reader].forEach((c) => c.destroy()));
  const anonymous = (path: string, method = 'GET') => fetch(`${daemon.s3Endpoint}${path}`, { method });

  await alice.send(new CreateBucketCommand({ Bucket: 'alice-data' }));
  await bob.send(new CreateBucketCommand({ Bucket: 'bob-data' }));
  await alice.send(new PutObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt', Body: 'alice only' }));
  await bob.send(new PutObjectCommand({ Bucket: 'bob-data', Key: 'b.txt', Body: 'bob only' }));

  await t.test('each user lists, reads, writes and deletes only its own buckets', async () => {
    assert.deepEqual((await alice.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['alice-data']);
    assert.deepEqual((await bob.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['bob-data']);
    assert.equal((await alice.send(new ListBucketsCommand({}))).Owner?.ID, 'alice');
    for (const attempt of [
      () => bob.send(new GetObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' })),
      () => bob.send(new ListObjectsV2Command({ Bucket: 'alice-data' })),
      () => bob.send(new PutObjectCommand({ Bucket: 'alice-data', Key: 'x', Body: 'x' })),
      () => bob.send(new DeleteObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' })),
      () => bob.send(new CreateMultipartUploadCommand({ Bucket: 'alice-data', Key: 'm' })),
      () => bob.send(new CopyObjectCommand({ Bucket: 'bob-data', Key: 'stolen', CopySource: 'alice-data/secret.txt' })),
      () => bob.send(new GetBucketAclCommand({ Bucket: 'alice-data' })),
    ]) {
      const error = await s3Error(attempt());
      assert.equal(error.name, 'AccessDenied');
      assert.equal(error.$metadata.httpStatusCode, 403);
    }
    const deleted = await bob.send(new DeleteObjectsCommand({ Bucket: 'alice-data', Delete: { Objects: [{ Key: 'secret.txt' }] } }));
    assert.equal(deleted.Errors?.[0]?.Code, 'AccessDenied');
    assert.equal(await (await alice.send(new GetObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' }))).Body?.transformToString(), 'alice only');
    assert.equal((await s3Error(bob.send(new CreateBucketCommand({ Bucket: 'alice-data' })))).name, 'BucketAlreadyExists');
  });

  await t.test('a user granted read may read and list, not write; deny takes it back', async () => {
    await runCliOk(['user', 'allow', '--pool', pool, 'reader', '--bucket', 'alice-data', '--read']);
    assert.deepEqual((await reader.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['alice-data']);
    assert.deepEqual(await bodyBytes((await reader.send(new GetObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' }))).Body), Buffer.from('alice only'));
    assert.equal((await reader.send(new ListObjectsV2Command({ Bucket: 'alice-data' }))).KeyCount, 1);
    assert.equal((await s3Error(reader.send(new PutObjectCommand({ Bucket: 'alice-data', Key: 'y', Body: 'y' })))).name, 'AccessDenied');
    assert.equal((await s3Error(reader.send(new DeleteObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' })))).name, 'AccessDenied');
    const acl = await alice.send(new GetBucketAclCommand({ Bucket: 'alice-data' }));
    assert.equal(acl.Owner?.ID, 'alice');
    assert.ok(acl.Grants?.some((grant) => grant.Grantee?.ID === 'reader' && grant.Permission === 'READ'));
    await runCliOk(['user', 'deny', '--pool', pool, 'reader', '--bucket', 'alice-data']);
    assert.equal((await s3Error(reader.send(new GetObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' })))).name, 'AccessDenied');
    const missing = await runCli(['user', 'allow', '--pool', pool, 'reader', '--bucket', 'no-such-bucket', '--read']);
    assert.match(missing.stderr, /BUCKET_NOT_FOUND/);
  });

  await t.test('anonymous requests: 403 on private, 200/404 under public-read, object ACLs per object', async () => {
    assert.equal((await anonymous('/')).status, 403);
    assert.equal((await anonymous('/alice-data/secret.txt')).status, 403);
    assert.equal((await anonymous('/alice-data')).status, 403);
    assert.equal((await anonymous('/alice-data/secret.txt', 'DELETE')).status, 403);
    await alice.send(new PutBucketAclCommand({ Bucket: 'alice-data', ACL: 'public-read' }));
    assert.equal(await (await anonymous('/alice-data/secret.txt')).text(), 'alice only');
    assert.equal((await anonymous('/alice-data/secret.txt', 'HEAD')).status, 200);
    assert.equal((await anonymous('/alice-data/missing')).status, 404);
    assert.match(await (await anonymous('/alice-data?list-type=2')).text(), /secret\.txt/);
    assert.equal((await anonymous('/alice-data/secret.txt', 'DELETE')).status, 403);
    assert.ok((await alice.send(new GetBucketAclCommand({ Bucket: 'alice-data' }))).Grants?.some((grant) => grant.Grantee?.URI?.endsWith('/AllUsers') && grant.Permission === 'READ'));
    await alice.send(new PutBucketAclCommand({ Bucket: 'alice-data', ACL: 'private' }));
    assert.equal((await anonymous('/alice-data/secret.txt')).status, 403);
    // One object public in a private bucket.
    await bob.send(new PutObjectCommand({ Bucket: 'bob-data', Key: 'public.txt', Body: 'hello', ACL: 'public-read' }));
    assert.equal(await (await anonymous('/bob-data/public.txt')).text(), 'hello');
    assert.equal((await anonymous('/bob-data/b.txt')).status, 403);
    assert.equal((await anonymous('/bob-data/missing')).status, 403);
    assert.equal((await anonymous('/bob-data')).status, 403);
    assert.ok((await bob.send(new GetObjectAclCommand({ Bucket: 'bob-data', Key: 'public.txt' }))).Grants?.some((grant) => grant.Permission === 'READ'));
    await bob.send(new PutObjectAclCommand({ Bucket: 'bob-data', Key: 'public.txt', ACL: 'private' }));
    assert.equal((await anonymous('/bob-data/public.txt')).status, 403);
    // An overwrite without an ACL is private again, as S3 does.
    await bob.send(new PutObjectAclCommand({ Bucket: 'bob-data', Key: 'public.txt', ACL: 'public-read' }));
    await bob.send(new PutObjectCommand({ Bucket: 'bob-data', Key: 'public.txt', Body: 'new' }));
    assert.equal((await anonymous('/bob-data/public.txt')).status, 403);
    assert.equal((await s3Error(bob.send(new PutObjectCommand({ Bucket: 'bob-data', Key: 'k', Body: 'k', ACL: 'authenticated-read' })))).name, 'NotImplemented');
  });

  await t.test('an admin sees and reaches every bucket; user list never shows a secret', async () => {
    const rootKeys = JSON.parse((await runCliOk(['user', 'add', '--pool', pool, 'root', '--admin', '--json'])).stdout.toString('utf8')) as { accessKeyId: string; secretAccessKey: string };
    const admin = client(daemon.s3Endpoint, rootKeys);
    try {
      assert.deepEqual((await admin.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name), ['alice-data', 'bob-data']);
      assert.equal(await (await admin.send(new GetObjectCommand({ Bucket: 'alice-data', Key: 'secret.txt' }))).Body?.transformToString(), 'alice only');
    } finally {
      admin.destroy();
    }
    for (const args of [['user', 'list', '--pool', pool], ['user', 'list', '--pool', pool, '--json']]) {
      const out = (await runCliOk(args)).stdout.toString('utf8');
      for (const keys of [aliceKeys, bobKeys, readerKeys, rootKeys]) assert.ok(!out.includes(keys.secretAccessKey), 'no secret in user list');
      assert.match(out, /alice/);
    }
  });

  assert.equal(await daemon.stop('SIGTERM'), 0);
});
