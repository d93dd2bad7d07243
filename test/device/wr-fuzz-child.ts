/**
 * One batch of the work-request fuzz per process (argv[2]: `RC`, `UC` or `UD` and `classic` or `extended`,
 * or `windows`): every send opcode × send flags × the state of the keys it names, posted on the real
 * device between two loopback QPs. Each combination is printed before it runs (so a crash names it), then
 * its outcome: a typed error from the post, or the completions of both sides; after an error both QPs are
 * reset and reconnected and must carry a SEND again. The kernel log (/dev/kmsg) is read after every
 * combination: an oops, BUG or WARNING names it. The last line is a JSON summary.
 */
import {
  Access,
  MwType,
  QpState,
  QpType,
  RdmaError,
  WcStatus,
  WrOpcode,
  createLoopbackPair,
  type CompletionQueue,
  type Context,
  type MemoryRegion,
  type ProtectionDomain,
  type QueuePair,
  type SendWorkRequest,
  type Sge,
} from '../../lib';
import { QKEY, open, remoteAccess } from '../support/fixture';
import { KernelLog } from '../support/kernel-log';

const ALLOWED_ERRORS = new Set(['TypeError', 'RangeError', 'RdmaError']);
const WAIT_MS = 10_000;
const pause = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number): void => void Atomics.wait(pause, 0, 0, ms);

type Transport = 'RC' | 'UC' | 'UD';

/** Two QPs of one transport: `a` posts, `b` receives (and binds the windows `a` accesses). */
class Fixture {
  readonly pd: ProtectionDomain;
  readonly a: QueuePair;
  readonly b: QueuePair;
  readonly cqA: CompletionQueue;
  readonly cqB: CompletionQueue;
  /** Another connected pair in another PD: its memory, windows and QPs are "of another PD". */
  readonly other: ReturnType<typeof createLoopbackPair>;
  readonly ud?: { ah: ReturnType<ProtectionDomain['createAh']>; remoteQpn: number; remoteQkey: number };
  /** Memory of each side: a's source, b's receive buffer and target of remote operations. */
  readonly source: MemoryRegion;
  readonly target: MemoryRegion;
  readonly sink: MemoryRegion;
  #receives = 0;
  #nextRecv = 0;

  constructor(readonly context: Context, readonly transport: Transport, readonly extended: boolean) {
    const caps = { maxSendWr: 64, maxRecvWr: 64, maxSendSge: 4, maxRecvSge: 4, maxInlineData: 64 };
    this.other = createLoopbackPair(context, { ...caps, cqe: 256 });
    if (transport === 'UD') {
      this.pd = context.allocPd();
      const make = (): { qp: QueuePair; cq: CompletionQueue } => {
        const cq = context.createCq(256);
        const qp = this.pd.createQp({ sendCq: cq, qpType: QpType.UD, extended, ...caps });
        return { qp, cq };
      };
      const [a, b] = [make(), make()];
      this.a = a.qp;
      this.cqA = a.cq;
      this.b = b.qp;
      this.cqB = b.cq;
      const gid = context.gidTable().find((entry) => entry.index === context.defaultGidIndex(1))!;
      this.ud = { ah: this.pd.createAh({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gid.index } }), remoteQpn: this.b.qpNum, remoteQkey: QKEY };
    } else {
      const loop = createLoopbackPair(context, { ...caps, cqe: 256, qpType: transport === 'RC' ? QpType.RC : QpType.UC, extended });
      this.pd = loop.pd;
      [this.a, this.b] = loop.qps;
      [this.cqA, this.cqB] = loop.cqs;
    }
    this.source = this.pd.registerMemory(Buffer.alloc(4096, 1), remoteAccess | Access.MW_BIND);
    this.target = this.pd.registerMemory(Buffer.alloc(4096), remoteAccess | Access.MW_BIND);
    this.sink = this.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE);
    this.reconnect();
  }

  /** Both QPs back to RTS from whatever state, receives posted again. */
  reconnect(): void {
    for (const qp of [this.a, this.b]) qp.modify({ qpState: QpState.RESET });
    if (this.transport === 'UD') {
      for (const qp of [this.a, this.b]) {
        qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qkey: QKEY });
        qp.modify({ qpState: QpState.RTR });
        qp.modify({ qpState: QpState.RTS, sqPsn: 0 });
      }
    } else {
      const accessFlags = Access.LOCAL_WRITE | Access.REMOTE_WRITE | (this.transport === 'RC' ? Access.REMOTE_READ | Access.REMOTE_ATOMIC : 0);
      const [addressA, addressB] = [this.a.address(), this.b.address()];
      this.a.connect(addressB, { accessFlags });
      this.b.connect(addressA, { accessFlags });
    }
    for (const cq of [this.cqA, this.cqB]) while (cq.poll().count > 0);
    this.#receives = 0;
    this.topUpReceives();
  }

  topUpReceives(): void {
    const missing = 8 - this.#receives;
    if (missing <= 0) return;
    this.b.postRecv(Array.from({ length: missing }, () => ({ wrId: 1_000_000 + this.#nextRecv++, sgList: [{ mr: this.sink }] })));
    this.#receives += missing;
  }

  receiveCompleted(): void {
    this.#receives--;
  }

  /** The addressing a UD request needs (none for RC/UC). */
  route(): Pick<SendWorkRequest, 'ud'> {
    return this.ud ? { ud: this.ud } : {};
  }

  /** Posts `wr` on `qp` and waits for its completion; returns the status name (setup steps use it). */
  runLocal(qp: QueuePair, cq: CompletionQueue, wr: SendWorkRequest): string {
    qp.postSend({ ...wr, wrId: 77, signaled: true, ...(qp.qpType === QpType.UD ? this.route() : {}) });
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const batch = cq.poll();
      for (let i = 0; i < batch.count; i++) if (batch.wrId(i) === 77n) return WcStatus[batch.status(i)]!;
      if (Date.now() > deadline) throw new Error('a setup request did not complete');
      sleep(0.05);
    }
  }

  /** A type-2 window of `pd` bound through `qp` to `mr` (the first 256 bytes unless given). */
  boundWindow(qp: QueuePair, cq: CompletionQueue, access: number, mr = this.target, length = 256, pd = this.pd) {
    const mw = pd.allocMw(MwType.TYPE_2);
    const rkey = mw.nextRkey();
    const status = this.runLocal(qp, cq, { opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr, length, access } });
    if (status !== 'SUCCESS') throw new Error(`binding a window for the fuzz failed: ${status}`);
    return { mw, rkey, addr: mr.addr };
  }

  close(): void {
    this.context.close();
  }
}

/** A key state: what a request names, set up fresh for each combination. */
type KeyState = (f: Fixture) => Partial<SendWorkRequest>;
const ALL_REMOTE = Access.REMOTE_READ | Access.REMOTE_WRITE | Access.REMOTE_ATOMIC;

/** The remote side of RDMA writes, reads and atomics. */
const remoteStates: Record<string, KeyState> = {
  'valid MR': (f) => ({ remote: f.target.remote(0, 8) }),
  'MR deregistered': (f) => {
    const mr = f.pd.registerMemory(Buffer.alloc(4096), remoteAccess);
    const remote = mr.remote(0, 8);
    mr.close();
    return { remote };
  },
  'MR of another PD': (f) => ({ remote: f.other.pd.registerMemory(Buffer.alloc(4096), remoteAccess).remote(0, 8) }),
  'MR without remote access': (f) => ({ remote: f.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE).remote(0, 8) }),
  'MR remote-read only': (f) => ({ remote: f.pd.registerMemory(Buffer.alloc(4096), Access.REMOTE_READ).remote(0, 8) }),
  'type-1 window bound': (f) => {
    const mw = f.pd.allocMw(MwType.TYPE_1);
    const rkey = f.b.bindMw(mw, { mr: f.target, length: 256, access: ALL_REMOTE, wrId: 77 });
    waitFor(f.cqB, 77n);
    return { remote: { addr: f.target.addr, rkey } };
  },
  'type-2 window never bound': (f) => ({ remote: { addr: f.target.addr, rkey: f.pd.allocMw(MwType.TYPE_2).rkey } }),
  'type-2 window bound': (f) => {
    const { rkey, addr } = f.boundWindow(f.b, f.cqB, ALL_REMOTE);
    return { remote: { addr, rkey } };
  },
  'type-2 window invalidated': (f) => {
    const { rkey, addr } = f.boundWindow(f.b, f.cqB, ALL_REMOTE);
    invalidate(f, rkey);
    return { remote: { addr, rkey } };
  },
  'type-2 window bound to another QP': (f) => {
    const { rkey, addr } = f.boundWindow(f.a, f.cqA, ALL_REMOTE);
    return { remote: { addr, rkey } };
  },
  'type-2 window of another PD': (f) => {
    const mr = f.other.pd.registerMemory(Buffer.alloc(4096), remoteAccess | Access.MW_BIND);
    const { rkey, addr } = f.boundWindow(f.other.qps[1], f.other.cqs[1], ALL_REMOTE, mr, 256, f.other.pd);
    return { remote: { addr, rkey } };
  },
  'type-2 window remote-read only': (f) => {
    const { rkey, addr } = f.boundWindow(f.b, f.cqB, Access.REMOTE_READ);
    return { remote: { addr, rkey } };
  },
  'type-2 window, offset beyond the window': (f) => {
    const { rkey, addr } = f.boundWindow(f.b, f.cqB, ALL_REMOTE);
    return { remote: { addr: addr + 1024n, rkey } };
  },
  'offset beyond the MR': (f) => ({ remote: { addr: f.target.addr + 4096n, rkey: f.target.rkey } }),
  'offset straddling the MR end': (f) => ({ remote: { addr: f.target.addr + 4092n, rkey: f.target.rkey } }),
  'offset before the MR': (f) => ({ remote: { addr: f.target.addr - 8n, rkey: f.target.rkey } }),
  misaligned: (f) => ({ remote: { addr: f.target.addr + 4n, rkey: f.target.rkey } }),
  'address 2**64-8': (f) => ({ remote: { addr: 2n ** 64n - 8n, rkey: f.target.rkey } }),
  'rkey 0': (f) => ({ remote: { addr: f.target.addr, rkey: 0 } }),
  'rkey 0xffffffff': (f) => ({ remote: { addr: f.target.addr, rkey: 0xffffffff } }),
};

/** The local side: where a send or write comes from, where a read or atomic lands. */
const localStates: Record<string, (f: Fixture) => Sge[]> = {
  'valid MR': (f) => [{ mr: f.source, length: 8 }],
  'zero-length list': () => [],
  'zero-length sge': (f) => [{ mr: f.source, length: 0 }],
  'MR deregistered': (f) => {
    const mr = f.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE);
    const sge = { addr: mr.addr, length: 8, lkey: mr.lkey };
    mr.close();
    return [sge];
  },
  'MR of another PD': (f) => {
    const mr = f.other.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE);
    return [{ addr: mr.addr, length: 8, lkey: mr.lkey }];
  },
  'MR without local write': (f) => [{ mr: f.pd.registerMemory(Buffer.alloc(4096), 0), length: 8 }],
  'address beyond the MR': (f) => [{ addr: f.source.addr + 4096n, length: 8, lkey: f.source.lkey }],
  'length beyond the MR': (f) => [{ addr: f.source.addr, length: 8192, lkey: f.source.lkey }],
  'lkey 0': (f) => [{ addr: f.source.addr, length: 8, lkey: 0 }],
  'rkey of a type-2 window as lkey': (f) => [{ addr: f.target.addr, length: 8, lkey: f.boundWindow(f.a, f.cqA, ALL_REMOTE).rkey }],
  'four sges': (f) => [0, 8, 16, 24].map((offset) => ({ mr: f.source, offset, length: 8 })),
};

/** What LOCAL_INV and SEND_WITH_INV name (windows bound through `b`, the receiver, unless said). */
const invalidateStates: Record<string, (f: Fixture) => number> = {
  'MR rkey': (f) => f.pd.registerMemory(Buffer.alloc(4096), remoteAccess).rkey,
  'MR lkey': (f) => f.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE).lkey,
  'MR deregistered': (f) => {
    const mr = f.pd.registerMemory(Buffer.alloc(4096), remoteAccess);
    const { rkey } = mr;
    mr.close();
    return rkey;
  },
  'MR of another PD': (f) => f.other.pd.registerMemory(Buffer.alloc(4096), remoteAccess).rkey,
  'MR with a window bound': (f) => {
    const mr = f.pd.registerMemory(Buffer.alloc(4096), remoteAccess | Access.MW_BIND);
    f.boundWindow(f.b, f.cqB, ALL_REMOTE, mr);
    return mr.rkey;
  },
  'type-1 window bound': (f) => {
    const mw = f.pd.allocMw(MwType.TYPE_1);
    const rkey = f.b.bindMw(mw, { mr: f.target, length: 256, access: ALL_REMOTE, wrId: 77 });
    waitFor(f.cqB, 77n);
    return rkey;
  },
  'type-1 window never bound': (f) => f.pd.allocMw(MwType.TYPE_1).rkey,
  'type-2 window never bound': (f) => f.pd.allocMw(MwType.TYPE_2).rkey,
  'type-2 window bound through a': (f) => f.boundWindow(f.a, f.cqA, ALL_REMOTE).rkey,
  'type-2 window bound through b': (f) => f.boundWindow(f.b, f.cqB, ALL_REMOTE).rkey,
  'type-2 window invalidated': (f) => {
    const { rkey } = f.boundWindow(f.b, f.cqB, ALL_REMOTE);
    invalidate(f, rkey);
    return rkey;
  },
  'type-2 window bound, stale key byte': (f) => {
    const { rkey } = f.boundWindow(f.b, f.cqB, ALL_REMOTE);
    return (rkey & ~0xff) | ((rkey + 7) & 0xff);
  },
  'type-2 window of another PD, bound': (f) => {
    const mr = f.other.pd.registerMemory(Buffer.alloc(4096), remoteAccess | Access.MW_BIND);
    return f.boundWindow(f.other.qps[1], f.other.cqs[1], ALL_REMOTE, mr, 256, f.other.pd).rkey;
  },
  'key 0': () => 0,
  'key 0xffffffff': () => 0xffffffff,
};

/** The bind of a BIND_MW request, posted on `a`. */
const bindStates: Record<string, (f: Fixture) => Partial<SendWorkRequest>> = {
  valid: (f) => bindOf(f.pd.allocMw(MwType.TYPE_2), f.target, ALL_REMOTE),
  'MR without MW_BIND': (f) => bindOf(f.pd.allocMw(MwType.TYPE_2), f.pd.registerMemory(Buffer.alloc(4096), remoteAccess), ALL_REMOTE),
  'MR deregistered': (f) => {
    const mr = f.pd.registerMemory(Buffer.alloc(4096), remoteAccess | Access.MW_BIND);
    mr.close();
    return bindOf(f.pd.allocMw(MwType.TYPE_2), mr, ALL_REMOTE);
  },
  'MR of another PD': (f) => bindOf(f.pd.allocMw(MwType.TYPE_2), f.other.pd.registerMemory(Buffer.alloc(4096), remoteAccess | Access.MW_BIND), ALL_REMOTE),
  'window of another PD': (f) => bindOf(f.other.pd.allocMw(MwType.TYPE_2), f.target, ALL_REMOTE),
  'zero length': (f) => bindOf(f.pd.allocMw(MwType.TYPE_2), f.target, ALL_REMOTE, 0),
  'window already bound': (f) => {
    const { mw } = f.boundWindow(f.a, f.cqA, ALL_REMOTE);
    return bindOf(mw, f.target, ALL_REMOTE);
  },
  'type-1 window': (f) => bindOf(f.pd.allocMw(MwType.TYPE_1), f.target, ALL_REMOTE),
  'writable window on an MR without local write': (f) =>
    bindOf(f.pd.allocMw(MwType.TYPE_2), f.pd.registerMemory(Buffer.alloc(4096), Access.REMOTE_READ | Access.MW_BIND), Access.REMOTE_WRITE),
  'zero-based access': (f) => bindOf(f.pd.allocMw(MwType.TYPE_2), f.target, Access.REMOTE_READ | Access.ZERO_BASED),
  'every access bit': (f) => bindOf(f.pd.allocMw(MwType.TYPE_2), f.target, 0xffffffff),
  'rkey of another index': (f) => {
    const mw = f.pd.allocMw(MwType.TYPE_2);
    return { bind: { mw, rkey: (mw.rkey + 0x100) >>> 0, mr: f.target, length: 256, access: ALL_REMOTE } };
  },
  'rkey unchanged': (f) => {
    const mw = f.pd.allocMw(MwType.TYPE_2);
    return { bind: { mw, rkey: mw.rkey, mr: f.target, length: 256, access: ALL_REMOTE } };
  },
  'window beyond the MR': (f) => ({ bind: { mw: f.pd.allocMw(MwType.TYPE_2), rkey: 0, mr: f.target, offset: 4000, length: 256, access: ALL_REMOTE } }),
};

/** Invalidates a window bound through b from an RC QP (rxe has no LOCAL_INV on UC, and checks neither QP nor PD). */
function invalidate(f: Fixture, rkey: number): void {
  if (f.runLocal(f.other.qps[0], f.other.cqs[0], { opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }) !== 'SUCCESS') throw new Error('LOCAL_INV failed in setup');
}

function bindOf(mw: ReturnType<ProtectionDomain['allocMw']>, mr: MemoryRegion, access: number, length = 256): Partial<SendWorkRequest> {
  return { bind: { mw, rkey: mw.nextRkey(), mr, length, access } };
}

function waitFor(cq: CompletionQueue, wrId: bigint): string {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const batch = cq.poll();
    for (let i = 0; i < batch.count; i++) if (batch.wrId(i) === wrId) return WcStatus[batch.status(i)]!;
    if (Date.now() > deadline) throw new Error(`no completion ${wrId} within ${WAIT_MS} ms`);
    sleep(0.05);
  }
}

/** A refusal by the binding (or by the extended API, which lacks the opcode for the QP type: EOPNOTSUPP). */
const REFUSED = /post: RdmaError E(INVAL|OPNOTSUPP)/;
const ATOMICS = [WrOpcode.ATOMIC_CMP_AND_SWP, WrOpcode.ATOMIC_FETCH_AND_ADD];
const REMOTE_OPS = [WrOpcode.RDMA_WRITE, WrOpcode.RDMA_WRITE_WITH_IMM, WrOpcode.RDMA_READ, WrOpcode.ATOMIC_CMP_AND_SWP, WrOpcode.ATOMIC_FETCH_AND_ADD];
const SEND_OPS = [WrOpcode.SEND, WrOpcode.SEND_WITH_IMM];
const ALL_OPS = Object.values(WrOpcode).filter((v): v is WrOpcode => typeof v === 'number');
const CONSUMES_RECEIVE = new Set([WrOpcode.SEND, WrOpcode.SEND_WITH_IMM, WrOpcode.RDMA_WRITE_WITH_IMM, WrOpcode.SEND_WITH_INV]);

/** The request an opcode needs when its keys are valid. */
function validRequest(f: Fixture, opcode: WrOpcode): Partial<SendWorkRequest> {
  const atomic = ATOMICS.includes(opcode);
  // UD has no windows to bind (nor these opcodes): a plain key stands in.
  const ud = f.transport === 'UD';
  switch (opcode) {
    case WrOpcode.LOCAL_INV:
      return { invalidateRkey: ud ? f.target.rkey : f.boundWindow(f.a, f.cqA, ALL_REMOTE).rkey };
    case WrOpcode.SEND_WITH_INV:
      return { invalidateRkey: ud ? f.target.rkey : f.boundWindow(f.b, f.cqB, ALL_REMOTE).rkey, sgList: [{ mr: f.source, length: 8 }] };
    case WrOpcode.BIND_MW:
      return bindStates.valid!(f);
    default:
      return { sgList: [{ mr: atomic || opcode === WrOpcode.RDMA_READ ? f.sink : f.source, length: 8 }], remote: f.target.remote(0, 8), compareAdd: 0n, swap: 1n, immData: 7 };
  }
}

/** The send flags tried: each alone, none, and all at once (inline only on opcodes that carry data). */
const flagSets: Record<string, Partial<SendWorkRequest>> = {
  signaled: {},
  unsignaled: { signaled: false },
  solicited: { solicited: true },
  fence: { fence: true },
  inline: { inline: true },
  'unsignaled+solicited+fence+inline': { signaled: false, solicited: true, fence: true, inline: true },
};

interface Outcome {
  combination: string;
  post: string;
  sender?: string[];
  receiver?: string[];
}

const log = new KernelLog();
/** argv[3], to reproduce: only the combinations whose name contains it. */
const only = process.argv[3];
const wrong: string[] = [];
const kernel: string[] = [];
const tally: Record<string, number> = {};
let combinations = 0;

/** A combination's requests, or (for prepared lists) its own way of posting them. */
type Setup = () => SendWorkRequest | SendWorkRequest[] | { post(): void };

/**
 * Runs one combination: `setup` builds the request on fresh keys; it is posted on `a` followed by a
 * signaled SEND (the barrier: its completions on both sides come after everything before it), and the
 * completions of both sides are recorded. `expect`, when given, is the outcome it must have. After any
 * failure both QPs are reset and reconnected, and a SEND must work again.
 */
function run(f: Fixture, combination: string, setup: Setup, expect?: RegExp, barrier = true): void {
  const name = `${f.transport} ${f.extended ? 'extended' : 'classic'} ${combination}`;
  if (only !== undefined && !name.includes(only)) return;
  combinations++;
  console.log(JSON.stringify({ running: name }));
  log.mark(`wr-fuzz: ${name}`);
  const outcome: Outcome = { combination: name, post: 'posted' };
  let fenced = false;
  try {
    f.topUpReceives();
    const made = setup();
    const requests = 'post' in made ? [] : [made].flat().map((wr, i) => ({ wrId: i + 1, ...f.route(), ...wr }));
    fenced = requests.some((wr) => wr.fence);
    // Without a barrier, the last request is the one waited for.
    if (!barrier) requests.at(-1)!.wrId = 99;
    const last: SendWorkRequest[] = barrier ? [{ wrId: 99, opcode: WrOpcode.SEND, sgList: [], ...f.route() }] : [];
    try {
      if ('post' in made) made.post();
      f.a.postSend([...requests, ...last]);
    } catch (error) {
      const type = error instanceof Error ? error.constructor.name : typeof error;
      outcome.post = `${type}${error instanceof RdmaError ? ` ${error.code}` : ''}`;
      if (!ALLOWED_ERRORS.has(type)) wrong.push(`${name}: ${type}: ${(error as Error).message}`);
    }
    if (outcome.post === 'posted') {
      outcome.sender = drainSender(f.cqA, 99n);
      // Everything sent before the barrier that consumes a receive, and the barrier itself.
      const consumers = requests.filter((wr) => CONSUMES_RECEIVE.has(wr.opcode)).length + last.length;
      const delivered = outcome.sender.every((status) => status === 'SUCCESS');
      outcome.receiver = drainReceiver(f.cqB, consumers, delivered && f.transport === 'RC' ? WAIT_MS : 300);
      for (const _ of outcome.receiver) f.receiveCompleted();
    }
  } catch (error) {
    // rxe now and then never completes a fenced request (see the README): recorded, and the QPs must recover.
    if (fenced && (error as Error).message.includes('(a hang)')) outcome.sender = ['none: a fenced request never completed'];
    else wrong.push(`${name}: ${(error as Error).stack}`);
  }
  const summary = outcome.post === 'posted' ? `sender ${outcome.sender?.join(',')} / receiver ${outcome.receiver?.join(',') || 'none'}` : `post: ${outcome.post}`;
  tally[summary] = (tally[summary] ?? 0) + 1;
  if (expect && !expect.test(summary)) wrong.push(`${name}: expected ${expect}, got ${summary}`);
  console.log(JSON.stringify({ ...outcome, summary }));
  const clean = outcome.sender?.every((s) => s === 'SUCCESS') && outcome.receiver?.every((s) => s === 'SUCCESS');
  if (!clean || f.a.state !== QpState.RTS || f.b.state !== QpState.RTS) recover(f, name);
  checkKernel(name);
}

function recover(f: Fixture, name: string): void {
  try {
    sleep(20); // late completions of a list the provider took in part
    f.reconnect();
    f.a.postSend({ wrId: 98, opcode: WrOpcode.SEND, sgList: [{ mr: f.source, length: 8 }], ...f.route() });
    const sent = drainSender(f.cqA, 98n);
    const arrived = drainReceiver(f.cqB, 1, WAIT_MS);
    f.receiveCompleted();
    if (sent.join() !== 'SUCCESS' || arrived.join() !== 'SUCCESS') wrong.push(`${name}: after reconnecting, a SEND gave ${sent} / ${arrived}`);
  } catch (error) {
    wrong.push(`${name}: the QPs did not recover: ${(error as Error).message}`);
  }
}

function statusName(status: number): string {
  return WcStatus[status] ?? `status ${status}`;
}

/** The sender's completions up to the barrier `wrId` (completed or flushed); a hang if it never comes. */
function drainSender(cq: CompletionQueue, wrId: bigint): string[] {
  const statuses: string[] = [];
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const batch = cq.poll();
    for (let i = 0; i < batch.count; i++) {
      statuses.push(statusName(batch.status(i)));
      if (batch.wrId(i) === wrId) return statuses;
    }
    if (Date.now() > deadline) throw new Error(`the barrier did not complete within ${WAIT_MS} ms (a hang); so far: ${statuses}`);
    sleep(0.05);
  }
}

/** The receiver's receive completions: `expected` of them, or up to an error, or what came within `ms`. */
function drainReceiver(cq: CompletionQueue, expected: number, ms: number): string[] {
  const statuses: string[] = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const batch = cq.poll();
    for (let i = 0; i < batch.count; i++) {
      if (batch.wrId(i) < 1_000_000n) continue; // a setup bind of b's
      statuses.push(statusName(batch.status(i)));
    }
    if (statuses.length >= expected || statuses.some((s) => s !== 'SUCCESS') || Date.now() > deadline) return statuses;
    sleep(0.05);
  }
}

function checkKernel(name: string): void {
  const trouble = log.trouble();
  if (trouble.length > 0) kernel.push(`${name}: ${trouble.join(' | ')}`);
}

function fuzzTransport(context: Context, transport: Transport, extended: boolean): void {
  const f = new Fixture(context, transport, extended);
  // Every opcode × every flag set, keys valid.
  for (const opcode of ALL_OPS) {
    for (const [flags, extra] of Object.entries(flagSets)) {
      // Refused: rxe would take the inline bytes for the SGEs the reply lands in.
      const refused = extra.inline && (opcode === WrOpcode.RDMA_READ || ATOMICS.includes(opcode)) ? REFUSED : undefined;
      run(f, `${WrOpcode[opcode]} ${flags}`, () => ({ opcode, ...validRequest(f, opcode), ...extra }), refused);
    }
  }
  if (transport === 'UD') {
    // Windows cannot be bound through UD QPs: the window-key state is left out.
    const states = Object.entries(localStates).filter(([state]) => !state.includes('window'));
    for (const opcode of SEND_OPS) for (const [state, make] of states) run(f, `${WrOpcode[opcode]} local ${state}`, () => ({ opcode, sgList: make(f) }));
    return f.close();
  }
  const remoteOps = transport === 'RC' ? REMOTE_OPS : [WrOpcode.RDMA_WRITE, WrOpcode.RDMA_WRITE_WITH_IMM];
  // Remote keys × the operations that name one, signaled and not.
  for (const opcode of remoteOps) {
    for (const [state, make] of Object.entries(remoteStates)) {
      for (const signaled of [true, false]) {
        run(f, `${WrOpcode[opcode]} remote ${state}${signaled ? '' : ' unsignaled'}`, () => ({ ...validRequest(f, opcode), opcode, signaled, ...make(f) }));
      }
    }
  }
  // Local keys × every data-carrying operation.
  for (const opcode of [...SEND_OPS, ...remoteOps, WrOpcode.SEND_WITH_INV]) {
    for (const [state, make] of Object.entries(localStates)) {
      run(f, `${WrOpcode[opcode]} local ${state}`, () => ({ ...validRequest(f, opcode), opcode, sgList: make(f) }));
    }
  }
  // Invalidations × what they name. A SEND_WITH_INV whose key the receiver cannot invalidate completes
  // successfully at the sender while the receiver goes to the error state without telling it (rxe's "class
  // J"): the sender's next request would never complete, so no barrier follows these.
  for (const opcode of [WrOpcode.LOCAL_INV, WrOpcode.SEND_WITH_INV]) {
    for (const [state, make] of Object.entries(invalidateStates)) {
      // Refused: what would oops rxe, and a SEND_WITH_INV that would hang the sender, where the window is this context's.
      const oops = state === 'type-2 window never bound' || state === 'type-2 window invalidated';
      const hang = opcode === WrOpcode.SEND_WITH_INV && (state.startsWith('type-1') || state.includes('stale key'));
      const refused = oops || hang ? REFUSED : undefined;
      run(f, `${WrOpcode[opcode]} of ${state}`, () => ({ opcode, invalidateRkey: make(f), sgList: [] }), refused, opcode === WrOpcode.LOCAL_INV);
    }
  }
  // Binds × what they bind.
  for (const [state, make] of Object.entries(bindStates)) {
    for (const signaled of [true, false]) run(f, `BIND_MW ${state}${signaled ? '' : ' unsignaled'}`, () => ({ opcode: WrOpcode.BIND_MW, signaled, ...make(f) }));
  }
  f.close();
}

/**
 * Sequences around type-2 windows where the binding's idea of a window's state and rxe's can part: each
 * that would invalidate a window rxe has not bound (a NULL dereference in rxe_invalidate_mw, a kernel
 * oops on stock rxe) must be refused with EINVAL; the others must work.
 */
function fuzzWindows(context: Context, extended: boolean): void {
  const f = new Fixture(context, 'RC', extended);
  const refused = /post: RdmaError EINVAL/;
  /** A fresh type-2 window and a bind of it posted on `qp`, not waited for: the window's key before and in it. */
  const postBind = (qp: QueuePair, mr = f.target) => {
    const mw = f.pd.allocMw(MwType.TYPE_2);
    const original = mw.rkey; // rxe's key for the window until a bind runs
    qp.postSend({ wrId: 5, opcode: WrOpcode.BIND_MW, bind: { mw, rkey: mw.nextRkey(), mr, length: 256, access: ALL_REMOTE } });
    return { original, rkey: mw.nextRkey() };
  };
  /** A bind posted on b that rxe never ran (failed or flushed), b reconnected. */
  const unrun = (bind: () => { original: number; rkey: number }) => {
    const keys = bind();
    if (waitFor(f.cqB, 5n) === 'SUCCESS') throw new Error('the bind was expected to fail');
    f.reconnect();
    return keys;
  };
  const noBind = f.pd.registerMemory(Buffer.alloc(4096), remoteAccess);
  const failed = () => unrun(() => postBind(f.b, noBind));
  const localInv = (invalidateRkey: number): SendWorkRequest => ({ opcode: WrOpcode.LOCAL_INV, invalidateRkey });
  run(f, 'LOCAL_INV of a window whose bind failed, with its allocation key', () => localInv(failed().original), refused);
  run(f, 'LOCAL_INV of a window whose bind failed, with the bind key', () => localInv(failed().rkey), refused);
  run(f, 'SEND_WITH_INV of a window whose bind failed', () => ({ opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: failed().original, sgList: [] }), refused);
  const flushed = () => unrun(() => (f.b.modify({ qpState: QpState.ERR }), postBind(f.b)));
  run(f, 'LOCAL_INV of a window whose bind was flushed (its QP in error)', () => localInv(flushed().original), refused);
  run(f, 'LOCAL_INV of a window whose bind was posted on b and not yet completed', () => localInv(postBind(f.b).original), refused);
  run(f, 'LOCAL_INV of a window reset away before its bind ran', () => {
    const { original } = postBind(f.a);
    f.reconnect();
    return localInv(original);
  }, refused);
  run(
    f,
    'two LOCAL_INV of one bound window in one list',
    () => {
      const { rkey } = f.boundWindow(f.a, f.cqA, ALL_REMOTE);
      return [{ opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }, { opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }];
    },
    refused,
  );
  run(
    f,
    'BIND_MW, LOCAL_INV, LOCAL_INV in one list',
    () => {
      const mw = f.pd.allocMw(MwType.TYPE_2);
      const rkey = mw.nextRkey();
      return [{ opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr: f.target, length: 256, access: ALL_REMOTE } }, { opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }, { opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }];
    },
    refused,
  );
  run(
    f,
    'LOCAL_INV then SEND_WITH_INV of one bound window in one list',
    () => {
      const { rkey } = f.boundWindow(f.b, f.cqB, ALL_REMOTE);
      return [{ opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }, { opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: rkey, sgList: [] }];
    },
    refused,
  );
  // These are sound and must work.
  run(f, 'BIND_MW then LOCAL_INV in one list', () => {
    const mw = f.pd.allocMw(MwType.TYPE_2);
    const rkey = mw.nextRkey();
    return [{ opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr: f.target, length: 256, access: ALL_REMOTE } }, { opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }];
  }, /sender SUCCESS,SUCCESS,SUCCESS \/ receiver SUCCESS$/);
  run(f, 'unsignaled BIND_MW, then LOCAL_INV from the other QP after a later completion', () => {
    const mw = f.pd.allocMw(MwType.TYPE_2);
    const rkey = mw.nextRkey();
    f.b.postSend([{ wrId: 5, signaled: false, opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr: f.target, length: 256, access: ALL_REMOTE } }]);
    f.runLocal(f.b, f.cqB, { opcode: WrOpcode.RDMA_WRITE, sgList: [], remote: f.source.remote(0, 0) });
    return { opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey };
  }, /sender SUCCESS,SUCCESS \/ receiver SUCCESS$/);
  // Prepared lists are checked at every post, not only when prepared.
  run(
    f,
    'prepared LOCAL_INV posted twice',
    () => {
      const { rkey } = f.boundWindow(f.a, f.cqA, ALL_REMOTE);
      const prepared = f.a.prepareSend([{ wrId: 6, opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }]);
      prepared.post();
      waitFor(f.cqA, 6n);
      return { post: () => prepared.post() };
    },
    /post: RdmaError EINVAL/,
  );
  run(
    f,
    'prepared BIND_MW + LOCAL_INV, the LOCAL_INV posted alone',
    () => {
      const mw = f.pd.allocMw(MwType.TYPE_2);
      const rkey = mw.nextRkey();
      const prepared = f.a.prepareSend([{ opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr: f.target, length: 256, access: ALL_REMOTE } }, { wrId: 6, opcode: WrOpcode.LOCAL_INV, invalidateRkey: mw.rkey }]);
      return { post: () => prepared.post(1, 1) };
    },
    /post: RdmaError EINVAL/,
  );
  f.close();
}

const [transport, api] = (process.argv[2] ?? '').split('-') as [Transport | 'windows', string];
const context = open();
try {
  if (transport === 'windows') fuzzWindows(context, api === 'extended');
  else fuzzTransport(context, transport, api === 'extended');
} finally {
  context.close();
}
checkKernel('closing everything');
console.log(JSON.stringify({ combinations, wrong, kernel, tally }));
