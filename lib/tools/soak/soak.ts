/**
 * The soak (`npm run soak [-- --minutes N]`, not in CI; a 90 s version is test/device/soak.test.ts): N
 * minutes of mixed traffic on one RDMA device, every byte verified, with
 *   - RC verbs traffic: verified SENDs both ways over `connections` QPs to each of `peers` processes;
 *   - endpoints: echo round trips, RDMA writes and reads back, to each peer;
 *   - registration churn: mapped buffers registered through a registration cache, written into and out
 *     of over a loopback pair, while they are freed, unmapped and remapped, moved and discarded;
 *   - peer restarts: each peer SIGKILLed after `restartEveryMs` of traffic and started again: its connections'
 *     work must end (in error, or flushed) and nothing may be left in the kernel;
 * and this process's RSS, open fds, uverbs fds and the kernel's RDMA objects (`rdma res`) sampled.
 * The report fails on a wrong byte, a failed or lost completion (outside a peer's death), an object left
 * after the end, or RSS or object counts still growing late in the run (see growthChecks()).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';

import { connect, type Endpoint } from '../../endpoint/endpoint';
import { createLoopbackPair, type LoopbackPair } from '../../endpoint/loopback';
import { allocate, type MappedBuffer } from '../../memory/mapped';
import '../../memory/registration-cache'; // adds pd.createRegistrationCache()
import { hostHasDevice, insideVm, rerunInVm } from '../../harness/device-host';
import { Access, WcStatus, WrOpcode } from '../../verbs/constants';
import type { Context } from '../../verbs/context';
import type { CompletionQueue } from '../../verbs/cq';
import { listDevices, openDevice } from '../../verbs/device';
import type { QpAddress } from '../../verbs/qp/qp';
import { RcTraffic, Stream, echoRounds, xorshift32, type RcConnection, type RcTrafficResult } from './traffic';

const HOST = process.env.RDMA_NODE_SOAK_HOST ?? '10.0.2.15';
const peerScript = join(__dirname, 'peer.js');
const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const REMOTE = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;

export interface SoakOptions {
  durationMs: number;
  sampleEveryMs: number;
  /** How long each peer lives before it is SIGKILLed and started again (the peers' lives are staggered). */
  restartEveryMs: number;
  peers: number;
  /**
   * RC QPs to each peer, messages per connection and direction in each round (all of a round's receives
   * are posted before it starts, so it is also the sends in flight), largest message.
   */
  connections: number;
  messages: number;
  maxSize: number;
  /** Endpoints to each peer. */
  endpoints: number;
  /** Silence after which a missing completion or a pending operation is reported (a bound, not a speed). */
  stallMs: number;
  /**
   * Fail when too few samples were taken with every peer up to judge growth (default true). A short run
   * on a busy machine (peers taking half a minute to start) may not get them; it still checks the rest.
   */
  requireGrowthJudgement: boolean;
  device?: string;
  basePort: number;
  log: (line: string) => void;
}

export const defaultSoakOptions: SoakOptions = {
  durationMs: 30 * 60_000, sampleEveryMs: 30_000, restartEveryMs: 120_000, peers: 2, connections: 8, messages: 64,
  maxSize: 4096, endpoints: 2, stallMs: 60_000, basePort: 23_100, requireGrowthJudgement: true, log: (line) => console.log(line),
};

type Kind = 'qp' | 'mr' | 'cq' | 'pd' | 'cm_id';
const kinds: Kind[] = ['qp', 'mr', 'cq', 'pd', 'cm_id'];
type Objects = Record<Kind, number>;

export interface Sample {
  /** Seconds since the start. */
  t: number;
  rssMiB: number;
  peerRssMiB: number[];
  fds: number;
  uverbsFds: number;
  /** The kernel's RDMA objects held by this process, and by every process (peers and kernel included). */
  mine: Objects;
  all: Objects;
  /** Peers with traffic under way (the others starting or being torn down). */
  peersUp: number;
  /** Operations verified so far. */
  operations: number;
  bytes: number;
}

export interface Totals {
  rc: { rounds: number; sent: number; received: number; bytes: number; interrupted: number };
  peerRc: { rounds: number; sent: number; received: number; bytes: number };
  endpoints: { connections: number; roundTrips: number; writes: number; reads: number; bytes: number; interrupted: number };
  regcache: { writes: number; bytes: number; allocations: number; frees: number; remaps: number; moves: number; discards: number; hits: number; misses: number; invalidations: number; evictions: number };
  restarts: number;
}

export interface GrowthCheck {
  metric: string;
  early: number;
  late: number;
  limit: number;
  ok: boolean;
  /** false: too few samples to judge (then `ok` is false too). */
  judged?: boolean;
}

export interface SoakReport {
  ok: boolean;
  started: string;
  durationS: number;
  options: Omit<SoakOptions, 'log'>;
  totals: Totals;
  operations: number;
  bytesVerified: number;
  /** When the steady state began (every peer's traffic under way), and RSS's slope after it (MiB/min). */
  steadyS: number;
  rssSlopeMiBPerMin: number;
  /** Per peer life: seconds from spawn to traffic, and from SIGKILL to its work ended and closed here. */
  lives: { startS: number[]; rcEndS: number[]; endpointsEndS: number[]; teardownS: number[]; sendsNeverFailed: number };
  samples: Sample[];
  growth: GrowthCheck[];
  /** Kernel objects and uverbs fds left once everything was closed and every peer killed. */
  leftovers: { mine: Objects; peers: Objects; uverbsFds: number };
  failures: string[];
}

async function kernelObjects(pids: Set<number>): Promise<{ mine: Objects; all: Objects; peers: Objects }> {
  const mine = {} as Objects;
  const all = {} as Objects;
  const peers = {} as Objects;
  // At once: each listing is a process start, seconds in a busy emulated VM.
  await Promise.all(kinds.map(async (kind) => {
    const { stdout } = await run('rdma', ['-j', 'resource', 'show', kind]);
    const rows = JSON.parse(stdout) as { pid?: number }[];
    all[kind] = rows.length;
    mine[kind] = rows.filter((row) => row.pid === process.pid).length;
    peers[kind] = rows.filter((row) => row.pid !== undefined && pids.has(row.pid)).length;
  }));
  return { mine, all, peers };
}

const rssMiB = (pid: number | 'self'): number => {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? 0 : Math.round(Number(kb) / 102.4) / 10;
  } catch {
    return 0; // gone between the listing and the read
  }
};

function fds(): { fds: number; uverbsFds: number } {
  let uverbsFds = 0;
  const list = readdirSync('/proc/self/fd');
  for (const fd of list) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('/dev/infiniband/uverbs')) uverbsFds++;
    } catch {
      // closed since the listing
    }
  }
  return { fds: list.length, uverbsFds };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};

/**
 * Growth between the early part of the steady state and the late part of the run, over the samples taken
 * while every peer had traffic under way (a peer starting or being torn down holds fewer objects, and
 * is no sign of anything). The steady state starts once every peer's traffic has begun (and not before
 * 10 % of the run): by then every kind of object has been made, and each peer is restarted every few
 * minutes after it. Early: from there to 75 % of the run; late: the last 25 %; 3 samples each at least.
 * RSS: the late median may exceed the early median by 25 % + 16 MiB (what V8's heap sizing and allocator
 * fragmentation move by in a steady state; over a 30-minute run that still catches a leak of about 3 MiB
 * a minute, i.e. under 1 KiB per operation at the rates measured). Object counts and fds are structural
 * (so many QPs, MRs, CQs per peer life, cache entries up to maxEntries): the late median may not exceed
 * the early maximum, which a leak of one object per peer restart or per round breaks.
 */
export function growthChecks(samples: Sample[], durationS: number, steadyS: number, peers: number): GrowthCheck[] {
  const from = Math.max(steadyS, 0.1 * durationS);
  const steady = samples.filter((s) => s.peersUp === peers);
  const early = steady.filter((s) => s.t >= from && s.t < 0.75 * durationS);
  const late = steady.filter((s) => s.t >= 0.75 * durationS);
  if (early.length < 3 || late.length < 3) {
    return [{ metric: `samples with every peer up to judge growth (steady from ${from.toFixed(0)} s: ${early.length} early, ${late.length} late; 3 each needed)`, early: early.length, late: late.length, limit: 3, ok: false, judged: false }];
  }
  const checks: GrowthCheck[] = [];
  const round = (x: number): number => Math.round(x * 10) / 10;
  const rssEarly = round(median(early.map((s) => s.rssMiB)));
  const rssLate = round(median(late.map((s) => s.rssMiB)));
  const rssLimit = round(rssEarly * 1.25 + 16);
  checks.push({ metric: 'RSS MiB (late median vs early median)', early: rssEarly, late: rssLate, limit: rssLimit, ok: rssLate <= rssLimit });
  const counted: [string, (s: Sample) => number][] = [
    ['open fds', (s) => s.fds],
    ['uverbs fds', (s) => s.uverbsFds],
    ...kinds.map((k): [string, (s: Sample) => number] => [`own ${k}`, (s) => s.mine[k]]),
    ...kinds.map((k): [string, (s: Sample) => number] => [`all ${k}`, (s) => s.all[k]]),
  ];
  for (const [metric, value] of counted) {
    const limit = Math.max(...early.map(value));
    const lateMedian = median(late.map(value));
    checks.push({ metric: `${metric} (late median vs early max)`, early: limit, late: lateMedian, limit, ok: lateMedian <= limit });
  }
  return checks;
}

/** MiB per minute, least squares over the samples from `fromS` on. */
export function rssSlope(samples: Sample[], fromS: number): number {
  const points = samples.filter((s) => s.t >= fromS);
  if (points.length < 2) return 0;
  const mt = points.reduce((a, s) => a + s.t, 0) / points.length;
  const mr = points.reduce((a, s) => a + s.rssMiB, 0) / points.length;
  const num = points.reduce((a, s) => a + (s.t - mt) * (s.rssMiB - mr), 0);
  const den = points.reduce((a, s) => a + (s.t - mt) ** 2, 0);
  return den === 0 ? 0 : Math.round((num / den) * 60 * 100) / 100;
}

interface Hello {
  pid: number;
  addresses: QpAddress[];
}

interface PeerRound {
  sent?: number;
  received?: number;
  bytes?: number;
  failures: string[];
}

/** What a peer's life has done: RC rounds, and the endpoints that did a whole iteration. */
interface LifeWork {
  rounds: number;
  endpoints: Set<number>;
}

/** A peer process (peer.ts) and its line protocol: its hello, the rounds whose receives it posted, its round reports. */
class PeerProcess {
  readonly #child: ChildProcess;
  readonly exited: Promise<void>;
  readonly hello: Promise<Hello | undefined>;
  readonly #posted = new Set<number>();
  #postedChanged: () => void = () => undefined;
  stderr = '';
  dying = false;
  pid = 0;

  constructor(device: string, readonly port: number, o: SoakOptions, onRound: (round: PeerRound) => void) {
    // The peer's window is the round: it posts every receive of a round before it sends.
    const args = [device, port, o.connections, o.messages, o.messages, o.maxSize].map(String);
    this.#child = spawn(process.execPath, [peerScript, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.pid = this.#child.pid ?? 0;
    this.#child.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-4000)));
    this.exited = new Promise<void>((resolve) => this.#child.once('close', () => resolve()));
    let hello: (value: Hello | undefined) => void = () => undefined;
    this.hello = new Promise<Hello | undefined>((resolve) => (hello = resolve));
    void this.exited.then(() => hello(undefined));
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      let message: { hello?: Hello; posted?: number; round?: PeerRound };
      try {
        message = JSON.parse(line);
      } catch {
        return; // not the protocol's
      }
      if (message.hello) hello(message.hello);
      if (message.posted !== undefined) {
        this.#posted.add(message.posted);
        this.#postedChanged();
      }
      if (message.round) onRound(message.round);
    });
  }

  /** One JSON line to the peer's stdin. */
  tell(message: unknown): void {
    this.#child.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  /** Whether the peer said it posted round `round`'s receives within `timeoutMs` (false once it is killed). */
  async posted(round: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#posted.has(round) && !this.dying && Date.now() < deadline) {
      await Promise.race([new Promise<void>((resolve) => (this.#postedChanged = resolve)), this.exited, sleep(1000)]);
    }
    return this.#posted.delete(round) && !this.dying;
  }

  async kill(): Promise<void> {
    this.dying = true;
    this.#child.kill('SIGKILL');
    await this.exited;
  }
}

class Soak {
  readonly options: SoakOptions;
  readonly context: Context;
  readonly totals: Totals = {
    rc: { rounds: 0, sent: 0, received: 0, bytes: 0, interrupted: 0 },
    peerRc: { rounds: 0, sent: 0, received: 0, bytes: 0 },
    endpoints: { connections: 0, roundTrips: 0, writes: 0, reads: 0, bytes: 0, interrupted: 0 },
    regcache: { writes: 0, bytes: 0, allocations: 0, frees: 0, remaps: 0, moves: 0, discards: 0, hits: 0, misses: 0, invalidations: 0, evictions: 0 },
    restarts: 0,
  };
  readonly failures: string[] = [];
  readonly samples: Sample[] = [];
  readonly peerPids = new Set<number>();
  /** Seconds into the run when every peer's traffic had begun (and one sample period more). */
  steadyS = 0;
  /** Per peer life: seconds from spawn to traffic, and from SIGKILL to everything of it closed here. */
  readonly lives = { startS: [] as number[], rcEndS: [] as number[], endpointsEndS: [] as number[], teardownS: [] as number[], sendsNeverFailed: 0 };
  readonly livePeers = new Map<number, number>(); // slot → pid
  readonly peersUp = new Set<number>(); // slots whose traffic is under way
  readonly started = Date.now();
  readonly end: number;
  readonly pd;

  constructor(options: SoakOptions) {
    this.options = options;
    this.end = this.started + options.durationMs;
    this.context = openDevice(options.device ?? process.env.RDMA_NODE_DEVICE);
    this.pd = this.context.allocPd();
  }

  elapsed(): number {
    return Math.round((Date.now() - this.started) / 100) / 10;
  }

  fail(line: string): void {
    this.failures.push(`[${this.elapsed()} s] ${line}`);
    this.options.log(`soak: FAILURE at ${this.elapsed()} s: ${line}`);
  }

  operations(): { operations: number; bytes: number } {
    const { rc, peerRc, endpoints: e, regcache } = this.totals;
    return {
      operations: rc.received + peerRc.received + e.roundTrips + e.writes + e.reads + regcache.writes,
      bytes: rc.bytes + peerRc.bytes + e.bytes + regcache.bytes,
    };
  }

  async sample(): Promise<void> {
    const { mine, all } = await kernelObjects(this.peerPids);
    const peerRssMiB = [...this.livePeers.values()].map((pid) => rssMiB(pid)).filter((m) => m > 0); // 0: killed meanwhile
    this.samples.push({ t: this.elapsed(), rssMiB: rssMiB('self'), peerRssMiB, ...fds(), mine, all, peersUp: this.peersUp.size, ...this.operations() });
  }

  /** One peer's life: start it, connect, run traffic for `lifeMs`, SIGKILL it, check its work ended. */
  async life(slot: number, lifeMs: number): Promise<void> {
    const o = this.options;
    const spawned = Date.now();
    const peer = new PeerProcess(this.context.name, o.basePort + slot, o, (round) => {
      this.totals.peerRc.rounds++;
      this.totals.peerRc.sent += round.sent ?? 0;
      this.totals.peerRc.received += round.received ?? 0;
      this.totals.peerRc.bytes += round.bytes ?? 0;
      for (const failure of round.failures) this.fail(`peer ${peer.pid}: ${failure}`);
    });
    const hello = await Promise.race([peer.hello, sleep(2 * o.stallMs).then(() => undefined)]);
    if (hello === undefined) {
      this.fail(`peer ${slot} (pid ${peer.pid}) did not start: ${peer.stderr}`);
      await peer.kill();
      return;
    }
    this.peerPids.add(hello.pid);
    this.livePeers.set(slot, hello.pid);
    this.lives.startS.push((Date.now() - spawned) / 1000);

    // RC: our QPs, connected to the peer's, in rounds of verified traffic both ways.
    const cq = this.context.createCq(o.connections * 2 * o.messages + 16, { channel: true });
    const qps = hello.addresses.map(() => this.pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: o.messages, maxRecvWr: o.messages }));
    qps.forEach((qp, n) => qp.connect(hello.addresses[n]!, { rnrRetry: 7 }));
    peer.tell(qps.map((qp) => qp.address()));
    const links = qps.map((qp, n) => ({ qp, name: `soak qp ${qp.qpNum} → peer ${hello.pid} qp ${hello.addresses[n]!.qpNum}`, sendSeed: qp.qpNum, recvSeed: hello.addresses[n]!.qpNum }));
    const rc: { current?: RcTraffic } = {};
    const work: LifeWork = { rounds: 0, endpoints: new Set() };
    const rounds = this.rcRounds(peer, cq, links, rc, work);
    const endpoints: Endpoint[] = [];
    const endpointLoops = Promise.all(Array.from({ length: o.endpoints }, (_, e) => this.endpointTraffic(peer, e, endpoints, work)));
    this.peersUp.add(slot);
    if (this.peersUp.size === o.peers && this.steadyS === 0) this.steadyS = this.elapsed() + o.sampleEveryMs / 1000;

    // Live for lifeMs from now (or until the peer dies by itself, which is a failure).
    const until = Math.min(this.end, Date.now() + lifeMs);
    const earlyExit = await Promise.race([peer.exited.then(() => true), sleep(Math.max(0, until - Date.now())).then(() => false)]);
    if (earlyExit) this.fail(`peer ${hello.pid} exited by itself: ${peer.stderr}`);
    // Every life does some verified work of each kind before its kill, however slow the machine: one RC
    // round, and one write, read and echoes on every endpoint (within stallMs; the traffic's own bounds
    // report a stall).
    for (const waitUntil = Date.now() + o.stallMs; !earlyExit && Date.now() < waitUntil && (work.rounds === 0 || work.endpoints.size < o.endpoints);) await sleep(200);
    const killed = Date.now();
    this.peersUp.delete(slot);
    await peer.kill();
    this.livePeers.delete(slot);
    const phase = (): number => (Date.now() - killed) / 1000;
    const rcEnded = (async () => {
      if (rc.current !== undefined) {
        const result = await rc.current.abort();
        this.addRc(result);
        this.lives.sendsNeverFailed += result.sendsNeverFailed;
        rc.current.close();
      }
      this.lives.rcEndS.push(phase());
    })();
    const endpointsEnded = (async () => {
      const settled = await Promise.race([endpointLoops.then(() => true), sleep(o.stallMs).then(() => false)]);
      if (!settled) this.fail(`endpoints to peer ${hello.pid}: operations still pending ${o.stallMs / 1000} s after it was killed`);
      this.lives.endpointsEndS.push(phase());
    })();
    await Promise.all([rcEnded, endpointsEnded]);
    const closed = await Promise.race([Promise.all(endpoints.map((endpoint) => endpoint.close())).then(() => true), sleep(o.stallMs).then(() => false)]);
    if (!closed) this.fail(`endpoints to peer ${hello.pid}: close() still pending ${o.stallMs / 1000} s after it was killed`);
    for (const qp of qps) qp.close();
    cq.close();
    await rounds.catch(() => undefined); // its last wait ends with the CQ
    this.lives.teardownS.push(phase());
  }

  addRc(result: RcTrafficResult): void {
    this.totals.rc.sent += result.sent;
    this.totals.rc.received += result.received;
    this.totals.rc.bytes += result.bytes;
    this.totals.rc.interrupted += result.interrupted;
    for (const failure of result.failures) this.fail(failure);
  }

  /**
   * Rounds of verified RC traffic with a peer until it is killed (`rc.current`: the round under way, which
   * the kill aborts). Each round posts all its receives (the window is the round) and sends once both
   * sides have: no send ever waits at RNR, so at a kill every send in flight must end in error.
   */
  async rcRounds(peer: PeerProcess, cq: CompletionQueue, links: RcConnection[], rc: { current?: RcTraffic }, work: LifeWork): Promise<void> {
    const o = this.options;
    for (let round = 0; !peer.dying; round++) {
      const traffic = new RcTraffic(this.pd, cq, links, { messages: o.messages, window: o.messages, maxSize: o.maxSize, stallMs: o.stallMs, first: round * o.messages });
      rc.current = traffic;
      traffic.postReceives();
      peer.tell({ posted: round });
      if (!(await peer.posted(round, o.stallMs))) {
        if (!peer.dying) this.fail(`peer ${peer.pid} did not post the receives of round ${round} within ${o.stallMs / 1000} s`);
        return;
      }
      const result = await traffic.run();
      if (peer.dying) return; // abort() accounts for this round
      rc.current = undefined;
      traffic.close();
      this.totals.rc.rounds++;
      work.rounds++;
      this.addRc(result);
      if (result.failures.length > 0) return;
    }
  }

  /** Endpoint `e` to a peer until it is killed: echo round trips, and RDMA writes into the region the peer sends first, read back. */
  async endpointTraffic(peer: PeerProcess, e: number, endpoints: Endpoint[], work: LifeWork): Promise<void> {
    const o = this.options;
    const name = `endpoint ${e} to peer ${peer.pid}`;
    let endpoint: Endpoint;
    try {
      // The soak's bound for an answer, as for every other operation (connect's own default is 10 s, which a
      // peer starting on a busy emulated host exceeded once).
      endpoint = await connect(HOST, peer.port, { receiveDepth: 4, maxMessageSize: 4096, sendDepth: 8, timeoutMs: o.stallMs });
    } catch (error) {
      if (!peer.dying) this.fail(`${name}: connect: ${(error as Error).message}`);
      return;
    }
    endpoints.push(endpoint);
    this.totals.endpoints.connections++;
    const stream = new Stream(peer.pid * 16 + e, 4096);
    const local = endpoint.registerMemory(Buffer.alloc(16 << 10));
    try {
      const remote = JSON.parse((await endpoint.receive({ timeoutMs: o.stallMs })).toString()) as { addr: string; rkey: number; length: number };
      for (let i = 0; !peer.dying; i += 4) {
        // One write of message i's bytes at a place of the peer's region, a read of it back, then 4 echoes.
        const message = stream.message(i);
        const at = (i * 509) % (remote.length - message.length);
        message.copy(local.bytes, 0);
        local.bytes.fill(0, 8192, 8192 + message.length);
        const there = { addr: BigInt(remote.addr) + BigInt(at), rkey: remote.rkey };
        const step = async (what: string, op: Promise<void>): Promise<void> => {
          try {
            await op;
          } catch (error) {
            throw new Error(`${name}: ${what} of message ${i} (${message.length} bytes at ${at} of the peer's region): ${(error as Error).message}`, { cause: error });
          }
        };
        await step('write', endpoint.write({ mr: local, offset: 0, length: message.length }, there, { timeoutMs: o.stallMs }));
        this.totals.endpoints.writes++;
        await step('read', endpoint.read({ mr: local, offset: 8192, length: message.length }, there, { timeoutMs: o.stallMs }));
        this.totals.endpoints.reads++;
        const wrong = stream.check(i, local.bytes.subarray(8192, 8192 + message.length));
        if (wrong !== undefined) throw new Error(`${name}: message ${i} written and read back: ${wrong}`);
        this.totals.endpoints.bytes += 2 * message.length;
        this.totals.endpoints.bytes += await echoRounds(endpoint, stream, i, 4, name, o.stallMs);
        this.totals.endpoints.roundTrips += 4;
        work.endpoints.add(e);
      }
    } catch (error) {
      if (peer.dying) this.totals.endpoints.interrupted++;
      else this.fail((error as Error).message);
    }
  }

  async peerSlot(slot: number): Promise<void> {
    const o = this.options;
    // The peers' first lives are staggered, so that their restarts are spread over the run.
    await this.life(slot, (o.restartEveryMs * (slot + 1)) / o.peers);
    while (Date.now() < this.end - 5_000) {
      this.totals.restarts++;
      await this.life(slot, o.restartEveryMs);
    }
  }

  /** Registration churn through a cache until the end. */
  async churn(): Promise<void> {
    const o = this.options;
    const next = xorshift32(Number(process.env.RDMA_NODE_SEED ?? 20261207)); // RDMA_NODE_SEED replays a run's choices
    const random = (bound: number): number => next() % bound;
    const loop: LoopbackPair = createLoopbackPair(this.context, { maxSendWr: 4, maxRecvWr: 1, cqe: 16 });
    const cache = loop.pd.createRegistrationCache({ maxEntries: 32 });
    const PAGE = 4096;
    const MAX = 16 * PAGE;
    const scratch = loop.pd.registerMemory(Buffer.alloc(MAX));
    const sink = loop.pd.registerMemory(Buffer.alloc(MAX), REMOTE);
    const slots: (MappedBuffer | undefined)[] = new Array(6).fill(undefined);
    const r = this.totals.regcache;
    const write = async (what: string, post: () => void): Promise<boolean> => {
      post();
      let completion;
      try {
        [completion] = await loop.cqs[0].take(1, { timeoutMs: o.stallMs });
      } catch (error) {
        this.fail(`registration churn: lost completion of ${what}: ${(error as Error).message}`);
        return false;
      }
      if (completion!.status !== WcStatus.SUCCESS) {
        this.fail(`registration churn: ${what} completed with ${completion!.statusName}`);
        return false;
      }
      return true;
    };
    try {
      for (let n = 0; Date.now() < this.end; n++) {
        const slot = random(slots.length);
        let buffer = slots[slot];
        const action = random(12);
        if (buffer !== undefined && action === 0) {
          buffer.close();
          buffer = slots[slot] = undefined;
          r.frees++;
        } else if (buffer !== undefined && action === 1) {
          buffer.unmap();
          buffer.remap();
          r.remaps++;
        } else if (buffer !== undefined && action === 2) {
          buffer.move();
          r.moves++;
        } else if (buffer !== undefined && action === 3) {
          buffer.discard();
          r.discards++;
        }
        if (buffer === undefined) {
          buffer = slots[slot] = allocate((1 + random(16)) * PAGE);
          r.allocations++;
        }
        const length = 1 + random(buffer.length);
        const offset = random(buffer.length - length + 1);
        const value = (n % 255) + 1;
        // Into the buffer through a cached registration...
        scratch.bytes.fill(value, 0, length);
        const into = cache.register(buffer.bytes, REMOTE, { offset, length });
        const ok = await write(`write ${n} into a ${buffer.length}-byte buffer at ${offset}+${length}`, () =>
          loop.qps[0].postSend({ wrId: n, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: scratch, offset: 0, length }], remote: into.remote() }));
        into.close();
        if (!ok) return;
        const landed = buffer.bytes.subarray(offset, offset + length);
        if (landed.some((b) => b !== value)) return void this.fail(`registration churn: write ${n} did not land in the buffer now at its address (${landed.filter((b) => b !== value).length} of ${length} bytes)`);
        // ...and out of it.
        landed.fill(value ^ 0xff);
        const from = cache.register(buffer.bytes, Access.LOCAL_WRITE, { offset, length });
        const sent = await write(`write ${n} out of a ${buffer.length}-byte buffer`, () =>
          loop.qps[0].postSend({ wrId: n, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: from }], remote: sink.remote(0, length) }));
        from.close();
        if (!sent) return;
        const out = sink.bytes.subarray(0, length);
        if (out.some((b) => b !== (value ^ 0xff))) return void this.fail(`registration churn: write ${n} out of the buffer sent other bytes`);
        r.writes += 2;
        r.bytes += 2 * length;
      }
    } finally {
      Object.assign(r, (({ hits, misses, invalidations, evictions }) => ({ hits, misses, invalidations, evictions }))(cache.stats()));
      for (const buffer of slots) buffer?.close();
      cache.close();
      loop.close();
    }
  }

  /** A sample every sampleEveryMs from the start (the time a sample takes is not added to the period). */
  async sampler(): Promise<void> {
    for (let k = 1; Date.now() < this.end; k++) {
      await this.sample().catch((error: Error) => this.fail(`sampling: ${error.message}`));
      await sleep(Math.max(0, Math.min(this.started + k * this.options.sampleEveryMs, this.end) - Date.now()));
    }
  }

  async run(): Promise<SoakReport> {
    const o = this.options;
    o.log(`soak: ${o.durationMs / 60_000} min on ${this.context.name}: ${o.peers} peers (each restarted after ${o.restartEveryMs / 1000} s of traffic) × ${o.connections} RC connections and ${o.endpoints} endpoints, registration churn; a sample every ${o.sampleEveryMs / 1000} s`);
    const progress = setInterval(() => {
      const { operations, bytes } = this.operations();
      o.log(`soak: ${this.elapsed()} s: ${operations} operations, ${(bytes / 2 ** 20).toFixed(1)} MiB verified, ${this.totals.restarts} restarts, ${this.failures.length} failures`);
    }, Math.max(o.sampleEveryMs, 60_000));
    try {
      await Promise.all([this.sampler(), this.churn().catch((error: Error) => this.fail(`registration churn: ${error.stack}`)),
        ...Array.from({ length: o.peers }, (_, slot) => this.peerSlot(slot).catch((error: Error) => this.fail(`peer ${slot}: ${error.stack}`)))]);
    } finally {
      clearInterval(progress);
    }
    const durationS = this.elapsed();
    await this.sample();
    this.context.close();
    // Every object of ours and of every peer that ever ran must be gone (rxe frees them as the process or
    // context goes; give it a little time).
    let leftovers = { mine: {} as Objects, peers: {} as Objects, uverbsFds: 0 };
    for (let i = 0; i < 50; i++) {
      const { mine, peers } = await kernelObjects(this.peerPids);
      leftovers = { mine, peers, uverbsFds: fds().uverbsFds };
      if ([...Object.values(mine), ...Object.values(peers)].every((n) => n === 0)) break;
      await sleep(200);
    }
    // librdmacm opens a verbs context per device at its first CM id and keeps it until the process exits
    // (its one uverbs fd, holding no object): allowed once an endpoint was made.
    const cmContexts = this.totals.endpoints.connections > 0 ? 1 : 0;
    const left = Object.entries({ ...prefix('own ', leftovers.mine), ...prefix('peers\' ', leftovers.peers), 'uverbs fds beyond librdmacm\'s': leftovers.uverbsFds - cmContexts }).filter(([, n]) => n > 0);
    if (left.length > 0) this.fail(`left after the end: ${left.map(([k, n]) => `${n} ${k}`).join(', ')}`);
    const growth = growthChecks(this.samples, durationS, this.steadyS, o.peers);
    for (const check of growth.filter((c) => !c.ok)) {
      if (check.judged === false) {
        if (o.requireGrowthJudgement) this.fail(`too few ${check.metric}`);
        else o.log(`soak: growth not judged: too few ${check.metric}`);
      } else {
        this.fail(`${check.metric} grew: ${check.early} early, ${check.late} late (limit ${check.limit})`);
      }
    }
    const { log: _, ...options } = o;
    const { operations, bytes } = this.operations();
    return {
      ok: this.failures.length === 0, started: new Date(this.started).toISOString(), durationS, options, totals: this.totals,
      operations, bytesVerified: bytes, lives: this.lives, steadyS: this.steadyS, rssSlopeMiBPerMin: rssSlope(this.samples, Math.max(this.steadyS, 0.1 * durationS)), samples: this.samples, growth, leftovers, failures: this.failures,
    };
  }
}

const prefix = (p: string, objects: Objects): Record<string, number> => Object.fromEntries(Object.entries(objects).map(([k, n]) => [`${p}${k}`, n]));

export async function runSoak(options: Partial<SoakOptions> = {}): Promise<SoakReport> {
  return new Soak({ ...defaultSoakOptions, ...options }).run();
}

const spread = (values: number[]): string => (values.length === 0 ? 'n/a' : `median ${median(values).toFixed(1)} s, max ${Math.max(...values).toFixed(1)} s`);
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** The report for people: totals, the samples as a table, the growth checks, the failures. */
export function summary(report: SoakReport): string {
  const { rc, peerRc, endpoints: e, regcache: r, restarts } = report.totals;
  const lines = [
    `soak ${report.ok ? 'PASSED' : 'FAILED'}: ${(report.durationS / 60).toFixed(1)} min from ${report.started}, ${report.operations} operations verified, ${mib(report.bytesVerified)} verified, ${restarts} peer restarts`,
    `  RC verbs: ${rc.rounds} rounds; ${rc.sent} sends completed, ${rc.received} messages received intact (${mib(rc.bytes)}); the peers received ${peerRc.received} intact (${mib(peerRc.bytes)}); ${rc.interrupted} work requests ended by peer kills`,
    `  endpoints: ${e.connections} connections, ${e.roundTrips} echo round trips, ${e.writes} writes and ${e.reads} reads back (${mib(e.bytes)}); ${e.interrupted} loops ended by peer kills`,
    `  peer lives: ${report.lives.startS.length}; start to traffic ${spread(report.lives.startS)}; SIGKILL to its RC work ended ${spread(report.lives.rcEndS)}, to its endpoints' operations ended ${spread(report.lives.endpointsEndS)}, to all closed ${spread(report.lives.teardownS)}; ${report.lives.sendsNeverFailed} sends to a killed peer never completed until flushed`,
    `  registration cache: ${r.writes} RDMA writes (${mib(r.bytes)}); ${r.allocations} buffers mapped, ${r.frees} freed, ${r.remaps} unmapped+remapped, ${r.moves} moved, ${r.discards} discarded; ${r.hits} hits, ${r.misses} misses, ${r.invalidations} invalidations, ${r.evictions} evictions`,
    '',
    '      t s  up   RSS MiB  peers MiB  fds  uverbs   own qp/mr/cq/pd/cm_id   all qp/mr/cq/pd/cm_id   operations   MiB verified',
    ...report.samples.map((s) => [
      s.t.toFixed(0).padStart(9), String(s.peersUp).padStart(3), s.rssMiB.toFixed(1).padStart(9), s.peerRssMiB.map((m) => m.toFixed(0)).join('/').padStart(10), String(s.fds).padStart(4), String(s.uverbsFds).padStart(7),
      kinds.map((k) => s.mine[k]).join('/').padStart(23), kinds.map((k) => s.all[k]).join('/').padStart(23), String(s.operations).padStart(12), (s.bytes / 2 ** 20).toFixed(1).padStart(14),
    ].join(' ')),
    '',
    `growth (samples with every peer up; early: from the steady state at ${Math.max(report.steadyS, 0.1 * report.durationS).toFixed(0)} s to 75 % of the run; late: the last 25 %; RSS slope after the steady state ${report.rssSlopeMiBPerMin} MiB/min):`,
    ...report.growth.map((c) => `  ${c.judged === false ? 'n/a ' : c.ok ? 'ok  ' : 'FAIL'} ${c.metric}: early ${c.early}, late ${c.late}, limit ${c.limit}`),
    `left after the end: own ${JSON.stringify(report.leftovers.mine)}, peers' ${JSON.stringify(report.leftovers.peers)}, ${report.leftovers.uverbsFds} uverbs fds`,
    report.failures.length === 0 ? 'failures: none' : `failures (${report.failures.length}):\n${report.failures.map((f) => `  ${f}`).join('\n')}`,
  ];
  return lines.join('\n');
}

const usage = `usage: npm run soak -- [--minutes N] [--sample-seconds S] [--restart-seconds R] [--json FILE] [--device NAME]

Runs N minutes (default 30) of mixed, verified RDMA traffic with peer restarts and registration churn,
sampling RSS, fds and kernel RDMA objects every S seconds (default 30; 5 for runs under 10 minutes),
restarting each peer after R seconds of traffic (default 120); prints a summary, writes the JSON report
to FILE (default tmp/soak-report.json), and exits 1 if anything failed. In the Soft-RoCE VM when this
host has no RDMA device.`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string', default: '30' }, 'sample-seconds': { type: 'string' }, 'restart-seconds': { type: 'string', default: '120' },
      json: { type: 'string', default: 'tmp/soak-report.json' }, device: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) throw new Error('--minutes needs a positive number');
  if (!insideVm() && !hostHasDevice()) {
    console.log('soak: no RDMA device on this host: running in the Soft-RoCE VM');
    return rerunInVm(__filename, argv, (minutes + 15) * 60_000);
  }
  if (listDevices().length === 0) throw new Error('no RDMA device');
  const report = await runSoak({
    durationMs: minutes * 60_000,
    sampleEveryMs: Number(values['sample-seconds'] ?? (minutes >= 10 ? 30 : 5)) * 1000,
    restartEveryMs: Number(values['restart-seconds']) * 1000,
    device: values.device,
  });
  mkdirSync(dirname(values.json!), { recursive: true });
  writeFileSync(values.json!, `${JSON.stringify(report, null, 2)}\n`);
  console.log(summary(report));
  console.log(`soak: the JSON report is in ${values.json}`);
  return report.ok ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((status) => (process.exitCode = status), (error: Error) => {
    console.error(`soak: ${error.message}`);
    process.exitCode = 1;
  });
}
