/**
 * The whole native surface, declared in one place. Everything else in lib/ is plain TypeScript on top of
 * these handles; nothing outside lib/ should use them directly.
 */
import { RdmaError } from '../core/errors';

export interface NativeDeviceInfo {
  name: string;
  guid: bigint;
  nodeType: number;
  transportType: number;
  index: number;
}

export interface NativeGidEntry {
  gid: Buffer;
  gidIndex: number;
  portNum: number;
  gidType: number;
  ndevIfindex: number;
}

export interface NativeAsyncEvent {
  type: number;
  name: string;
  portNum?: number;
  qp?: NativeQp;
  qpNum?: number;
  cq?: NativeCq;
  srq?: NativeSrq;
}

export interface NativeResource {
  close(): void;
  readonly closed: boolean;
}

export interface NativeContext extends NativeResource {
  readonly deviceName: string;
  queryDevice(): Record<string, unknown>;
  queryPort(port: number): Record<string, unknown>;
  queryGidTable(): NativeGidEntry[];
  allocPd(): NativePd;
  createCompletionChannel(): NativeCompletionChannel;
  createCq(cqe: number, channel: NativeCompletionChannel | null, compVector: number): NativeCq;
  watchAsyncEvents(listener: ((event: NativeAsyncEvent) => void) | null): void;
}

export interface NativePd extends NativeResource {
  registerMemory(buffer: ArrayBuffer, byteOffset: number, byteLength: number, access: number): NativeMr;
  createQp(sendCq: NativeCq, recvCq: NativeCq, attributes: NativeQpInitAttr): NativeQp;
  createAh(address: object): NativeAh;
  createAhFromCompletion(portNum: number, completion: object, grh: Uint8Array): NativeAh;
  createSrq(attributes: { maxWr?: number; maxSge?: number; srqLimit?: number }): NativeSrq;
  allocMw(type: number): NativeMw;
}

export interface NativeAh extends NativeResource {
  readonly attr: Record<string, unknown>;
}

export interface NativeSrq extends NativeResource {
  postRecv(workRequests: NativeRecvWr[]): void;
  modify(attributes: { maxWr?: number; srqLimit?: number }): void;
  query(): { maxWr: number; maxSge: number; srqLimit: number };
}

export interface NativeMw extends NativeResource {
  readonly rkey: number;
  readonly type: number;
}

export interface NativeMr extends NativeResource {
  readonly lkey: number;
  readonly rkey: number;
  readonly addr: bigint;
  readonly length: number;
  /** Made by a registration cache from one of its entries (not an uncached registration). */
  readonly cached: boolean;
  advise(advice: number, flags: number, offset: number, length: number): void;
}

export interface NativeMappedBuffer extends NativeResource {
  /** The external ArrayBuffer over the current pages; TypeError when unmapped or freed. */
  readonly arrayBuffer: ArrayBuffer;
  readonly address: bigint;
  readonly length: number;
  readonly pageSize: number;
  readonly mapped: boolean;
  unmap(): void;
  remap(): void;
  discard(offset: number, length: number): void;
  move(): void;
}

export interface NativeRegistrationCacheOptions {
  strategy: 'odp' | 'monitor' | 'uncached' | 'unsafe-unmonitored';
  maxEntries?: number;
  maxBytes?: number | bigint;
}

export interface NativeRegistrationCacheStats {
  hits: number;
  misses: number;
  invalidations: number;
  evictions: number;
  uncached: number;
  entries: number;
  bytes: number;
  inUse: number;
}

export interface NativeRegistrationCache extends NativeResource {
  register(buffer: ArrayBuffer, byteOffset: number, byteLength: number, access: number): NativeMr;
  stats(): NativeRegistrationCacheStats;
  flush(): void;
  readonly strategy: NativeRegistrationCacheOptions['strategy'];
}

export interface NativeMonitorStatus {
  available: boolean;
  /** errno name of why userfaultfd cannot be used here. */
  error?: string;
  running: boolean;
  unmapEvents: number;
  removeEvents: number;
  remapEvents: number;
  faults: number;
  lostTrack: number;
  watched: number;
}

export interface NativeCompletionChannel extends NativeResource {
  readonly fd: number;
}

export interface NativeCq extends NativeResource {
  /** Writes up to storage.length / WC_WORDS completions; returns how many. */
  poll(storage: Uint32Array): number;
  requestNotify(solicitedOnly?: boolean): void;
  /** true on a completion event, false when cancelWait() ran; rejects when the CQ is closed. */
  nextEvent(): Promise<boolean>;
  cancelWait(): void;
  resize(cqe: number): number;
  readonly cqe: number;
}

export interface NativeQpInitAttr {
  qpType?: number;
  maxSendWr?: number;
  maxRecvWr?: number;
  maxSendSge?: number;
  maxRecvSge?: number;
  maxInlineData?: number;
  sqSigAll?: boolean;
  srq?: NativeSrq;
  extended?: boolean;
}

export type NativeSge =
  | { mr: NativeMr; offset?: number; length?: number; lkey?: number }
  | { addr: bigint; length: number; lkey: number }
  | { buffer: ArrayBuffer; offset: number; length: number };

export interface NativeSendWr {
  wrId: bigint | number;
  opcode: number;
  sendFlags: number;
  sgList: NativeSge[];
  immData?: number;
  invalidateRkey?: number;
  remoteAddr?: bigint;
  rkey?: number;
  compareAdd?: bigint;
  swap?: bigint;
  ah?: NativeAh;
  remoteQpn?: number;
  remoteQkey?: number;
  bind?: { mw: NativeMw; rkey: number; mr: NativeMr; offset?: number; length?: number; access?: number };
}

export interface NativeRecvWr {
  wrId: bigint | number;
  sgList: NativeSge[];
}

export interface NativeQp extends NativeResource {
  readonly state: number;
  modify(attributes: object): void;
  query(): Record<string, unknown>;
  postSend(workRequests: NativeSendWr[]): void;
  postRecv(workRequests: NativeRecvWr[]): void;
  prepareSend(workRequests: NativeSendWr[]): NativePrepared;
  prepareRecv(workRequests: NativeRecvWr[]): NativePrepared;
  bindMw(mw: NativeMw, bind: { wrId?: bigint | number; mr: NativeMr; offset?: number; length?: number; access?: number; signaled?: boolean }): number;
  readonly qpNum: number;
  readonly extended: boolean;
  readonly caps: { maxSendWr: number; maxRecvWr: number; maxSendSge: number; maxRecvSge: number; maxInlineData: number };
}

export interface NativePrepared extends NativeResource {
  /** Posts requests [first, first + count) as one list. */
  post(first?: number, count?: number): void;
  readonly length: number;
}

/** One C-core benchmark loop (native/bench/bench.h); the loop kinds are lib/bench/loops.ts's. */
export interface NativeBenchSpec {
  loop: number;
  initiator?: boolean;
  qps: NativeQp[];
  sendCq: NativeCq;
  recvCq: NativeCq;
  send?: {
    opcode: number;
    local: { mr: NativeMr; offset: number; length: number };
    sendFlags?: number;
    remotes?: { addr: bigint; rkey: number }[];
    compareAdd?: bigint;
    swap?: bigint;
    ah?: NativeAh;
    remoteQpn?: number;
    remoteQkey?: number;
  };
  recv?: { mr: NativeMr; offset: number; length: number };
  postByte?: { mr: NativeMr; offset: number };
  pollByte?: { mr: NativeMr; offset: number };
  rxPosted?: number;
  iters: number;
  durationMs?: number;
  marginMs?: number;
  txDepth?: number;
  rxDepth?: number;
  cqMod?: number;
  postList?: number;
  events?: boolean;
  record?: boolean;
  stallMs?: number;
  idleMs?: number;
}

/** Raw results, in ticks (of the cycle counter) since the loop started. */
export interface NativeBenchResult {
  ticksPerUsec: number;
  /** Per post: every iteration of the latency loops; bandwidth loops when recording the peak. */
  posted?: Float64Array;
  /** Per completion (recording the peak): entries where a signaled completion arrived, 0 elsewhere. */
  completed?: Float64Array;
  /** First post (a receiver: first arrival) and the end of the loop. */
  first: number;
  last: number;
  /** Duration mode: the sampled window and the iterations inside it. */
  sampleStart: number;
  sampleEnd: number;
  sampleIters: number;
  scnt: number;
  ccnt: number;
  rcnt: number;
}

export interface NativeConnParam {
  privateData?: Uint8Array;
  responderResources?: number;
  initiatorDepth?: number;
  flowControl?: number;
  retryCount?: number;
  rnrRetryCount?: number;
  srq?: number;
  qpNum?: number;
}

export interface NativeCmEvent {
  type: number;
  name: string;
  status: number;
  /** Connection parameters (TCP/IB port spaces) or UD parameters (UDP). */
  param: Required<NativeConnParam> & { privateData: Buffer; ahAttr?: Record<string, unknown>; qkey?: number };
  /** CONNECT_REQUEST: the ID of the incoming connection. */
  id?: NativeCmId;
}

export interface NativeSocketAddress {
  address: string;
  port: number;
}

export interface NativeCmChannel extends NativeResource {
  createId(portSpace: number): NativeCmId;
}

export interface NativeCmId extends NativeResource {
  bindAddr(address: string, port: number): void;
  resolveAddr(source: string | null, destination: string, port: number, timeoutMs: number): void;
  resolveRoute(timeoutMs: number): void;
  listen(backlog: number): void;
  connect(param: NativeConnParam): void;
  accept(param: NativeConnParam): void;
  reject(privateData?: Uint8Array): void;
  disconnect(): void;
  createQp(pd: NativePd, sendCq: NativeCq, recvCq: NativeCq, attributes: NativeQpInitAttr): NativeQp;
  joinMulticast(address: string): void;
  leaveMulticast(address: string): void;
  setReuseAddr(reuse: boolean): void;
  readonly context: NativeContext | null;
  readonly portNum: number;
  readonly localAddress: NativeSocketAddress | null;
  readonly remoteAddress: NativeSocketAddress | null;
  setRef(referenced: boolean): void;
}

/** Hooks for tests and benchmarks (native/testing/hooks.cc); not part of the API. */
export interface NativeTesting {
  forkProbe(mr: NativeMr): { parentValid: boolean; childValid: boolean; childCouldWatch: boolean; childCouldMonitor: boolean };
  simulateLostTrack(): void;
  /** An ArrayBuffer over a read-only private mapping of the file's first 4096 bytes. */
  mapFile(path: string): ArrayBuffer;
  /** An ArrayBuffer over 4096 bytes of a memfd mapped shared. */
  mapShared(): ArrayBuffer;
  /** A new thread mmaps fresh pages over the range (MAP_FIXED); returns without waiting for it. */
  remapOnThread(address: bigint, length: number): void;
  /** Registers memory the binding never hears of (never deregistered): destroying the PD then fails. */
  registerUntracked(pd: NativePd, buffer: ArrayBuffer, offset: number, length: number): void;
  /** The requests a QP counts as outstanding (sends and receives, an SRQ's for its receives) and the objects they hold. */
  inFlight(qp: NativeQp): { requests: number; objects: number };
  /** ns per ibv_reg_mr + ibv_dereg_mr */
  benchRegDereg(pd: NativePd, buffer: ArrayBuffer, offset: number, length: number, access: number, iterations: number): number;
  /** ns per cache hit (lookup, validity check, take and return the entry) */
  benchCacheHits(cache: NativeRegistrationCache, buffer: ArrayBuffer, offset: number, length: number, access: number, iterations: number): number;
  /** ns per monitor catch-up check (the system call of a monitored hit) on the range's first page */
  benchCatchUp(buffer: ArrayBuffer, offset: number, length: number, iterations: number): number;
  /** ns per munmap of `size` populated bytes, registered with the monitor or not */
  benchMunmap(size: number, monitored: boolean, iterations: number): number;
}

export interface NativePmixClient extends NativeResource {
  readonly info: { namespace: string; rank: number; size: number; localRank: number; localSize: number };
  put(key: string, buffer: ArrayBuffer, offset: number, length: number): void;
  commit(): void;
  /** done(0, '') once every rank arrived, else an errno and PMIx's words for it. */
  fence(collect: boolean, done: (errno: number, detail: string) => void): void;
  get(rank: number, key: string): Buffer | undefined;
}

export interface NativeSegment extends NativeResource {
  readonly id: string;
  readonly size: number;
  attach(offset: number, length: number): NativeMappedBuffer;
  remove(): void;
}

export interface NativeSegmentAccess extends NativeResource {
  readonly size: number;
  readonly writable: boolean;
  attach(offset: number, length: number): NativeMappedBuffer;
}

/** The collectives' engine (native/collectives/collective_engine.h); plans come from lib/collectives. */
export interface NativeCollectiveEngine extends NativeResource {
  readonly inbox: { addr: bigint; rkey: number };
  setPeers(inboxes: ({ addr: bigint; rkey: number } | null)[]): void;
  run(spec: NativeCollectiveSpec): Promise<void>;
  abort(): void;
  peerLost(rank: number): void;
}

export interface NativeCollectiveSpec {
  plan: Float64Array;
  srcBytes: number;
  dstBytes: number;
  tmpBytes: number;
  dtype?: number;
  op?: number;
  timeoutMs: number;
  input?: Uint8Array;
  inputRegion: number;
  inputOffset: number;
  output?: Uint8Array;
  outputRegion: number;
  outputOffset: number;
}

export interface NativeBinding {
  benchRun(spec: NativeBenchSpec, progress?: (done: number) => void): NativeBenchResult;
  createCmChannel(listener: (target: NativeCmId, event: NativeCmEvent) => void): NativeCmChannel;
  init(options: { RdmaError: typeof RdmaError }): void;
  listDevices(): NativeDeviceInfo[];
  openContext(name: string): NativeContext;
  allocate(size: number, hugePages: number, address: bigint | undefined, shareable: boolean): NativeMappedBuffer;
  createRegistrationCache(pd: NativePd, options: NativeRegistrationCacheOptions): NativeRegistrationCache;
  monitorStatus(): NativeMonitorStatus;
  makeSegment(source: number | NativeMappedBuffer, mode: number, hugetlb: boolean, channel: number): NativeSegment;
  getSegment(segid: string, writable: boolean, listener: (reason: 'removed' | 'owner-exited') => void): NativeSegmentAccess;
  processRead(pid: number, remote: { addr: bigint; length: bigint | number }[], target: ArrayBuffer, offset: number, length: number): number;
  processWrite(pid: number, remote: { addr: bigint; length: bigint | number }[], source: ArrayBuffer, offset: number, length: number): number;
  allowPtracer(pid: number): void;
  pmixInit(): NativePmixClient;
  createCollectiveEngine(pd: NativePd, cq: NativeCq, qps: (NativeQp | null)[], rank: number, options: { slots: number; chunk: number }): NativeCollectiveEngine;
  addressOf(buffer: ArrayBuffer, offset: number): bigint;
  testing: NativeTesting;
}

function load(): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const binding = require('../../../build/Release/rdma_native.node') as NativeBinding;
  binding.init({ RdmaError });
  return binding;
}

export const native: NativeBinding = load();
