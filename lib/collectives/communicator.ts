/**
 * A communicator: collectives over RDMA between the ranks of a job. `await communicator(job)` connects an
 * RC queue pair to every rank (job.connect), starts the C engine on them (native/collectives), and each
 * collective then returns a promise that settles when this rank's part is done; the event loop runs
 * meanwhile. Collectives run one at a time, in the order called, and every rank must call the same ones
 * in the same order with matching sizes (as in MPI); a mismatch is detected and rejects with EPROTO.
 *
 * Failures end the collective on every rank and leave the communicator broken (every later call rejects
 * the same way): an AbortSignal (ECANCELED), a timeout (ETIMEDOUT), a rank that died (ECONNRESET, seen
 * through the liveness connections), a failed transfer.
 */
import { rdmaError } from '../core/errors';
import { parseGid, gidIpv4 } from '../core/gid';
import { native, type NativeCollectiveEngine, type NativeCollectiveSpec } from '../native';
import type { ConnectOptions, JobConnections } from '../jobs/connect';
import { Job } from '../jobs/join';
import { Liveness } from './liveness';
import type { Plan } from './plan';
import * as schedules from './schedules';
import { type DataTypeName, dataTypeOf, dataTypes, reduceOpOf, type ReduceOpName } from './types';

export interface CommunicatorOptions extends Pick<ConnectOptions, 'device' | 'portNum' | 'gidIndex'> {
  /** Inbox slots per peer (default 16) and their size in bytes (default 64 KiB): the pipelining unit. */
  slots?: number;
  chunkBytes?: number;
  /** Default time limit of each collective in ms (default none; a dead rank is detected regardless). */
  timeoutMs?: number;
  /** Overrides of the algorithm switch points (schedules.ts). */
  thresholds?: Partial<schedules.Thresholds>;
  /** Time limit of setting the communicator up (default 60 s). */
  setupTimeoutMs?: number;
}

export interface CollectiveOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface ReduceOptions extends CollectiveOptions {
  /** The element type of a Buffer/Uint8Array/DataView; typed arrays carry their own. */
  type?: DataTypeName;
}

type View = ArrayBufferView;

const bytesOf = (view: View): Uint8Array => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);

function viewOf(value: unknown, what: string): View {
  if (!ArrayBuffer.isView(value)) throw new TypeError(`${what} must be a Buffer, typed array or DataView`);
  return value;
}

/** A new view of `bytes` bytes of the same kind as `like`. */
function alike<V extends View>(like: V, bytes: number): V {
  const Kind = like.constructor as new (length: number) => V;
  const per = (like as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
  if (like instanceof DataView) return new DataView(new ArrayBuffer(bytes)) as unknown as V;
  if (Buffer.isBuffer(like)) return Buffer.alloc(bytes) as unknown as V;
  return new Kind(bytes / per);
}

function checkRoot(root: unknown, size: number): number {
  if (!Number.isInteger(root) || (root as number) < 0 || (root as number) >= size) throw new RangeError(`root must be a rank from 0 to ${size - 1}`);
  return root as number;
}

export class Communicator implements Disposable {
  readonly #engine: NativeCollectiveEngine;
  readonly #links: JobConnections;
  readonly #liveness: Liveness | undefined;
  readonly #thresholds: schedules.Thresholds;
  readonly #timeoutMs: number;
  readonly #plans = new Map<string, Plan>();
  #tail: Promise<void> = Promise.resolve();
  #closed = false;
  #inFlight = false;

  /** @internal use communicator(job) */
  constructor(readonly rank: number, readonly size: number, links: JobConnections, engine: NativeCollectiveEngine, liveness: Liveness | undefined, options: CommunicatorOptions) {
    this.#links = links;
    this.#engine = engine;
    this.#liveness = liveness;
    this.#thresholds = { ...schedules.defaultThresholds, ...options.thresholds };
    this.#timeoutMs = options.timeoutMs ?? 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once every rank has entered it. */
  async barrier(options: CollectiveOptions = {}): Promise<void> {
    return this.#run(() => this.#plan('barrier', () => schedules.barrier(this.rank, this.size)), {}, options);
  }

  /** `buffer` of `root` to every rank's `buffer` (same length on every rank). */
  async broadcast<V extends View>(buffer: V, root: number, options: CollectiveOptions = {}): Promise<V> {
    const view = viewOf(buffer, 'buffer');
    root = checkRoot(root, this.size);
    const bytes = view.byteLength;
    const plan = (): Plan => this.#plan(`bcast:${root}:${bytes}`, () => schedules.broadcast(this.rank, this.size, root, bytes, this.#thresholds));
    const io = this.rank === root ? { input: bytesOf(view) } : { output: bytesOf(view) };
    return this.#run(plan, io, options).then(() => buffer);
  }

  /** The element-wise reduction of every rank's `src`, into `dst` (default a new array like `src`) on every rank. */
  async allreduce<V extends View>(src: V, dst?: V, op: ReduceOpName = 'sum', options: ReduceOptions = {}): Promise<V> {
    const { out, type, code } = this.#reduction(src, dst, op, options, 1);
    const count = src.byteLength / dataTypes[type].bytes;
    const plan = (): Plan => this.#plan(`allreduce:${count}:${type}`, () => schedules.allreduce(this.rank, this.size, count, dataTypes[type].bytes, this.#thresholds));
    return this.#run(plan, { input: bytesOf(src), output: bytesOf(out), dtype: dataTypes[type].code, op: code }, options).then(() => out);
  }

  /** As allreduce, with the result at `root` only (`dst` there; other ranks' `dst` is left alone). */
  async reduce<V extends View>(src: V, dst: V | undefined, op: ReduceOpName, root: number, options: ReduceOptions = {}): Promise<V | undefined> {
    root = checkRoot(root, this.size);
    const mine = this.rank === root;
    const { out, type, code } = this.#reduction(src, mine ? dst : src, op, options, 1);
    const count = src.byteLength / dataTypes[type].bytes;
    const plan = (): Plan => this.#plan(`reduce:${root}:${count}:${type}`, () => schedules.reduce(this.rank, this.size, root, count, dataTypes[type].bytes, this.#thresholds));
    const io = { input: bytesOf(src), output: mine ? bytesOf(out) : undefined, dtype: dataTypes[type].code, op: code };
    return this.#run(plan, io, options).then(() => (mine ? out : undefined));
  }

  /** Every rank's `src` (same length everywhere), in rank order, into `dst` (size × src bytes). */
  async allgather<V extends View>(src: V, dst?: V, options: CollectiveOptions = {}): Promise<V> {
    const view = viewOf(src, 'src');
    const bytes = view.byteLength;
    const out = this.#output(view, dst, bytes * this.size);
    const plan = (): Plan => this.#plan(`allgather:${bytes}`, () => schedules.allgather(this.rank, this.size, bytes, this.#thresholds));
    return this.#run(plan, { input: bytesOf(view), output: bytesOf(out) }, options).then(() => out);
  }

  /** Block `rank` of the reduction of every rank's `src` (size equal blocks), into `dst` (one block). */
  async reduceScatter<V extends View>(src: V, dst?: V, op: ReduceOpName = 'sum', options: ReduceOptions = {}): Promise<V> {
    const { out, type, code } = this.#reduction(src, dst, op, options, this.size);
    const count = src.byteLength / dataTypes[type].bytes / this.size;
    const plan = (): Plan => this.#plan(`reducescatter:${count}:${type}`, () => schedules.reduceScatter(this.rank, this.size, count, dataTypes[type].bytes));
    return this.#run(plan, { input: bytesOf(src), output: bytesOf(out), dtype: dataTypes[type].code, op: code }, options).then(() => out);
  }

  /** Block p of `src` (size equal blocks) to rank p; block q of `dst` from rank q. */
  async alltoall<V extends View>(src: V, dst?: V, options: CollectiveOptions = {}): Promise<V> {
    const view = viewOf(src, 'src');
    if (view.byteLength % this.size !== 0) throw new RangeError(`src must hold ${this.size} equal blocks`);
    const out = this.#output(view, dst, view.byteLength);
    const bytes = view.byteLength / this.size;
    const plan = (): Plan => this.#plan(`alltoall:${bytes}`, () => schedules.alltoall(this.rank, this.size, bytes, this.#thresholds));
    return this.#run(plan, { input: bytesOf(view), output: bytesOf(out) }, options).then(() => out);
  }

  /** Ends a collective in flight (ECANCELED on every rank) and frees the connections. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The engine tells the peers of a collective it ends, but its abort may not leave before the queue
    // pairs go: then the liveness connections end without a goodbye, and the peers see ECONNRESET.
    this.#engine.close();
    this.#liveness?.close({ goodbye: !this.#inFlight });
    this.#links.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #output<V extends View>(src: View, dst: V | undefined, bytes: number): V {
    if (dst === undefined) return alike(src as V, bytes);
    const view = viewOf(dst, 'dst') as V;
    if (view.byteLength !== bytes) throw new RangeError(`dst must have ${bytes} bytes, not ${view.byteLength}`);
    return view;
  }

  #reduction<V extends View>(src: V, dst: V | undefined, op: ReduceOpName, options: ReduceOptions, blocks: number): { out: V; type: DataTypeName; code: number } {
    const view = viewOf(src, 'src');
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const type = dataTypeOf(view, options.type, 'src');
    const code = reduceOpOf(op, type);
    const element = dataTypes[type].bytes;
    if (view.byteLength % (element * blocks) !== 0) throw new RangeError(`src must hold ${blocks > 1 ? `${blocks} equal blocks of ` : ''}whole ${type} elements`);
    if (dst !== undefined) dataTypeOf(viewOf(dst, 'dst'), type, 'dst');
    return { out: this.#output(view, dst, view.byteLength / blocks), type, code };
  }

  #plan(key: string, make: () => Plan): Plan {
    let plan = this.#plans.get(key);
    if (plan === undefined) {
      if (this.#plans.size >= 256) this.#plans.clear();
      plan = make();
      this.#plans.set(key, plan);
    }
    return plan;
  }

  async #run(plan: () => Plan, io: { input?: Uint8Array; output?: Uint8Array; dtype?: number; op?: number }, options: CollectiveOptions): Promise<void> {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('signal must be an AbortSignal');
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0) || timeoutMs > 2 ** 31) throw new RangeError('timeoutMs is a number of milliseconds (0: none)');
    if (this.#closed) throw new TypeError('the communicator is closed');
    const compiled = plan();
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => (release = resolve));
    try {
      await previous;
      if (this.#closed) throw rdmaError('collective', 'ECANCELED', 'the communicator was closed');
      const spec: NativeCollectiveSpec = { ...compiled, plan: compiled.ops, timeoutMs, ...io };
      const done = this.#engine.run(spec);
      // An abort still runs the collective, to tell the other ranks: they must not wait for this one.
      const abort = (): void => this.#engine.abort();
      signal?.addEventListener('abort', abort, { once: true });
      if (signal?.aborted) abort();
      this.#inFlight = true;
      try {
        await done;
      } finally {
        this.#inFlight = false;
        signal?.removeEventListener('abort', abort);
      }
    } finally {
      release();
    }
  }
}

/** A communicator over every rank of `job` (see the module's comment). */
export async function communicator(job: Job, options: CommunicatorOptions = {}): Promise<Communicator> {
  if (!(job instanceof Job)) throw new TypeError('job must be a Job from joinJob()');
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const slots = options.slots ?? 16;
  const chunk = options.chunkBytes ?? 64 << 10;
  const setupTimeoutMs = options.setupTimeoutMs ?? 60_000;
  const { rank, size } = job;
  // Queue depths the engine's protocol needs (Engine::SendDepth/RecvDepth in native/collectives/engine.h).
  const links = await job.connect({
    device: options.device, portNum: options.portNum, gidIndex: options.gidIndex,
    maxSendWr: slots + 8, maxRecvWr: 2 * slots + 8, cqe: Math.max(1024, (size - 1) * (3 * slots + 16)),
  });
  let engine: NativeCollectiveEngine | undefined;
  let liveness: Liveness | undefined;
  try {
    engine = native.createCollectiveEngine(links.pd.handle, links.cq.handle, links.qps.map((qp) => qp?.handle ?? null), rank, { slots, chunk });
    liveness = size > 1 ? await Liveness.listen() : undefined;
    const gid = links.qps.find((qp) => qp !== undefined)?.address({ portNum: options.portNum, gidIndex: options.gidIndex }).gid;
    const host = (gid !== undefined ? gidIpv4(parseGid(gid)) : undefined) ?? '127.0.0.1';
    const inbox = engine.inbox;
    const mine = { addr: inbox.addr.toString(), rkey: inbox.rkey, host, port: liveness?.port ?? 0 };
    const table = (await job.allgather(Buffer.from(JSON.stringify(mine)))).map((bytes) => JSON.parse(bytes.toString()) as typeof mine);
    engine.setPeers(table.map((peer, p) => (p === rank ? null : { addr: BigInt(peer.addr), rkey: peer.rkey })));
    const running = engine;
    await liveness?.connect(rank, table.map((peer, p) => (p === rank ? null : { host: peer.host, port: peer.port })), (peer) => running.peerLost(peer), setupTimeoutMs);
    await job.barrier(); // every rank's receives are posted before anyone writes
    return new Communicator(rank, size, links, engine, liveness, options);
  } catch (error) {
    liveness?.close({ goodbye: false });
    engine?.close();
    links.close();
    throw error;
  }
}
