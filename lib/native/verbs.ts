/** The verbs objects (native/verbs): devices, contexts, PDs, MRs, MWs, AHs, CQs, SRQs, QPs and prepared lists. */
import type { NativeResource } from './resource';

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

export interface NativeContext extends NativeResource {
  readonly deviceName: string;
  queryDevice(): Record<string, unknown>;
  queryPort(port: number): Record<string, unknown>;
  queryGidTable(): NativeGidEntry[];
  allocPd(): NativePd;
  openXrcd(fd: number, oflags: number): NativeXrcd;
  createFlowCounters(): NativeFlowCounters;
  createCompletionChannel(): NativeCompletionChannel;
  createCq(cqe: number, channel: NativeCompletionChannel | null, compVector: number): NativeCq;
  watchAsyncEvents(listener: ((event: NativeAsyncEvent) => void) | null): void;
}

export interface NativePd extends NativeResource {
  registerMemory(buffer: ArrayBuffer, byteOffset: number, byteLength: number, access: number): NativeMr;
  createQp(sendCq: NativeCq, recvCq: NativeCq | undefined, attributes: NativeQpInitAttr): NativeQp;
  createAh(address: object): NativeAh;
  createAhFromCompletion(portNum: number, completion: object, grh: Uint8Array): NativeAh;
  createSrq(attributes: { maxWr?: number; maxSge?: number; srqLimit?: number; xrcd?: NativeXrcd; cq?: NativeCq }): NativeSrq;
  allocMw(type: number): NativeMw;
}

export interface NativeAh extends NativeResource {
  readonly attr: Record<string, unknown>;
}

export interface NativeSrq extends NativeResource {
  postRecv(workRequests: NativeRecvWr[]): void;
  modify(attributes: { maxWr?: number; srqLimit?: number }): void;
  query(): { maxWr: number; maxSge: number; srqLimit: number };
  readonly srqNum: number;
}

export interface NativeFlowCounters extends NativeResource {
  attach(description: number, index: number): void;
  read(preferCached: boolean): BigUint64Array;
}

export interface NativeXrcd extends NativeResource {
  createQp(): NativeQp;
  openQp(qpNum: number): NativeQp;
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
  /** A cache entry's region: one user lets go of it. */
  release(): void;
}

export interface NativeCompletionChannel extends NativeResource {
  readonly fd: number;
}

export interface NativeCq extends NativeResource {
  /**
   * Writes up to storage.length / WC_WORDS completions; returns how many. With spinUs, polls again until
   * one arrives or that many microseconds have passed. With `arm` (solicited only or not), finding
   * nothing arms the CQ and polls once more.
   */
  poll(storage: Uint32Array, spinUs?: number, arm?: boolean): number;
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
  remoteSrqn?: number;
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
  /** Posts the receives now and again as the CQ's polls consume their completions. */
  createReceiveRing(workRequests: NativeRecvWr[]): NativePrepared;
  createFlow(attributes: object): NativeFlow;
  bindMw(mw: NativeMw, bind: { wrId?: bigint | number; mr: NativeMr; offset?: number; length?: number; access?: number; signaled?: boolean }): number;
  readonly qpNum: number;
  readonly extended: boolean;
  readonly caps: { maxSendWr: number; maxRecvWr: number; maxSendSge: number; maxRecvSge: number; maxInlineData: number };
}

export type NativeFlow = NativeResource;

export interface NativePrepared extends NativeResource {
  /** Posts requests [first, first + count) as one list. */
  post(first?: number, count?: number): void;
  /** Posts every request, then polls `cq` as cq.poll(storage, spinUs). */
  postAndPoll(cq: NativeCq, storage: Uint32Array, spinUs?: number): number;
  readonly length: number;
}

/** The binding's functions for this area. */
export interface NativeVerbsFunctions {
  listDevices(): NativeDeviceInfo[];
  openContext(name: string): NativeContext;
  addressOf(buffer: ArrayBuffer, offset: number): bigint;
  /** RDMA_NLDEV_CMD_NEWLINK; returns the device's name (the first free `<type>N` when none is given). */
  rdmaLinkAdd(name: string | undefined, netdev: string, type: string): string;
  /** RDMA_NLDEV_CMD_DELLINK of the device with that name. */
  rdmaLinkDelete(name: string): void;
  /** Every port of every RDMA device, from the kernel's RDMA netlink. */
  rdmaLinkList(): NativeRdmaLink[];
  /** RDMA_NLDEV_CMD_RES_QP_GET of the port's QP1: its enum ib_qp_state. */
  rdmaGsiQpState(name: string, port: number): number;
}

/** One port of an RDMA device, as the kernel's RDMA netlink reports it (a line of `rdma link show`). */
export interface NativeRdmaLink {
  name: string;
  index: number;
  port: number;
  nodeGuid: bigint;
  protocol?: string;
  state: number;
  physicalState: number;
  netdev?: string;
  netdevIndex?: number;
}
