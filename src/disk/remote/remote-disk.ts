// A disk of another node, reached through that node's fragment service (src/serve/fragment-service.ts): every Disk
// method is one call there, run on the owner's own disk object. The owner keeps what only it can do: its pending
// allocations and strays (reconciled by its own write-open and recover), and releasing the disk's label.
import { assert } from '../../assert.js';
import { FRAGMENT_DATA_MAX_BYTES, FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT, FRAGMENT_SERVICE_SETTLE_BATCH_MAX_COUNT } from '../../constants.js';
import { ShardpoolError } from '../../errors.js';
import { verifyFragmentData, verifyFragmentIdentity, type FragmentHeader } from '../../format/fragment-header.js';
import type { Disk, DiskGeometry, DiskKind, DiskSpace, FoundFragment, FragmentAddress, FragmentLocation, FragmentToWrite, Stray } from '../disk.js';
import { answerInvalid, type FragmentClient, type NodeTarget } from './fragment-client.js';
import { WireFields, diskKindFromWire, errorFromWire, foundFromWire, geometryFromWire, headerFromWire, toWire } from './protocol.js';

export interface RemoteDiskOptions {
  readonly nodeName: string;
  /** The owning node's fragment service, e.g. http://10.0.0.2:7070. */
  readonly baseUrl: string;
  readonly poolUuid: string;
  readonly diskUuid: string;
  /** What the catalog says the disk is; the node must agree. */
  readonly kind: DiskKind;
  readonly path: string;
  readonly client: FragmentClient;
}

/**
 * Asks the node for the disk and opens it: the node must answer for this pool (else DISK_BELONGS_TO_OTHER_POOL) and
 * serve this disk, of this kind (else DISK_OFFLINE, as a local disk that is not where the catalog says).
 */
export async function openRemoteDisk(options: RemoteDiskOptions): Promise<RemoteDisk> {
  const target = { node: options.nodeName, baseUrl: options.baseUrl };
  const { json } = await options.client.call(target, { method: 'GET', path: '/v1/node' });
  const info = WireFields.of(json.result, (why) => answerInvalid(target, why), 'result');
  const poolUuid = info.uuid('poolUuid');
  if (poolUuid !== options.poolUuid || options.client.poolUuid !== options.poolUuid) {
    throw new ShardpoolError('DISK_BELONGS_TO_OTHER_POOL', `node ${target.node} at ${target.baseUrl} serves pool ${poolUuid}, not pool ${options.poolUuid}`, {
      node: target.node,
      url: target.baseUrl,
      otherPool: poolUuid,
    });
  }
  const served = info.list('disks', 100_000).find((disk) => disk.uuid('diskUuid') === options.diskUuid);
  const where = `disk ${options.diskUuid} (${options.path}) on node ${target.node}`;
  if (!served) throw new ShardpoolError('DISK_OFFLINE', `${where} is not served there now (offline on its node, or not its disk)`, { path: options.path, node: target.node });
  const kind = diskKindFromWire(served);
  if (kind !== options.kind) {
    throw new ShardpoolError('DISK_OFFLINE', `${where} is a ${kind} there, the catalog says a ${options.kind}`, { path: options.path, node: target.node });
  }
  const geometry = served.has('geometry') ? geometryFromWire(served.object('geometry')) : undefined;
  const disk = new RemoteDisk(options.client, target, { kind, path: served.string('path'), poolUuid, diskUuid: options.diskUuid, geometry });
  disk.follow(served);
  return disk;
}

export class RemoteDisk implements Disk {
  readonly kind: DiskKind;
  readonly path: string;
  readonly poolUuid: string;
  readonly diskUuid: string;
  readonly geometry: DiskGeometry | undefined;
  private accepts = true;
  private latched: ShardpoolError | undefined;
  private readonly settling: FragmentAddress[] = [];
  private settleScheduled = false;
  /** Settle requests on the wire (close waits for them: fire-and-forget for the pool, not for the process). */
  private readonly settlesInFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly client: FragmentClient,
    readonly target: NodeTarget,
    identity: { kind: DiskKind; path: string; poolUuid: string; diskUuid: string; geometry: DiskGeometry | undefined },
  ) {
    this.kind = identity.kind;
    this.path = identity.path;
    this.poolUuid = identity.poolUuid;
    this.diskUuid = identity.diskUuid;
    this.geometry = identity.geometry;
  }

  /** From the owner's last answer (every answer about the disk carries its state). */
  get acceptsFragments(): boolean {
    return this.accepts;
  }

  get latchedFailure(): ShardpoolError | undefined {
    return this.latched;
  }

  async writeFragment(fragment: FragmentToWrite, data: Buffer): Promise<{ readonly locationBytes: number }> {
    assert(data.length === fragment.dataLengthBytes, 'a fragment is written with its own data');
    assert(data.length <= FRAGMENT_DATA_MAX_BYTES, 'a fragment is at most one extent');
    const { result } = await this.call('write', { fragment: toWire(fragment) }, data);
    return { locationBytes: result.integer('locationBytes') };
  }

  /**
   * The owner flushes its disk. That covers every write this disk resolved before flush() was called: a write
   * resolves here only once the owner's writeFragment resolved and it answered, so the owner finished it before this
   * flush reached it, whichever connection each travelled on. A write still on the wire is not covered, as locally.
   */
  async flush(): Promise<void> {
    await this.call('flush', {});
  }

  async readFragment(fragment: FragmentLocation, destination?: Buffer): Promise<{ header: FragmentHeader; data: Buffer }> {
    const { result, payload } = await this.call('read', { fragment: toWire(fragment) }, undefined, FRAGMENT_DATA_MAX_BYTES);
    const header = this.verifiedHeader(result, fragment);
    // The owner verified the data; checking it again here costs a hash and catches a fault in between end to end.
    verifyFragmentData(header, payload, this.source);
    if (destination !== undefined && destination.length === payload.length) {
      payload.copy(destination);
      return { header, data: destination };
    }
    return { header, data: payload };
  }

  async verifyFragment(fragment: FragmentLocation): Promise<FragmentHeader> {
    const { result } = await this.call('verify', { fragment: toWire(fragment) });
    return this.verifiedHeader(result, fragment);
  }

  async deleteFragment(fragment: FragmentAddress & { readonly locationBytes?: number }): Promise<void> {
    await this.call('delete', { fragment: toWire(fragment) });
  }

  async deleteVersion(versionId: string): Promise<number> {
    const { result } = await this.call('delete-version', { versionId });
    return result.integer('count');
  }

  /** Streamed from the owner. The read-ahead hint passes on at most FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT locations. */
  async *scanFragments(expectedLocations?: ReadonlyArray<number>): AsyncIterable<FoundFragment> {
    this.assertOpen();
    const hints = expectedLocations === undefined ? {} : { expectedLocations: expectedLocations.slice(0, FRAGMENT_SERVICE_SCAN_HINTS_MAX_COUNT) };
    const lines = this.client.stream(this.target, this.callPath('scan'), hints, (last) => this.follow(this.fieldsOf(last)));
    for await (const line of lines) yield foundFromWire(this.fieldsOf(line).object('found'));
  }

  async holdsRecord(fragment: FoundFragment): Promise<boolean> {
    const { result } = await this.call('holds-record', { fragment: toWire(fragment) });
    return result.boolean('holds');
  }

  /** Always empty here: the owner's write-open reconciles its pending allocations against the catalog. */
  pendingAllocations(): FragmentLocation[] {
    return [];
  }

  /** Yields nothing here: recover's stray handling runs on the owning node, which can see and release them. */
  async *strays(): AsyncIterable<Stray> {
    // Nothing: see above.
  }

  /**
   * Sent in batches, after the current turn (settles of one moment travel together). Losing one is safe: the
   * allocations stay pending on the owner, and its next write-open keeps those the catalog references.
   */
  settle(fragments: ReadonlyArray<FragmentAddress>): void {
    this.assertOpen();
    if (fragments.length === 0) return;
    for (const fragment of fragments) this.settling.push({ versionId: fragment.versionId, extentIndex: fragment.extentIndex, fragmentIndex: fragment.fragmentIndex });
    if (this.settleScheduled) return;
    this.settleScheduled = true;
    setImmediate(() => this.sendSettles());
  }

  async space(): Promise<DiskSpace> {
    const { result } = await this.call('space', {});
    return { capacityBytes: result.integer('capacityBytes'), freeBytes: result.integer('freeBytes') };
  }

  async release(): Promise<void> {
    throw new ShardpoolError('NOT_ON_OWNING_NODE', `disk ${this.diskUuid} is on node ${this.target.node}: its label is released there (run the removal on that node)`, {
      node: this.target.node,
      diskUuid: this.diskUuid,
    });
  }

  /** Waits for the settles still on the wire; the client (shared by the pool's remote disks) stays open. */
  async close(): Promise<void> {
    if (this.settleScheduled) this.sendSettles();
    this.closed = true;
    await Promise.all(this.settlesInFlight);
  }

  /** Takes the disk's state from an answer's JSON (`acceptsFragments`, `latchedFailure`), when it carries it. */
  follow(state: WireFields | undefined): void {
    if (state === undefined || !state.has('acceptsFragments')) return;
    this.accepts = state.boolean('acceptsFragments');
    const latched = state.raw('latchedFailure');
    if (latched === null || latched === undefined) this.latched = undefined;
    else if (this.latched?.message !== (latched as { message?: unknown }).message) this.latched = errorFromWire(latched, { node: this.target.node, url: this.target.baseUrl });
  }

  private sendSettles(): void {
    this.settleScheduled = false;
    while (this.settling.length > 0) {
      const batch = this.settling.splice(0, FRAGMENT_SERVICE_SETTLE_BATCH_MAX_COUNT);
      const sent: Promise<void> = this.call('settle', { fragments: batch.map(toWire) }).then(
        () => undefined,
        () => undefined, // safe to lose: see settle()
      );
      this.settlesInFlight.add(sent);
      void sent.finally(() => this.settlesInFlight.delete(sent));
    }
  }

  private async call(name: string, json: unknown, payload?: Buffer, answerPayloadMaxBytes?: number): Promise<{ result: WireFields; payload: Buffer }> {
    this.assertOpen();
    const answer = await this.client.call(
      this.target,
      { method: 'POST', path: this.callPath(name), json, ...(payload ? { payload } : {}), ...(answerPayloadMaxBytes ? { answerPayloadMaxBytes } : {}) },
      (answerJson) => {
        if (typeof answerJson.state === 'object' && answerJson.state !== null) this.follow(this.fieldsOf(answerJson).object('state'));
      },
    );
    return { result: this.fieldsOf(answer.json).object('result'), payload: answer.payload };
  }

  private callPath(name: string): string {
    return `/v1/disks/${this.diskUuid}/${name}`;
  }

  private fieldsOf(json: unknown): WireFields {
    return WireFields.of(json, (why) => answerInvalid(this.target, why), 'answer');
  }

  /** The header the owner read must be the fragment asked for, of this pool and disk. */
  private verifiedHeader(result: WireFields, fragment: FragmentAddress): FragmentHeader {
    const header = headerFromWire(result.object('header'));
    verifyFragmentIdentity(header, { poolUuid: this.poolUuid, diskUuid: this.diskUuid, versionId: fragment.versionId, extentIndex: fragment.extentIndex, fragmentIndex: fragment.fragmentIndex }, this.source);
    return header;
  }

  private get source(): string {
    return `disk ${this.diskUuid} on node ${this.target.node}`;
  }

  private assertOpen(): void {
    assert(!this.closed, 'a closed remote disk takes no calls');
  }
}
