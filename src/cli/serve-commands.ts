// The daemon and its access keys: serve, user add / list / rm.
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import { ShardpoolError } from '../errors.js';
import { openPoolCatalog } from '../pool/catalog/open-catalog.js';
import { Daemon } from '../serve/daemon.js';
import { parseListenAddress } from '../serve/listen-address.js';
import { S3Catalog, userNotFound } from '../serve/s3/s3-catalog.js';
import { directIoMode, jsonOption, lockWaitMs, optionsOf, poolDirectory, poolOption, printJson, printLine, type CommonOptions } from './context.js';
import { formatTable, parseDuration, parseRate } from './units.js';

const DEFAULT_LISTEN = '127.0.0.1:9000';
const DEFAULT_METRICS_LISTEN = '127.0.0.1:9108';
const DEFAULT_REGION = 'us-east-1';

export function registerServeCommands(program: Command, runCommand: (argv: string[]) => Promise<number>): void {
  program
    .command('serve')
    .description(
      'run the pool as a service: an S3-compatible API, /metrics and /health, scheduled background scrub, JSON logs on\n' +
        'stdout. While it runs, other shardpool commands on this pool are carried out by it. Stops cleanly on SIGTERM/SIGINT',
    )
    .addOption(poolOption())
    .option('--listen <host:port>', 'address of the S3 API', DEFAULT_LISTEN)
    .option('--metrics-listen <host:port|off>', 'address of /metrics and /health, or off', DEFAULT_METRICS_LISTEN)
    .addOption(new Option('--region <name>', 'the region name clients sign requests for').env('SHARDPOOL_REGION').default(DEFAULT_REGION))
    .option('--scrub-interval <duration|off>', 'how often the whole pool is scrubbed in the background (e.g. 7d, 12h), or off', '7d')
    .option('--scrub-rate <bytes/s>', 'read rate of the background scrub (its intensity), e.g. 50MiB/s', '64MiB/s')
    .option('--no-scrub-repair', 'only report what the background scrub finds; do not repair it')
    .option(
      '--body-idle-timeout <duration>',
      'how long a request body may send nothing before the request is aborted (400 RequestTimeout, nothing stored)',
      '30s',
    )
    .option('--shutdown-timeout <duration>', 'how long a stop waits for requests in flight before cutting them', '30s')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ shardpool user add --pool /srv/pool backup-job      (prints an access key id and secret)\n' +
        '  $ shardpool serve --pool /srv/pool --listen 0.0.0.0:9000 --metrics-listen 127.0.0.1:9108\n' +
        '  $ aws --endpoint-url http://127.0.0.1:9000 s3 mb s3://photos\n' +
        '\nClients must use path-style addressing (http://HOST:PORT/BUCKET/KEY) and AWS Signature Version 4.',
    )
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const log = pino({ level: String(options.logLevel), base: { pid: process.pid, service: 'shardpool' } });
      const metricsListen = String(options.metricsListen);
      const scrubInterval = String(options.scrubInterval);
      const daemon = await Daemon.start({
        poolDirectory: poolDirectory(options),
        listen: parseListenAddress(String(options.listen), '--listen'),
        metricsListen: metricsListen === 'off' ? undefined : parseListenAddress(metricsListen, '--metrics-listen'),
        region: String(options.region),
        scrub:
          scrubInterval === 'off'
            ? undefined
            : {
                intervalMs: parseDuration(scrubInterval, '--scrub-interval'),
                rateBytesPerSecond: parseRate(String(options.scrubRate), '--scrub-rate'),
                repair: options.scrubRepair !== false,
              },
        directIo: directIoMode(options),
        lockWaitMs: lockWaitMs(options),
        bodyIdleTimeoutMs: positiveDuration(String(options.bodyIdleTimeout), '--body-idle-timeout'),
        shutdownTimeoutMs: parseDuration(String(options.shutdownTimeout), '--shutdown-timeout'),
        runCommand,
        log,
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          daemon.stop(signal).then(resolve, (error: unknown) => {
            log.error({ err: error }, 'stopping failed');
            resolve();
          });
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
    });

  const user = program.command('user').description('S3 access keys kept in the pool, and what each may do: add, list, allow, deny, rm');
  user
    .command('add')
    .description('create an access key for NAME and print its id and secret (the secret is shown only here)')
    .argument('<name>', 'who the key is for: letters, digits, . _ @ -')
    .option('--admin', 'the key may do anything with every bucket (otherwise: its own buckets, and those it is allowed)')
    .addOption(poolOption())
    .addOption(jsonOption())
    .addHelpText('after', '\nExample:\n  $ shardpool user add --pool /srv/pool backup-job --json\n  {"accessKeyId": "SP…", "secretAccessKey": "…"}')
    .action(async (name: string, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      const created = await withS3Catalog(options, (s3) => s3.addUser(name, { admin: options['admin'] === true }));
      if (options.json) {
        printJson({ accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey, admin: created.admin });
        return;
      }
      printLine(`user             ${created.name}${created.admin ? ' (admin)' : ''}`);
      printLine(`accessKeyId      ${created.accessKeyId}`);
      printLine(`secretAccessKey  ${created.secretAccessKey}`);
      printLine('keep the secret safe: shardpool cannot show it again (remove the user and add it anew to replace it)');
    });
  user
    .command('list')
    .description('list the users with access keys and what each may do (never their secrets)')
    .addOption(poolOption())
    .addOption(jsonOption())
    .action(async (_options: unknown, command: Command) => {
      const options = optionsOf(command);
      const { users, buckets, grants } = await withS3Catalog(options, async (s3) => ({ users: await s3.listUsers(), buckets: await s3.listBuckets(), grants: await s3.listGrants() }));
      // Built field by field: the secret is never in what is printed.
      const rows = users.map((row) => ({
        name: row.name,
        accessKeyId: row.accessKeyId,
        admin: row.admin,
        owns: buckets.filter((bucket) => bucket.owner === row.name).map((bucket) => bucket.name),
        grants: grants.filter((grant) => grant.user === row.name).map((grant) => ({ bucket: grant.bucket, read: grant.read, write: grant.write, owner: grant.owner })),
        createdAt: new Date(row.createdAtMs).toISOString(),
      }));
      if (options.json) {
        printJson(rows);
        return;
      }
      const access = (row: (typeof rows)[number]): string => {
        if (row.admin) return 'admin: every bucket';
        const granted = row.grants.map((grant) => `${grant.bucket}:${grant.read ? 'r' : ''}${grant.write ? 'w' : ''}${grant.owner ? 'o' : ''}`);
        const all = [...row.owns.map((name) => `${name}:owner`), ...granted];
        return all.length === 0 ? '-' : all.join(' ');
      };
      printLine(
        rows.length === 0
          ? 'no users (add one with: shardpool user add NAME)'
          : formatTable(['NAME', 'ACCESS KEY ID', 'ACCESS', 'CREATED'], rows.map((row) => [row.name, row.accessKeyId, access(row), row.createdAt])),
      );
    });
  for (const allow of [true, false]) {
    const verb = allow ? 'allow' : 'deny';
    user
      .command(verb)
      .description(
        allow
          ? 'let NAME read, write or manage (owner) a bucket it does not own, or make it an admin'
          : 'take permissions on a bucket away from NAME (all of them when none is named), or its admin rights',
      )
      .argument('<name>', 'the user')
      .option('--bucket <bucket>', 'the bucket')
      .option('--read', 'GET, HEAD and list objects')
      .option('--write', 'put, copy into, delete objects; multipart uploads')
      .option('--owner', "manage the bucket as its owner: ACLs, deleting it")
      .option('--admin', allow ? 'every operation on every bucket' : 'no longer an admin')
      .addOption(poolOption())
      .addOption(jsonOption())
      .addHelpText('after', `\nExample:\n  $ shardpool user ${verb} --pool /srv/pool reporting --bucket logs --read`)
      .action(async (name: string, _options: unknown, command: Command) => {
        const options = optionsOf(command);
        const flags = { read: options['read'] === true, write: options['write'] === true, owner: options['owner'] === true };
        const bucket = typeof options['bucket'] === 'string' ? options['bucket'] : undefined;
        if (options['admin'] === true) {
          if (bucket !== undefined || flags.read || flags.write || flags.owner) throw new ShardpoolError('USAGE_INVALID', '--admin concerns every bucket: give it without --bucket, --read, --write or --owner');
          await withS3Catalog(options, (s3) => s3.setAdmin(name, allow));
          if (options.json) printJson({ user: name, admin: allow });
          else printLine(allow ? `${name} is an admin: it may do anything with every bucket` : `${name} is no longer an admin`);
          return;
        }
        if (bucket === undefined) throw new ShardpoolError('USAGE_INVALID', `user ${verb} needs --bucket BUCKET (or --admin)`);
        if (allow && !flags.read && !flags.write && !flags.owner) throw new ShardpoolError('USAGE_INVALID', 'user allow needs --read, --write and/or --owner');
        // deny without a flag takes everything away.
        const named = !allow && !flags.read && !flags.write && !flags.owner ? { read: true, write: true, owner: true } : flags;
        const grant = await withS3Catalog(options, (s3) => s3.changeGrant({ user: name, bucket, allow, ...named }));
        if (options.json) {
          printJson(grant);
          return;
        }
        const held = (['read', 'write', 'owner'] as const).filter((permission) => grant[permission]);
        printLine(`${name} on ${bucket}: ${held.length === 0 ? 'no access (unless it owns the bucket or is an admin)' : held.join(', ')}`);
      });
  }
  user
    .command('rm')
    .description("remove NAME's access key and its grants; requests signed with it are refused from then on (buckets it owns stay its by name)")
    .argument('<name>', 'the user')
    .addOption(poolOption())
    .addOption(jsonOption())
    .action(async (name: string, _options: unknown, command: Command) => {
      const options = optionsOf(command);
      const removed = await withS3Catalog(options, (s3) => s3.removeUser(name));
      if (!removed) throw userNotFound(name);
      if (options.json) printJson({ removed: name });
      else printLine(`removed user ${name}`);
    });
}

/** A duration that must not be zero (a zero idle timeout would abort every upload at once). */
function positiveDuration(text: string, flag: string): number {
  const ms = parseDuration(text, flag);
  if (ms <= 0) throw new ShardpoolError('USAGE_INVALID', `${flag} must be longer than 0, not "${text}"`);
  return ms;
}

/**
 * Users live in the catalog; changing them needs neither the pool lock nor the disks, so these commands work the same
 * while the daemon runs (SQLite serialises the writes, and the daemon reads keys afresh for every request).
 */
async function withS3Catalog<T>(options: CommonOptions, work: (s3: S3Catalog) => Promise<T>): Promise<T> {
  const { catalog } = await openPoolCatalog(poolDirectory(options), { create: false });
  try {
    return await work(S3Catalog.of(catalog));
  } finally {
    await catalog.close();
  }
}
