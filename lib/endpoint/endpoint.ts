/**
 * Connected endpoints for people: listen()/connect() over the RDMA connection manager, then send() and
 * receive() messages and write()/read()/compareAndSwap()/fetchAndAdd() against a peer's registered
 * memory, each a promise settled by its completion. Receive buffers are replenished for the caller, and
 * send credits keep the peer from ever seeing a send it has no buffer for. close() disconnects and settles
 * everything pending; a peer that disconnects or dies makes pending operations reject.
 */
import { EventEmitter } from 'node:events';

import type { BufferSource } from '../core/buffers';
import { CmId, type CmEvent } from '../cm/id';
import { CompletionBatch, CompletionError } from '../verbs/completion';
import { Access, WcFlags, WcOpcode, WcStatus, WrOpcode, enumName } from '../verbs/constants';
import type { CompletionQueue } from '../verbs/cq';
import { RdmaError, rdmaError } from '../core/errors';
import { CreditWindow, MessageKind, decodeHello, decodeImm, encodeHello, encodeImm, type Hello } from './protocol';
import type { MemoryRegion, RemoteRegion } from '../verbs/mr';
import type { ProtectionDomain } from '../verbs/pd';
import type { QueuePair } from '../verbs/qp/qp';
import type { SendWorkRequest } from '../verbs/qp/work-request';

export interface EndpointOptions {
  /** Largest message send()/receive() handle (default 64 KiB). */
  maxMessageSize?: number;
  /** Receives kept posted, i.e. messages the peer may have in flight (default 32). */
  receiveDepth?: number;
  /** Operations (sends, writes, reads, atomics) in flight at once (default 64). */
  sendDepth?: number;
  /** Connection set-up timeout (default 10 s). */
  timeoutMs?: number;
  /**
   * Keepalive period in ms (default 10 s; 0: none). Each period a zero-length RDMA write goes to the peer;
   * one not acknowledged two periods later ends the connection (ETIMEDOUT, verb 'keepalive'), so a peer
   * that vanished is noticed within three periods. Soft-RoCE does not fail a request whose peer is gone
   * (no RETRY_EXC_ERR at the retry count of 7 endpoints use, measured; kernel/patches 0005), and a pending
   * receive learns of nothing on any device, so without this it waits for ever.
   */
  keepaliveMs?: number;
}

export interface OperationOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A local region for write()/read(): an MR, or part of one. */
export type LocalRegion = MemoryRegion | { mr: MemoryRegion; offset?: number; length?: number };

const CONTROL_RECEIVES = 2; // receives beyond the credits, for credit-only messages
const RECV_ID_BASE = 2 ** 40; // wrIds at and above this are receive slots
const defaults = { maxMessageSize: 64 << 10, receiveDepth: 32, sendDepth: 64, timeoutMs: 10_000, keepaliveMs: 10_000 };
/** Send queue entries beyond sendDepth: one credit message and one keepalive probe. */
const CONTROL_SENDS = 2;

/** A send slot holds a message, or the 8 bytes an atomic returns. */
const sendSlotBytes = (options: Required<EndpointOptions>): number => Math.max(8, options.maxMessageSize);

interface Pending {
  resolve(): void;
  reject(error: Error): void;
  /** Runs at the completion, even of an abandoned request: frees (and first reads) what it used. */
  done?(): void;
}

/**
 * Events: 'close' (after the connection ends, whoever ended it), 'error' is never emitted: failures
 * reject the operations they concern.
 */
export class Endpoint extends EventEmitter implements AsyncDisposable {
  readonly pd: ProtectionDomain;
  readonly #id: CmId;
  readonly #cq: CompletionQueue;
  readonly #qp: QueuePair;
  readonly #options: Required<EndpointOptions>;
  readonly #peer: Hello;
  readonly #credits: CreditWindow;
  readonly #recvSlab: MemoryRegion;
  readonly #sendSlab: MemoryRegion;
  readonly #freeSendSlots: number[];
  readonly #pending = new Map<number, Pending>();
  readonly #received: Buffer[] = [];
  readonly #receivers: { resolve(message: Buffer): void; reject(error: Error): void }[] = [];
  readonly #creditWaiters: (() => void)[] = [];
  #nextId = 1;
  #inFlight = 0;
  #creditMessageInFlight = false;
  #ended: RdmaError | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  /** Timer ticks since the keepalive probe in flight left (undefined: none in flight). */
  #probeTicks: number | undefined;

  /** @internal Use connect() or a Listener. */
  constructor(id: CmId, pd: ProtectionDomain, cq: CompletionQueue, qp: QueuePair, options: Required<EndpointOptions>, peer: Hello, slabs: MemoryRegion[]) {
    super();
    this.#id = id;
    this.pd = pd;
    this.#cq = cq;
    this.#qp = qp;
    this.#options = options;
    this.#peer = peer;
    this.#credits = new CreditWindow(peer.credits, options.receiveDepth);
    [this.#recvSlab, this.#sendSlab] = slabs as [MemoryRegion, MemoryRegion];
    this.#freeSendSlots = Array.from({ length: options.sendDepth }, (_, i) => i);
    id.on('disconnected', () => this.#end(rdmaError('connection', 'ECONNRESET', 'the peer disconnected')));
    id.on('device-removal', () => this.#end(rdmaError('connection', 'ENODEV', 'the device was removed')));
    if (options.keepaliveMs > 0) this.#keepalive = setInterval(() => this.#probe(), options.keepaliveMs).unref();
    void this.#dispatch();
  }

  get localAddress(): { address: string; port: number } | undefined {
    return this.#id.localAddress;
  }

  get remoteAddress(): { address: string; port: number } | undefined {
    return this.#id.remoteAddress;
  }

  /** True once the connection has ended (closed here, or by the peer). */
  get closed(): boolean {
    return this.#ended !== undefined;
  }

  /** Largest message the peer accepts. */
  get maxMessageSize(): number {
    return this.#peer.maxMessageSize;
  }

  /** Registers memory on this endpoint's PD, by default for the peer to read, write and update atomically. */
  registerMemory(buffer: BufferSource, access: number = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC): MemoryRegion {
    this.#check();
    return this.pd.registerMemory(buffer, access);
  }

  /** Sends one message (copied at once, so `data` may be reused when this returns). */
  async send(data: Uint8Array, options: OperationOptions = {}): Promise<void> {
    checkOptions(options);
    this.#check();
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Buffer or Uint8Array');
    if (data.length > this.#peer.maxMessageSize) throw new RangeError(`message of ${data.length} bytes exceeds the peer's ${this.#peer.maxMessageSize}`);
    await this.#capacity(options, true);
    const slot = this.#freeSendSlots.pop()!;
    const offset = slot * sendSlotBytes(this.#options);
    this.#sendSlab.bytes.set(data, offset);
    await this.#post(options, (wrId) => ({
      wrId, opcode: WrOpcode.SEND_WITH_IMM, immData: encodeImm(MessageKind.DATA, this.#credits.collect()),
      sgList: [{ mr: this.#sendSlab, offset, length: data.length }],
    }), () => this.#freeSendSlots.push(slot));
  }

  /** The next message, in order. */
  receive(options: OperationOptions = {}): Promise<Buffer> {
    try {
      checkOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const queued = this.#received.shift();
    if (queued) {
      this.#consumed();
      return Promise.resolve(queued);
    }
    if (this.#ended) return Promise.reject(this.#ended);
    return this.#bounded(options, 'receive', (resolve, reject) => {
      const receiver = { resolve, reject };
      this.#receivers.push(receiver);
      return () => this.#receivers.splice(this.#receivers.indexOf(receiver), 1);
    });
  }

  /** Messages as they arrive; ends when the connection does. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      try {
        yield await this.receive();
      } catch (error) {
        if (this.closed) return;
        throw error;
      }
    }
  }

  /** RDMA WRITE of `local` to `remote`. */
  async write(local: LocalRegion, remote: RemoteRegion | { addr: bigint; rkey: number }, options: OperationOptions = {}): Promise<void> {
    await this.#rdma(WrOpcode.RDMA_WRITE, local, remote, options);
  }

  /** RDMA READ of `remote` into `local`. */
  async read(local: LocalRegion, remote: RemoteRegion | { addr: bigint; rkey: number }, options: OperationOptions = {}): Promise<void> {
    await this.#rdma(WrOpcode.RDMA_READ, local, remote, options);
  }

  /** Atomically: if the remote 8 bytes equal `compare`, store `swap`. Resolves with the old value. */
  compareAndSwap(remote: { addr: bigint; rkey: number }, compare: bigint, swap: bigint, options: OperationOptions = {}): Promise<bigint> {
    return this.#atomic(WrOpcode.ATOMIC_CMP_AND_SWP, remote, compare, swap, options);
  }

  /** Atomically adds `add` to the remote 8 bytes. Resolves with the old value. */
  fetchAndAdd(remote: { addr: bigint; rkey: number }, add: bigint, options: OperationOptions = {}): Promise<bigint> {
    return this.#atomic(WrOpcode.ATOMIC_FETCH_AND_ADD, remote, add, 0n, options);
  }

  /** Disconnects gracefully, rejects whatever is pending with ECANCELED, and frees the resources. Idempotent. */
  async close(): Promise<void> {
    if (this.#ended === undefined) {
      this.#end(rdmaError('endpoint', 'ECANCELED', 'the endpoint was closed'));
      await this.#id.disconnect({ timeoutMs: 2000 }).catch(() => undefined);
    }
    this.#release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #check(): void {
    if (this.#ended) throw this.#ended;
  }

  async #rdma(opcode: WrOpcode, local: LocalRegion, remote: { addr: bigint; rkey: number }, options: OperationOptions): Promise<void> {
    checkOptions(options);
    this.#check();
    const sge = 'mr' in local ? local : { mr: local };
    await this.#capacity(options, false);
    await this.#post(options, (wrId) => ({ wrId, opcode, sgList: [sge], remote }));
  }

  async #atomic(opcode: WrOpcode, remote: { addr: bigint; rkey: number }, compareAdd: bigint, swap: bigint, options: OperationOptions): Promise<bigint> {
    checkOptions(options);
    this.#check();
    await this.#capacity(options, false);
    // The old value lands in a send slot of its own until the completion has been read.
    const slot = this.#freeSendSlots.pop()!;
    const offset = slot * sendSlotBytes(this.#options);
    let old = 0n;
    await this.#post(options, (wrId) => ({ wrId, opcode, compareAdd, swap, remote, sgList: [{ mr: this.#sendSlab, offset, length: 8 }] }), () => {
      old = Buffer.from(this.#sendSlab.bytes.buffer, this.#sendSlab.bytes.byteOffset + offset, 8).readBigUInt64LE(0);
      this.#freeSendSlots.push(slot);
    });
    return old;
  }

  /**
   * Waits for room in the send queue (then there is a free send slot too) and, for a message, a credit,
   * taking the credit. Both are checked together after every wake-up: nothing may post in between.
   */
  async #capacity(options: OperationOptions, message: boolean): Promise<void> {
    while (this.#inFlight >= this.#options.sendDepth || (message && this.#credits.available === 0)) {
      await this.#waitForCapacity(options);
      this.#check(); // the end of the connection wakes the waiters too
    }
    if (message) this.#credits.take();
  }

  #waitForCapacity(options: OperationOptions): Promise<void> {
    return this.#bounded(options, 'send', (resolve) => {
      const waiter = () => resolve();
      this.#creditWaiters.push(waiter);
      return () => this.#creditWaiters.splice(this.#creditWaiters.indexOf(waiter), 1);
    });
  }

  #wake(): void {
    for (const waiter of this.#creditWaiters.splice(0)) waiter();
  }

  /**
   * Posts one signaled request and resolves on its successful completion. `done` runs at the completion
   * whatever became of the promise: an aborted request still owns its send slot until the device is done.
   * A request the QP refuses (a bad remote key type, a closed region) gives its slot back at once.
   */
  #post(options: OperationOptions, build: (wrId: number) => Parameters<QueuePair['postSend']>[0], done?: () => void): Promise<void> {
    this.#check();
    const wrId = this.#nextId++;
    try {
      this.#qp.postSend(build(wrId));
    } catch (error) {
      done?.();
      this.#wake();
      throw error;
    }
    this.#inFlight++;
    return this.#bounded<void>(options, 'operation', (resolve, reject) => {
      this.#pending.set(wrId, { resolve, reject, done });
      return () => this.#pending.set(wrId, { resolve: () => undefined, reject: () => undefined, done });
    });
  }

  /** A promise that also rejects on abort or timeout, undoing its registration. */
  #bounded<T>(options: OperationOptions, what: string, register: (resolve: (value: T) => void, reject: (error: Error) => void) => () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      const undo = register((value) => (finish(), resolve(value)), (error) => (finish(), reject(error)));
      const fail = (error: unknown): void => {
        finish();
        undo();
        reject(error);
      };
      const onAbort = (): void => fail(options.signal!.reason);
      if (options.signal?.aborted) return fail(options.signal.reason);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) timer = setTimeout(() => fail(rdmaError(what, 'ETIMEDOUT', `not done in ${options.timeoutMs} ms`)), options.timeoutMs);
    });
  }

  /** Routes every completion of the endpoint's CQ until the connection ends. */
  async #dispatch(): Promise<void> {
    const batch = new CompletionBatch(64);
    while (!this.#ended) {
      try {
        await this.#cq.wait({}, batch);
      } catch {
        return; // the CQ was closed
      }
      for (let i = 0; i < batch.count; i++) this.#complete(batch, i);
      this.#returnCreditsIfDue();
    }
  }

  /** A queued message was taken by the application: its receive slot may be used again by the peer. */
  #consumed(): void {
    this.#credits.reposted();
    this.#returnCreditsIfDue();
  }

  /** Completion `i` of the batch, read in place: only a failure is made into an object. */
  #complete(batch: CompletionBatch, i: number): void {
    const wrId = batch.wrIdNumber(i);
    if (wrId >= RECV_ID_BASE) return this.#onReceive(batch, i, wrId - RECV_ID_BASE);
    this.#inFlight--;
    const pending = this.#pending.get(wrId);
    this.#pending.delete(wrId);
    pending?.done?.();
    this.#wake();
    const status = batch.status(i);
    if (status === WcStatus.SUCCESS) return pending?.resolve();
    const completion = batch.get(i);
    pending?.reject(new CompletionError(completion));
    // A flush with nothing failed before it: the QP went to the error state by itself (rxe does that when
    // its netdev goes down, measured), which ends the connection as well.
    this.#end(rdmaError('connection', 'ECONNRESET', `the QP failed (${completion.statusName})`));
  }

  #onReceive(batch: CompletionBatch, i: number, slot: number): void {
    const status = batch.status(i);
    if (status !== WcStatus.SUCCESS) {
      this.#end(rdmaError('receive', 'ECONNRESET', `receive failed (${enumName(WcStatus, status)})`));
      return;
    }
    if (batch.opcode(i) !== WcOpcode.RECV || !(batch.wcFlags(i) & WcFlags.WITH_IMM)) return;
    const { kind, credits } = decodeImm(batch.immData(i));
    this.#credits.grant(credits);
    if (kind === MessageKind.DATA) {
      const offset = slot * this.#options.maxMessageSize;
      const message = Buffer.from(this.#recvSlab.bytes.subarray(offset, offset + batch.byteLen(i)));
      const receiver = this.#receivers.shift();
      if (receiver) {
        receiver.resolve(message);
        this.#credits.reposted();
      } else {
        // The peer gets this credit back only once the message is taken: a slow reader slows the sender.
        this.#received.push(message);
      }
    }
    this.#postReceive(slot);
    if (credits > 0) this.#wake();
  }

  #returnCreditsIfDue(): void {
    if (!this.#credits.shouldReturnAlone() || this.#creditMessageInFlight || this.#ended) return;
    this.#postControl({ opcode: WrOpcode.SEND_WITH_IMM, immData: encodeImm(MessageKind.CREDITS, this.#credits.collect()) }, () => (this.#creditMessageInFlight = false));
    this.#creditMessageInFlight = true;
  }

  /** Posts a request of the endpoint's own (no caller waits on it); `done` runs at its completion. */
  #postControl(request: Omit<SendWorkRequest, 'wrId'>, done: () => void): void {
    const wrId = this.#nextId++;
    this.#qp.postSend({ ...request, wrId });
    this.#inFlight++;
    this.#pending.set(wrId, { resolve: () => undefined, reject: () => undefined, done });
  }

  #postReceive(slot: number): void {
    if (this.#ended) return;
    const size = this.#options.maxMessageSize;
    this.#qp.postRecv({ wrId: RECV_ID_BASE + slot, sgList: [{ mr: this.#recvSlab, offset: slot * size, length: size }] });
  }

  /**
   * Each period: a keepalive probe, unless one is in flight. One still unacknowledged at the second tick
   * after it left ends the connection: an I/O phase always runs between two ticks, so a loop blocked past a
   * period cannot judge a probe whose completion is already in the CQ.
   */
  #probe(): void {
    if (this.#probeTicks !== undefined) {
      if (++this.#probeTicks < 2) return;
      this.#end(rdmaError('keepalive', 'ETIMEDOUT', `the peer acknowledged nothing for ${2 * this.#options.keepaliveMs} ms`));
      return;
    }
    // A zero-length RDMA write needs no remote address or key (IBTA C9-88) and consumes nothing at the peer.
    try {
      this.#postControl({ opcode: WrOpcode.RDMA_WRITE, sgList: [], remote: { addr: 0n, rkey: 0, length: 0 } }, () => (this.#probeTicks = undefined));
    } catch (error) {
      this.#end(rdmaError('keepalive', 'ECONNRESET', `the QP refused the probe (${(error as Error).message})`));
      return;
    }
    this.#probeTicks = 0;
  }

  /** Ends the connection once: every pending operation and receiver rejects with `reason`. */
  #end(reason: RdmaError): void {
    if (this.#ended) return;
    this.#ended = reason;
    clearInterval(this.#keepalive);
    for (const pending of this.#pending.values()) pending.reject(reason);
    this.#pending.clear();
    for (const receiver of this.#receivers.splice(0)) receiver.reject(reason);
    this.#wake();
    if (reason.code !== 'ECANCELED') this.#release();
    this.emit('close', reason);
  }

  #release(): void {
    this.#id.close();
    this.pd.close();
    this.#cq.close();
  }
}

/**
 * Operation options are checked before anything is posted: a request posted for a call that then failed
 * would complete with nobody waiting for it.
 */
function checkOptions(options: OperationOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0 && timeoutMs <= 2 ** 31 - 1)) {
    throw new RangeError('options.timeoutMs must be a number of milliseconds from 0 to 2^31 - 1');
  }
}

/** The verbs resources of one endpoint, on the device its CM ID resolved to. */
function setUp(id: CmId, options: Required<EndpointOptions>): { pd: ProtectionDomain; cq: CompletionQueue; qp: QueuePair; slabs: MemoryRegion[]; hello: Hello } {
  const context = id.context;
  if (context === undefined) throw new TypeError('the CM ID has no device yet');
  const receives = options.receiveDepth + CONTROL_RECEIVES;
  const pd = context.allocPd();
  try {
    const cq = context.createCq(receives + options.sendDepth + CONTROL_SENDS, { channel: true });
    const qp = id.createQp(pd, { sendCq: cq, maxSendWr: options.sendDepth + CONTROL_SENDS, maxRecvWr: receives });
    const slabs = [
      pd.registerMemory(new ArrayBuffer(receives * options.maxMessageSize)),
      pd.registerMemory(new ArrayBuffer(options.sendDepth * sendSlotBytes(options))),
    ];
    for (let slot = 0; slot < receives; slot++) {
      qp.postRecv({ wrId: RECV_ID_BASE + slot, sgList: [{ mr: slabs[0]!, offset: slot * options.maxMessageSize, length: options.maxMessageSize }] });
    }
    return { pd, cq, qp, slabs, hello: { maxMessageSize: options.maxMessageSize, credits: options.receiveDepth } };
  } catch (error) {
    pd.close();
    throw error;
  }
}

function withDefaults(options: EndpointOptions): Required<EndpointOptions> {
  const merged = { ...defaults, ...options };
  for (const key of ['maxMessageSize', 'receiveDepth', 'sendDepth'] as const) {
    if (!Number.isInteger(merged[key]) || merged[key] < 1) throw new RangeError(`${key} must be a positive integer`);
  }
  if (!Number.isInteger(merged.keepaliveMs) || merged.keepaliveMs < 0 || merged.keepaliveMs > 2 ** 31 - 1) {
    throw new RangeError('keepaliveMs must be a whole number of milliseconds from 0 (none) to 2^31 - 1');
  }
  if (merged.receiveDepth > 0xffff) throw new RangeError('receiveDepth is at most 65535');
  return merged;
}

/** Connects to a listener at host:port. */
export async function connect(host: string, port: number, options: EndpointOptions = {}): Promise<Endpoint> {
  const settings = withDefaults(options);
  const id = CmId.create();
  try {
    await id.resolveAddr(host, port, { timeoutMs: settings.timeoutMs });
    await id.resolveRoute({ timeoutMs: settings.timeoutMs });
    const resources = setUp(id, settings);
    let established: CmEvent;
    try {
      established = await id.connect({ privateData: encodeHello(resources.hello) }, { timeoutMs: settings.timeoutMs });
    } catch (error) {
      resources.pd.close();
      resources.cq.close();
      throw error;
    }
    const peer = decodeHello(established.privateData);
    if (!peer) throw rdmaError('rdma_connect', 'ECONNREFUSED', 'the peer is not an rdma-node endpoint');
    return new Endpoint(id, resources.pd, resources.cq, resources.qp, settings, peer, resources.slabs);
  } catch (error) {
    id.close();
    throw error;
  }
}

/** Accepts endpoint connections; iterate it (or await accept()) for each new Endpoint. */
export class Listener implements AsyncIterable<Endpoint>, Disposable {
  readonly #id: CmId;
  readonly #options: Required<EndpointOptions>;
  readonly #ready: Endpoint[] = [];
  readonly #acceptors: { resolve(endpoint: Endpoint): void; reject(error: Error): void }[] = [];

  /** @internal Use listen(). */
  constructor(id: CmId, options: Required<EndpointOptions>) {
    this.#id = id;
    this.#options = options;
    id.on('connection', (incoming: CmId, event: CmEvent) => void this.#onRequest(incoming, event));
  }

  get address(): { address: string; port: number } | undefined {
    return this.#id.localAddress;
  }

  get closed(): boolean {
    return this.#id.closed;
  }

  /** Lets the process exit while the listener is open (as server.unref()); ref() undoes it. */
  unref(): this {
    this.#id.unref();
    return this;
  }

  ref(): this {
    this.#id.ref();
    return this;
  }

  /** The next connected endpoint. */
  accept(): Promise<Endpoint> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#id.closed) return Promise.reject(rdmaError('accept', 'ECANCELED', 'the listener is closed'));
    return new Promise((resolve, reject) => this.#acceptors.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Endpoint> {
    while (!this.#id.closed) {
      try {
        yield await this.accept();
      } catch (error) {
        if (this.#id.closed) return;
        throw error;
      }
    }
  }

  /** Stops listening; pending accept() calls reject. Connected endpoints stay up. */
  close(): void {
    this.#id.close();
    for (const acceptor of this.#acceptors.splice(0)) acceptor.reject(rdmaError('accept', 'ECANCELED', 'the listener is closed'));
    for (const endpoint of this.#ready.splice(0)) void endpoint.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async #onRequest(incoming: CmId, event: CmEvent): Promise<void> {
    const peer = decodeHello(event.privateData);
    if (!peer) {
      incoming.reject(Buffer.from('rdma-node: unknown protocol'));
      incoming.close();
      return;
    }
    let resources: ReturnType<typeof setUp> | undefined;
    try {
      resources = setUp(incoming, this.#options);
      await incoming.accept({ privateData: encodeHello(resources.hello) }, { timeoutMs: this.#options.timeoutMs });
    } catch {
      resources?.pd.close();
      resources?.cq.close();
      incoming.close();
      return;
    }
    const endpoint = new Endpoint(incoming, resources.pd, resources.cq, resources.qp, this.#options, peer, resources.slabs);
    const acceptor = this.#acceptors.shift();
    if (acceptor) acceptor.resolve(endpoint);
    else this.#ready.push(endpoint);
  }
}

/** Listens for endpoint connections on host:port (port 0: any free port, see listener.address). */
export async function listen(host: string, port: number, options: EndpointOptions & { backlog?: number } = {}): Promise<Listener> {
  const { backlog, ...rest } = options;
  const settings = withDefaults(rest);
  const id = CmId.create();
  try {
    await id.bind(host, port);
    id.listen(backlog);
  } catch (error) {
    id.close();
    throw error;
  }
  return new Listener(id, settings);
}
