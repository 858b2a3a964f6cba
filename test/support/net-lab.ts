// The network lab: several "hosts" on one machine for multi-node tests, each in a network namespace of its own.
//
//   client ─┐                           One namespace per node, plus `client` (where test traffic such as an S3 SDK
//   pg ─────┤── bridge (in `switch`)    workload runs, see runNodeScript) and `pg` (PostgreSQL 15, withPostgres). Each
//   n1 ─────┤                           has loopback up and one veth into a bridge that lives in a `switch` namespace
//   n2 ─────┘                           of its own, with one address from 198.18.0.0/15 (RFC 2544 benchmarking space).
//
// Rules the lab keeps, because CI runs it on every push on a shared machine:
// - The root (host) namespace gets no address, route or interface: veths are created inside the namespaces (`ip -n`),
//   the bridge lives in the switch namespace, no namespace has a default route (only the connected 198.18.0.0/15),
//   and IPv6 is switched off in every lab namespace, so nothing but 198.18 addresses exists and nothing leaves the lab.
// - Every name carries a random per-lab tag: namespaces `sp<tag>-<name>`, bridge `spbr<tag>`, veth ends
//   `spv<tag>n<i>` (node side) and `spv<tag>s<i>` (switch side), all ≤ 15 characters. Two labs, or a lab and the
//   leftovers of a killed one, never collide.
// - Everything is removed by exact name: before anything is made its name is written to a state file in the lab's
//   temp dir (`net-lab.json`), and every removal reads names from there, never from a pattern. close() (idempotent)
//   kills every process in the lab's namespaces (`ip netns pids`), stops PostgreSQL, deletes the veths, the bridge,
//   the namespaces and the loop devices, and checks that they are gone. If the process ends without close(), an exit
//   hook (and SIGINT/SIGTERM/SIGHUP handlers) do the same synchronously; if it is SIGKILLed, a reaper process the lab
//   started (holding the read end of a pipe from the test process) sees the pipe close and removes what the state file
//   lists. A later lab given the same temp dir removes the leftovers recorded there before it starts.
// - cutNetwork(name) sets the switch end of that namespace's veth down: the node loses its carrier (a pulled cable)
//   but keeps its address, so its processes live and can still talk to themselves; restoreNetwork sets it up again.
// - Needs root and `ip` (iproute2). Under CI=true a lab that cannot be made fails the test; elsewhere canUseNetLab
//   skips it with the reason.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LoopDevice } from './loop-device.js';
import { detachLoopDevice } from './loop-device.js';
import { PostgresCluster } from './postgres-cluster.js';

const execFileAsync = promisify(execFile);

export const LAB_NETWORK = '198.18.0.0/15';
const PREFIX_BITS = 15;
const STATE_FILE = 'net-lab.json';
const NODES_MAX = 64;
const KILL_WAIT_MS_MAX = 10_000;
const RUN_TIMEOUT_MS_DEFAULT = 60_000;
/** What a process's stdout or stderr keeps in memory (the whole output is in its log file). */
const OUTPUT_BYTES_MAX = 4 * 1024 * 1024;
const RESERVED_NAMES = new Set(['client', 'pg', 'switch']);

export interface NetLabOptions {
  /** Node names: lower-case letters and digits, starting with a letter, ≤ 16 characters. */
  readonly nodes: ReadonlyArray<string>;
  /** Run PostgreSQL 15 in a `pg` namespace, reachable from every other namespace. */
  readonly withPostgres?: boolean;
  /** The lab's state file, process logs and disk images live here (the caller owns and removes it). */
  readonly tempDir: string;
}

export interface SpawnOptions {
  /** Added to (or, with undefined, removed from) the test process's environment. */
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
  /** Written to the process's stdin, which is then closed (default: stdin is closed at once). */
  readonly input?: string | Buffer;
}

export interface LabProcess {
  /** The lab name of the namespace it runs in. */
  readonly namespace: string;
  readonly pid: number;
  readonly command: string;
  /** stdout and stderr, interleaved as they came, for failure reports. */
  readonly logPath: string;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has ended (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with stdout+stderr once they match; rejects when the process ends first or the time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The exact names a lab made, for checks that nothing of it is left. */
export interface NetLabIdentity {
  readonly tag: string;
  readonly statePath: string;
  readonly namespaces: ReadonlyArray<{ readonly name: string; readonly netns: string; readonly inode: number }>;
  readonly postgresDirectory: string | undefined;
  readonly loopImages: ReadonlyArray<string>;
  readonly reaperPid: number | undefined;
}

/** True when a lab can be made here; otherwise skips the test (outside CI) or throws (under CI=true). */
export function canUseNetLab(t: TestContext): boolean {
  const reason = missingCapability();
  if (reason === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`network-lab tests must run under CI=true, but: ${reason}`);
  process.stderr.write(`skipping network-lab test: ${reason}\n`);
  t.skip(reason);
  return false;
}

export async function createNetLab(options: NetLabOptions): Promise<NetLab> {
  const reason = missingCapability();
  if (reason !== undefined) throw new Error(`cannot make a network lab: ${reason}`);
  validateNames(options.nodes);
  removeLeftovers(options.tempDir);
  const lab = new NetLab(options);
  try {
    await lab.build();
  } catch (error) {
    await lab.close();
    throw error;
  }
  return lab;
}

/** Runs `fn` with a lab that is closed afterwards, however `fn` ends. */
export async function withNetLab<T>(options: NetLabOptions, fn: (lab: NetLab) => Promise<T>): Promise<T> {
  const lab = await createNetLab(options);
  try {
    return await fn(lab);
  } finally {
    await lab.close();
  }
}

/** What the state file holds: every name the lab made or was about to make. */
interface LabState {
  readonly tag: string;
  /** netns names, in creation order (the switch first). */
  namespaces: string[];
  /** Interfaces by namespace; deleting one end of a veth deletes both. */
  links: Array<{ namespace: string; name: string }>;
  /** A directory of its own under os.tmpdir() holding the PostgreSQL cluster (the postgres user must enter it). */
  postgresParent: string | undefined;
  loopImages: string[];
}

interface Member {
  readonly name: string;
  readonly netns: string;
  readonly address: string;
  /** The veth end in the member's namespace. */
  readonly nodeLink: string;
  /** The veth end in the switch namespace (cutNetwork sets it down). */
  readonly switchLink: string;
}

export class NetLab {
  readonly tag = randomBytes(3).toString('hex');
  private readonly tempDir: string;
  private readonly statePath: string;
  private readonly logDirectory: string;
  private readonly state: LabState;
  private readonly switchNetns: string;
  private readonly bridge: string;
  private readonly members = new Map<string, Member>();
  private readonly inodes = new Map<string, number>();
  private readonly processes = new Set<LabProcess>();
  private readonly withPostgres: boolean;
  private readonly nodes: ReadonlyArray<string>;
  private postgres: PostgresCluster | undefined;
  private reaper: ChildProcess | undefined;
  private spawned = 0;
  private scripts = 0;
  private closing: Promise<void> | undefined;

  constructor(options: NetLabOptions) {
    this.tempDir = options.tempDir;
    this.nodes = [...options.nodes];
    this.withPostgres = options.withPostgres ?? false;
    this.statePath = path.join(this.tempDir, STATE_FILE);
    this.logDirectory = path.join(this.tempDir, `net-lab-${this.tag}`);
    this.switchNetns = `sp${this.tag}-switch`;
    this.bridge = `spbr${this.tag}`;
    this.state = { tag: this.tag, namespaces: [], links: [], postgresParent: undefined, loopImages: [] };
  }

  /** The namespaces a test can use: client, pg (withPostgres), then the nodes. */
  get names(): string[] {
    return [...this.members.keys()];
  }

  /** The lab's 198.18.0.0/15 address of a namespace. */
  address(name: string): string {
    return this.member(name).address;
  }

  /** The kernel's name of a namespace (for `ip netns exec` outside the lab's helpers). */
  netns(name: string): string {
    return this.member(name).netns;
  }

  /** The address of a database on the lab's PostgreSQL, as seen from any lab namespace (default: `postgres`). */
  postgresUrl(database = 'postgres'): string {
    return this.requirePostgres().networkUrl(database);
  }

  /** A new, empty database on the lab's PostgreSQL; returns its postgresUrl. */
  async createDatabase(): Promise<string> {
    const postgres = this.requirePostgres();
    return postgres.networkUrl(await postgres.addDatabase());
  }

  identity(): NetLabIdentity {
    return {
      tag: this.tag,
      statePath: this.statePath,
      namespaces: [...this.members.values()].map((member) => ({ name: member.name, netns: member.netns, inode: this.inodes.get(member.netns) ?? 0 })).concat([
        { name: 'switch', netns: this.switchNetns, inode: this.inodes.get(this.switchNetns) ?? 0 },
      ]),
      postgresDirectory: this.postgres?.directory,
      loopImages: [...this.state.loopImages],
      reaperPid: this.reaper?.pid,
    };
  }

  /** A tracked process in a namespace: killed at close(), its output kept in memory and in a log file. */
  spawn(name: string, command: string, args: ReadonlyArray<string> = [], options: SpawnOptions = {}): LabProcess {
    this.assertOpen();
    const member = this.member(name);
    this.spawned += 1;
    const logPath = path.join(this.logDirectory, `${String(this.spawned).padStart(3, '0')}-${name}-${path.basename(command)}.log`);
    const log = fs.createWriteStream(logPath);
    log.write(`# ${name} (${member.netns}): ${command} ${args.join(' ')}\n`);
    const child = spawn('ip', ['netns', 'exec', member.netns, command, ...args], {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const output = { stdout: '', stderr: '', all: '' };
    const listeners = new Set<() => void>();
    const keep = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log.write(text);
      output[stream] = keepTail(output[stream] + text);
      output.all = keepTail(output.all + text);
      for (const listener of [...listeners]) listener();
    };
    child.stdout.on('data', keep('stdout'));
    child.stderr.on('data', keep('stderr'));
    child.stdin.on('error', () => undefined); // a process that exits without reading its input
    child.stdin.end(options.input);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('error', (error) => {
        output.stderr += `spawn failed: ${error.message}\n`;
        log.end(() => resolve({ code: null, signal: null }));
      });
      child.on('close', (code, signal) => {
        log.end(`\n# ended: code ${code} signal ${signal}\n`, () => resolve({ code, signal }));
      });
    });
    const processRecord: LabProcess = {
      namespace: name,
      pid: child.pid ?? -1,
      command,
      logPath,
      child,
      stdout: () => output.stdout,
      stderr: () => output.stderr,
      exited,
      waitForOutput: (pattern, timeoutMs = 20_000) =>
        new Promise<string>((resolve, reject) => {
          let ended = false;
          const check = () => {
            if (pattern.test(output.all)) {
              finish();
              resolve(output.all);
            } else if (ended) {
              finish();
              reject(new Error(`${command} in ${name} ended before its output matched ${pattern}:\n${output.all.slice(-2000)}`));
            }
          };
          const timer = setTimeout(() => {
            finish();
            reject(new Error(`${command} in ${name}: no output matching ${pattern} within ${timeoutMs} ms:\n${output.all.slice(-2000)}`));
          }, timeoutMs);
          const finish = () => {
            clearTimeout(timer);
            listeners.delete(check);
          };
          listeners.add(check);
          void exited.then(() => {
            ended = true;
            check();
          });
          check();
        }),
    };
    this.processes.add(processRecord);
    void exited.then(() => this.processes.delete(processRecord));
    return processRecord;
  }

  /** Runs a command in a namespace to its end (killed after timeoutMs). */
  async run(name: string, command: string, args: ReadonlyArray<string> = [], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
    const child = this.spawn(name, command, args, options);
    const timeoutMs = options.timeoutMs ?? RUN_TIMEOUT_MS_DEFAULT;
    const timer = setTimeout(() => child.child.kill('SIGKILL'), timeoutMs);
    const { code, signal } = await child.exited;
    clearTimeout(timer);
    return { code, signal, stdout: child.stdout(), stderr: child.stderr() };
  }

  /**
   * Runs a compiled ES module in a namespace: its default export is called with `input` (passed as JSON) and what it
   * returns (or resolves to) comes back, through JSON. A module that throws fails the call with its stderr.
   */
  async runNodeScript<Output = unknown>(name: string, modulePath: string, input: unknown, options: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<Output> {
    this.scripts += 1;
    const outputPath = path.join(this.logDirectory, `script-${this.scripts}.json`);
    const result = await this.run(name, process.execPath, ['--input-type=module', '-e', SCRIPT_RUNNER, path.resolve(modulePath), outputPath], {
      ...options,
      input: JSON.stringify(input ?? null),
    });
    if (result.code !== 0) {
      throw new Error(`${path.basename(modulePath)} in ${name} failed (code ${result.code}, signal ${result.signal}): ${result.stderr.slice(-4000)}`);
    }
    return JSON.parse(fs.readFileSync(outputPath, 'utf8')) as Output;
  }

  /** Sends `signal` to every process in a namespace (and any it starts meanwhile), and waits until none is left. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGTERM', waitMs = KILL_WAIT_MS_MAX): Promise<void> {
    await killNamespace(this.member(name).netns, signal, waitMs);
  }

  /** Partitions a namespace: the switch end of its veth goes down; its processes and its own address stay. */
  async cutNetwork(name: string): Promise<void> {
    this.assertOpen();
    await ip(['-n', this.switchNetns, 'link', 'set', this.member(name).switchLink, 'down']);
  }

  async restoreNetwork(name: string): Promise<void> {
    this.assertOpen();
    await ip(['-n', this.switchNetns, 'link', 'set', this.member(name).switchLink, 'up']);
  }

  /**
   * A loop device for a node, backed by a sparse image in the lab's temp dir (loop devices belong to the machine, not
   * to a namespace). The image is recorded before it is attached, so every removal finds the device by exact image.
   */
  async createLoopDevice(name: string, options: { sizeBytes: number; sectorBytes: 512 | 4096 }): Promise<LoopDevice> {
    this.assertOpen();
    this.member(name);
    const imagePath = path.join(this.logDirectory, `disk-${name}-${this.state.loopImages.length + 1}.img`);
    this.record(() => this.state.loopImages.push(imagePath));
    fs.writeFileSync(imagePath, '');
    fs.truncateSync(imagePath, options.sizeBytes);
    const { stdout } = await execFileAsync('losetup', ['--find', '--show', '--sector-size', String(options.sectorBytes), '--direct-io=on', imagePath]);
    const devicePath = stdout.trim();
    let detached: Promise<void> | undefined;
    const detach = (): Promise<void> =>
      (detached ??= (async () => {
        await detachLoopDevice(devicePath, imagePath);
        fs.rmSync(imagePath, { force: true });
        this.record(() => this.state.loopImages.splice(this.state.loopImages.indexOf(imagePath), 1));
      })());
    return { path: devicePath, imagePath, sizeBytes: options.sizeBytes, sectorBytes: options.sectorBytes, detach };
  }

  /** The last lines of every process's log, for a failing test's message. */
  failureReport(bytesPerProcess = 2000): string {
    const files = fs.existsSync(this.logDirectory) ? fs.readdirSync(this.logDirectory).filter((file) => file.endsWith('.log')).sort() : [];
    return files.map((file) => `--- ${file}\n${fs.readFileSync(path.join(this.logDirectory, file), 'utf8').slice(-bytesPerProcess)}`).join('\n');
  }

  /** Kills every process, stops PostgreSQL, removes the namespaces, veths, bridge and loop devices. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.closeNow());
  }

  /** @internal createNetLab's second half: the state file and reaper first, then each thing after its name. */
  async build(): Promise<void> {
    fs.mkdirSync(this.logDirectory, { recursive: true });
    this.writeState();
    openLabs.add(this);
    installExitCleanup();
    this.reaper = startReaper(this.statePath, path.join(this.logDirectory, 'reaper.log'));
    const ipv6 = fs.existsSync('/proc/sys/net/ipv6');
    const addNamespace = async (netns: string) => {
      this.record(() => this.state.namespaces.push(netns));
      await ip(['netns', 'add', netns]);
      this.inodes.set(netns, fs.statSync(path.join('/run/netns', netns)).ino);
      // Before any interface is made, so none ever holds a link-local IPv6 address.
      if (ipv6) await execFileAsync('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    };
    await addNamespace(this.switchNetns);
    this.record(() => this.state.links.push({ namespace: this.switchNetns, name: this.bridge }));
    await ip(['-n', this.switchNetns, 'link', 'add', this.bridge, 'type', 'bridge']);
    await ip(['-n', this.switchNetns, 'link', 'set', this.bridge, 'up']);
    const names = ['client', ...(this.withPostgres ? ['pg'] : []), ...this.nodes];
    for (const [index, name] of names.entries()) {
      const member: Member = {
        name,
        netns: `sp${this.tag}-${name}`,
        address: labAddress(index),
        nodeLink: `spv${this.tag}n${index}`,
        switchLink: `spv${this.tag}s${index}`,
      };
      this.members.set(name, member);
      await addNamespace(member.netns);
      this.record(() => this.state.links.push({ namespace: this.switchNetns, name: member.switchLink }));
      await ip(['-n', member.netns, 'link', 'add', member.nodeLink, 'type', 'veth', 'peer', 'name', member.switchLink, 'netns', this.switchNetns]);
      await ip(['-n', this.switchNetns, 'link', 'set', member.switchLink, 'master', this.bridge, 'up']);
      await ip(['-n', member.netns, 'addr', 'add', `${member.address}/${PREFIX_BITS}`, 'dev', member.nodeLink]);
      await ip(['-n', member.netns, 'link', 'set', member.nodeLink, 'up']);
    }
    if (this.withPostgres) {
      const parent = fs.mkdtempSync(path.join(os.tmpdir(), `shardpool-netlab-${this.tag}-`));
      this.record(() => (this.state.postgresParent = parent));
      fs.chmodSync(parent, 0o755);
      this.postgres = await PostgresCluster.start({
        parentDirectory: parent,
        commandPrefix: ['ip', 'netns', 'exec', this.member('pg').netns],
        listenAddress: this.address('pg'),
        trustedNetwork: LAB_NETWORK,
        databasePrefix: `lab_${this.tag}`,
      });
    }
  }

  private async closeNow(): Promise<void> {
    for (const each of this.processes) each.child.kill('SIGKILL');
    await Promise.all([...this.processes].map((each) => each.exited));
    await this.postgres?.stop();
    for (const netns of [...this.state.namespaces].reverse()) await killNamespace(netns, 'SIGKILL', KILL_WAIT_MS_MAX);
    removeRecorded(this.state);
    const left = namespacesLeft(this.state);
    if (left.length > 0) throw new Error(`network lab ${this.tag}: namespaces still present after close: ${left.join(', ')}`);
    fs.rmSync(this.statePath, { force: true });
    openLabs.delete(this);
    uninstallExitCleanupWhenIdle();
    await stopReaper(this.reaper);
  }

  /** Synchronous, for the exit hook and signal handlers. */
  closeSync(): void {
    for (const each of this.processes) each.child.kill('SIGKILL');
    this.postgres?.stopNow();
    removeRecorded(this.state);
    fs.rmSync(this.statePath, { force: true });
    openLabs.delete(this);
  }

  /** Changes the state and writes it before the thing it names is made. */
  private record(change: () => unknown): void {
    change();
    this.writeState();
  }

  private writeState(): void {
    const temporary = `${this.statePath}.${process.pid}`;
    fs.writeFileSync(temporary, JSON.stringify(this.state));
    fs.renameSync(temporary, this.statePath);
  }

  private member(name: string): Member {
    const member = this.members.get(name);
    if (member === undefined) throw new Error(`the lab has no namespace "${name}" (it has ${this.names.join(', ')})`);
    return member;
  }

  private requirePostgres(): PostgresCluster {
    if (this.postgres === undefined) throw new Error('this lab runs no PostgreSQL (createNetLab({ withPostgres: true }))');
    return this.postgres;
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new Error(`network lab ${this.tag} is closed`);
  }
}

/** The child side of runNodeScript: argv = [module, output file], input on stdin. */
const SCRIPT_RUNNER = `
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [modulePath, outputPath] = process.argv.slice(1);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const module = await import(pathToFileURL(modulePath).href);
if (typeof module.default !== 'function') throw new Error(modulePath + ' has no default export to call');
const output = await module.default(JSON.parse(Buffer.concat(chunks).toString('utf8')));
writeFileSync(outputPath, JSON.stringify(output ?? null));
process.exit(0);
`;

function labAddress(index: number): string {
  // 198.18.0.10, .11, …: inside 198.18.0.0/15 for any index below NODES_MAX.
  if (!(index >= 0 && index < NODES_MAX + 2)) throw new Error(`lab address index ${index} out of range`);
  return `198.18.0.${10 + index}`;
}

function validateNames(nodes: ReadonlyArray<string>): void {
  if (nodes.length === 0 || nodes.length > NODES_MAX) throw new Error(`a network lab has 1 to ${NODES_MAX} nodes, not ${nodes.length}`);
  for (const node of nodes) {
    if (!/^[a-z][a-z0-9]{0,15}$/.test(node)) throw new Error(`node name "${node}": lower-case letters and digits, starting with a letter, at most 16`);
    if (RESERVED_NAMES.has(node)) throw new Error(`node name "${node}" is the lab's own`);
  }
  if (new Set(nodes).size !== nodes.length) throw new Error(`node names repeat: ${nodes.join(', ')}`);
}

function missingCapability(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for network namespaces';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'no `ip` command (apt-get install iproute2)';
  }
  return undefined;
}

async function ip(args: ReadonlyArray<string>): Promise<void> {
  try {
    await execFileAsync('ip', [...args]);
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`ip ${args.join(' ')} failed: ${stderr?.trim() || String(error)}`, { cause: error });
  }
}

function keepTail(text: string): string {
  return text.length > OUTPUT_BYTES_MAX ? text.slice(-OUTPUT_BYTES_MAX) : text;
}

/** The pids whose network namespace is `netns` (none if it does not exist); zombies are not listed. */
function namespacePidsSync(netns: string): number[] {
  try {
    return parsePids(execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return [];
  }
}

async function namespacePids(netns: string): Promise<number[]> {
  try {
    return parsePids((await execFileAsync('ip', ['netns', 'pids', netns])).stdout);
  } catch {
    return [];
  }
}

function parsePids(text: string): number[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number)
    .filter((pid) => Number.isSafeInteger(pid) && pid > 1);
}

function signalPids(pids: ReadonlyArray<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

async function killNamespace(netns: string, signal: NodeJS.Signals, waitMs: number): Promise<void> {
  const signalled = new Set<number>();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const pids = await namespacePids(netns);
    if (pids.length === 0) return;
    // Each process once (a SIGTERM repeated would cut its shutdown short); processes started meanwhile too.
    signalPids(pids.filter((pid) => !signalled.has(pid)), signal);
    for (const pid of pids) signalled.add(pid);
    if (Date.now() > deadline) throw new Error(`processes ${pids.join(', ')} in ${netns} still run ${waitMs} ms after ${signal}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tryRun(file: string, args: ReadonlyArray<string>): string {
  try {
    return execFileSync(file, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

/**
 * Removes, synchronously and by the exact names in `state`, whatever of it exists: the processes in its namespaces
 * (SIGKILL), its interfaces, its namespaces, its loop devices (by image) and images, its PostgreSQL directory.
 * Shared by close(), the exit hook, the signal handlers, the reaper and a later lab's leftover removal.
 */
function removeRecorded(state: LabState): void {
  const namespaces = [...state.namespaces].reverse();
  for (let attempt = 0; attempt < KILL_WAIT_MS_MAX / 20; attempt += 1) {
    const pids = namespaces.flatMap(namespacePidsSync);
    if (pids.length === 0) break;
    signalPids(pids, 'SIGKILL');
    sleepSync(20);
  }
  for (const link of [...state.links].reverse()) tryRun('ip', ['-n', link.namespace, 'link', 'del', link.name]);
  for (const netns of namespaces) tryRun('ip', ['netns', 'del', netns]);
  for (const image of state.loopImages) {
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const devices = tryRun('losetup', ['--noheadings', '--output', 'NAME', '--associated', image]).split('\n').filter((line) => line.trim() !== '');
      if (devices.length === 0) break;
      for (const device of devices) tryRun('losetup', ['--detach', device.trim()]);
      sleepSync(100);
    }
    fs.rmSync(image, { force: true });
  }
  if (state.postgresParent !== undefined) {
    // Only a directory the lab made: the state file is ours, but a path from a file is checked before rm -r.
    const expected = path.join(os.tmpdir(), `shardpool-netlab-${state.tag}-`);
    if (state.postgresParent.startsWith(expected)) fs.rmSync(state.postgresParent, { recursive: true, force: true });
  }
}

function namespacesLeft(state: LabState): string[] {
  const present = new Set(tryRun('ip', ['netns', 'list']).split('\n').map((line) => line.split(' ')[0]));
  return state.namespaces.filter((netns) => present.has(netns));
}

function readState(statePath: string): LabState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(statePath, 'utf8');
  } catch {
    return undefined;
  }
  const state = JSON.parse(text) as LabState;
  if (typeof state.tag !== 'string' || !/^[0-9a-f]{6}$/.test(state.tag)) throw new Error(`${statePath} is not a network lab's state file`);
  return state;
}

/** A lab earlier given this temp dir and never closed (its process killed): remove what it recorded. */
function removeLeftovers(tempDir: string): void {
  const statePath = path.join(tempDir, STATE_FILE);
  const state = readState(statePath);
  if (state === undefined) return;
  removeRecorded(state);
  const left = namespacesLeft(state);
  if (left.length > 0) throw new Error(`leftovers of network lab ${state.tag} could not be removed: ${left.join(', ')}`);
  fs.rmSync(statePath, { force: true });
}

// --- cleanup when the test process ends without close() -------------------------------------------------------

const openLabs = new Set<NetLab>();
const EXIT_SIGNALS: ReadonlyArray<NodeJS.Signals> = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let exitCleanupInstalled = false;

function closeAllSync(): void {
  for (const lab of [...openLabs]) lab.closeSync();
}

function onSignal(signal: NodeJS.Signals): void {
  closeAllSync();
  uninstallExitCleanupWhenIdle();
  // Our handler replaced the default action (ending the process): restore it, unless someone else handles the signal.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installExitCleanup(): void {
  if (exitCleanupInstalled) return;
  exitCleanupInstalled = true;
  process.on('exit', closeAllSync);
  for (const signal of EXIT_SIGNALS) process.on(signal, onSignal);
}

function uninstallExitCleanupWhenIdle(): void {
  if (!exitCleanupInstalled || openLabs.size > 0) return;
  exitCleanupInstalled = false;
  process.removeListener('exit', closeAllSync);
  for (const signal of EXIT_SIGNALS) process.removeListener(signal, onSignal);
}

/**
 * A process of its own session that holds the read end of a pipe from this one: when this process ends, however it
 * ends (SIGKILL included), the pipe closes and the reaper removes what the state file still lists. close() removes
 * the state file first and then closes the pipe, so a reaper of a closed lab finds nothing and exits.
 */
function startReaper(statePath: string, logPath: string): ChildProcess {
  const log = fs.openSync(logPath, 'a');
  try {
    const reaper = spawn(process.execPath, [fileURLToPath(import.meta.url), REAPER_FLAG, statePath], { detached: true, stdio: ['pipe', log, log] });
    reaper.unref();
    (reaper.stdin as unknown as { unref(): void }).unref();
    return reaper;
  } finally {
    fs.closeSync(log);
  }
}

async function stopReaper(reaper: ChildProcess | undefined): Promise<void> {
  if (reaper === undefined || reaper.exitCode !== null || reaper.signalCode !== null) return;
  const ended = new Promise((resolve) => reaper.once('exit', resolve));
  reaper.ref(); // unref'd at start: waiting for it must keep this process alive
  reaper.stdin?.end();
  await ended;
}

const REAPER_FLAG = '--reap-net-lab';

async function reap(statePath: string): Promise<void> {
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('close', resolve).once('end', resolve));
  const state = readState(statePath);
  if (state === undefined) return;
  process.stderr.write(`${new Date().toISOString()} reaper: the test process ended without closing lab ${state.tag}; removing it\n`);
  removeRecorded(state);
  fs.rmSync(statePath, { force: true });
}

if (process.argv[2] === REAPER_FLAG && process.argv[1] === fileURLToPath(import.meta.url)) {
  const statePath = process.argv[3];
  if (statePath === undefined) throw new Error(`${REAPER_FLAG} needs the state file`);
  await reap(statePath);
}
