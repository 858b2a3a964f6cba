// A fragment service on 127.0.0.1 (an ephemeral port) in front of local disks, and a client with remote disks on it:
// what another node of the cluster would see. Everything is closed when the test ends.
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { formatDirectoryDisk, openDirectoryDisk, type DirectoryDisk } from '../../src/disk/directory/directory-disk.js';
import type { Disk } from '../../src/disk/disk.js';
import { newUuid } from '../../src/format/uuid.js';
import { makeTempDir } from './temp-dir.js';
import { FragmentClient, type FragmentClientOptions } from '../../src/disk/remote/fragment-client.js';
import { openRemoteDisk, type RemoteDisk } from '../../src/disk/remote/remote-disk.js';
import { startFragmentService, type FragmentServiceListener, type FragmentServiceOptions } from '../../src/serve/fragment-service.js';

export interface ServedDisks {
  readonly service: FragmentServiceListener;
  readonly clusterKey: Buffer;
  readonly nodeName: string;
  /** A client of the pool (node "caller"), closed with the test; `options` override its settings. */
  client(options?: Partial<FragmentClientOptions>): FragmentClient;
  /** The remote disk in front of `disk`, through a client (the default one unless given). */
  remote(disk: Disk, client?: FragmentClient): Promise<RemoteDisk>;
}

export async function serveDisks(
  t: TestContext,
  disks: ReadonlyArray<Disk>,
  options: { poolUuid?: string; nodeName?: string; service?: Partial<FragmentServiceOptions> & { tls?: { cert: string; key: string } } } = {},
): Promise<ServedDisks> {
  const clusterKey = randomBytes(32);
  const poolUuid = options.poolUuid ?? (disks[0] as Disk).poolUuid;
  const nodeName = options.nodeName ?? 'owner';
  const service = await startFragmentService({
    poolUuid,
    nodeName,
    clusterKey,
    diskByUuid: (uuid) => disks.find((disk) => disk.diskUuid === uuid),
    listDisks: () => disks,
    host: '127.0.0.1',
    port: 0,
    ...options.service,
  });
  t.after(() => service.close());
  const clients: FragmentClient[] = [];
  t.after(() => {
    for (const client of clients) client.close();
  });
  const client = (overrides: Partial<FragmentClientOptions> = {}) => {
    const made = new FragmentClient({ poolUuid, nodeName: 'caller', clusterKey, ...overrides }, undefined);
    clients.push(made);
    return made;
  };
  const shared = client();
  const remote = async (disk: Disk, through: FragmentClient = shared) => {
    const opened = await openRemoteDisk({ nodeName, baseUrl: service.url, poolUuid, diskUuid: disk.diskUuid, kind: disk.kind, path: disk.path, client: through });
    t.after(() => opened.close());
    return opened;
  };
  return { service, clusterKey, nodeName, client, remote };
}

/** A new directory disk of `poolUuid` in a temp directory, open, closed when the test ends. */
export async function openTempDirectoryDisk(t: TestContext, poolUuid: string, label: string): Promise<DirectoryDisk> {
  const root = await makeTempDir(t, label);
  const identity = { poolUuid, diskUuid: newUuid() };
  await formatDirectoryDisk(root, identity);
  const disk = await openDirectoryDisk(root, identity);
  t.after(() => disk.close());
  return disk;
}
