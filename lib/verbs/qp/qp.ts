/**
 * Queue pairs: creation with caps, the RESET→INIT→RTR→RTS state machine with the full attribute set,
 * query, and posting lists of send and receive work requests in one native call.
 */
import { randomInt } from 'node:crypto';

import { LinkLayer, Mtu, QpState, QpType, mtuBytes, mtuFromBytes } from '../constants';
import type { CompletionQueue } from '../cq';
import type { MemoryRegion } from '../mr';
import type { MemoryWindow } from '../mw';
import { formatGid, isZeroGid, parseGid } from '../../core/gid';
import type { NativeQp } from '../../native';
import type { Context } from '../context';
import type { ProtectionDomain } from '../pd';
import type { XrcTargetQp } from '../xrcd';
import { PreparedWorkRequests, ReceiveRing } from './prepared';
import { Flow, toNativeFlowAttributes, type FlowAttributes } from '../flow';
import type { SharedReceiveQueue } from '../srq';
import { toNativeRecvWr, toNativeSendWr, type RecvWorkRequest, type SendWorkRequest } from './work-request';
import { NativeObject } from '../../native/wrapper';
import { bringUp } from './transitions';

export interface QpCaps {
  maxSendWr: number;
  maxRecvWr: number;
  maxSendSge: number;
  maxRecvSge: number;
  maxInlineData: number;
}

export interface QpInitAttributes extends Partial<QpCaps> {
  sendCq: CompletionQueue;
  /** Default: sendCq. None for XRC_SEND (no receive queue). */
  recvCq?: CompletionQueue;
  /** Receive through this SRQ instead of the QP's own receive queue. */
  srq?: SharedReceiveQueue;
  qpType?: QpType;
  /** Every send WR generates a completion, whatever its `signaled`. */
  sqSigAll?: boolean;
  /**
   * Post through the extended API (ibv_qp_ex, ibv_wr_*) instead of ibv_post_send; same postSend()
   * surface. RdmaError EOPNOTSUPP where the provider lacks it.
   */
  extended?: boolean;
}

export interface GlobalRoute {
  dgid: Uint8Array;
  flowLabel?: number;
  sgidIndex?: number;
  hopLimit?: number;
  trafficClass?: number;
}

export interface AddressVector {
  dlid?: number;
  sl?: number;
  srcPathBits?: number;
  staticRate?: number;
  portNum?: number;
  grh?: GlobalRoute;
}

/** ibv_qp_attr in camelCase; modify() sends exactly the attributes present. */
export interface QpAttributes {
  qpState?: QpState;
  curQpState?: QpState;
  pathMtu?: Mtu;
  pathMigState?: number;
  qkey?: number;
  rqPsn?: number;
  sqPsn?: number;
  destQpNum?: number;
  qpAccessFlags?: number;
  cap?: Pick<QpCaps, 'maxSendWr' | 'maxRecvWr'>;
  ahAttr?: AddressVector;
  altAhAttr?: AddressVector;
  pkeyIndex?: number;
  altPkeyIndex?: number;
  enSqdAsyncNotify?: number;
  maxRdAtomic?: number;
  maxDestRdAtomic?: number;
  minRnrTimer?: number;
  portNum?: number;
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  altPortNum?: number;
  altTimeout?: number;
  rateLimit?: number;
}

export interface QpQueryResult extends Required<Omit<QpAttributes, 'cap'>> {
  cap: QpCaps;
  sqDraining: number;
  qpType: QpType;
  sqSigAll: boolean;
  initCap: QpCaps;
}

/** What each side tells the other out of band to connect an RC/UC QP (ibv_rc_pingpong's "address"). */
export interface QpAddress {
  qpNum: number;
  psn: number;
  lid: number;
  /** 'fe80:...' form; all zeros on InfiniBand without GRH. */
  gid: string;
  /** Path MTU in bytes the side can do (its port's active MTU). */
  mtu: number;
}

export interface ConnectOptions {
  portNum?: number;
  /** Local GID index (default: context.defaultGidIndex()). */
  gidIndex?: number;
  /** Access granted to the peer (default: remote read, write and atomics, and local write). */
  accessFlags?: number;
  maxRdAtomic?: number;
  maxDestRdAtomic?: number;
  minRnrTimer?: number;
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  sl?: number;
  /** Path MTU in bytes (default: the smaller of both ports' active MTUs). */
  mtu?: number;
}

/** close(): destroys the QP; its outstanding work requests are dropped. Idempotent. */
export class QueuePair extends NativeObject<NativeQp> {
  readonly pd: ProtectionDomain;
  readonly sendCq: CompletionQueue;
  /** undefined for XRC_SEND: an XRC initiator has no receive queue. */
  readonly recvCq: CompletionQueue | undefined;
  readonly srq: SharedReceiveQueue | undefined;
  #psn: number = randomInt(0, 1 << 24);

  readonly qpType: QpType;

  /** @internal Use pd.createQp() or cmId.createQp(). */
  constructor(handle: NativeQp, qpType: QpType, pd: ProtectionDomain, sendCq: CompletionQueue, recvCq: CompletionQueue | undefined, srq?: SharedReceiveQueue) {
    super(handle);
    this.qpType = qpType;
    this.pd = pd;
    this.sendCq = sendCq;
    this.recvCq = recvCq;
    this.srq = srq;
  }

  get qpNum(): number {
    return this.handle.qpNum;
  }

  /** Whether sends go through the extended post API (ibv_wr_*). */
  get extended(): boolean {
    return this.handle.extended;
  }

  /** The capacities the provider actually allocated (at least those asked for). */
  get caps(): QpCaps {
    return this.handle.caps;
  }

  modify(attributes: QpAttributes): void {
    this.handle.modify(attributes);
  }

  query(): QpQueryResult {
    return this.handle.query() as unknown as QpQueryResult;
  }

  /** The current state (one attribute queried, not all). */
  get state(): QpState {
    return this.handle.state;
  }

  /** This side's connection information for the peer. */
  address(options: { portNum?: number; gidIndex?: number } = {}): QpAddress {
    return addressOf(this.pd.context, this.qpNum, this.#psn, options);
  }

  /**
   * Moves the QP from RESET (or INIT) through RTR to RTS towards `remote` (see transitions.ts); an XRC
   * target stops at RTR.
   */
  connect(remote: QpAddress, options: ConnectOptions = {}): void {
    connectQp(this, this.pd.context, this.qpType, this.#psn, remote, options);
  }

  /** Posts a list of send work requests in one call. A rejected list throws RdmaError with `index`. */
  postSend(workRequests: SendWorkRequest | SendWorkRequest[]): void {
    const list = Array.isArray(workRequests) ? workRequests : [workRequests];
    this.handle.postSend(list.map(toNativeSendWr));
  }

  /** Binds a type-1 window to part of `bind.mr` (a completion follows unless signaled: false); returns its new rkey. */
  bindMw(mw: MemoryWindow, bind: { mr: MemoryRegion; offset?: number; length?: number; access?: number; wrId?: bigint | number; signaled?: boolean }): number {
    return this.handle.bindMw(mw.handle, { ...bind, ...bind.mr.nativeRange(bind.offset, bind.length) });
  }

  postRecv(workRequests: RecvWorkRequest | RecvWorkRequest[]): void {
    const list = Array.isArray(workRequests) ? workRequests : [workRequests];
    this.handle.postRecv(list.map(toNativeRecvWr));
  }

  /**
   * Marshals send requests once for posting many times (prepared.post(first, count)); inline data must
   * come from an MR. The requests keep the MRs and AHs they name alive.
   */
  prepareSend(workRequests: SendWorkRequest[]): PreparedWorkRequests {
    return new PreparedWorkRequests(this.handle.prepareSend(workRequests.map(toNativeSendWr)), this);
  }

  prepareRecv(workRequests: RecvWorkRequest[]): PreparedWorkRequests {
    return new PreparedWorkRequests(this.handle.prepareRecv(workRequests.map(toNativeRecvWr)), this);
  }

  /**
   * Posts the receives and keeps them posted: a receive whose completion a poll of the receive CQ
   * returned is posted again at that CQ's next poll (so it stays yours until you poll again), in the
   * order first posted. While the ring is open it owns the receive queue: postRecv() is refused.
   * Not for QPs with an SRQ.
   */
  createReceiveRing(workRequests: RecvWorkRequest[]): ReceiveRing {
    return new ReceiveRing(this.handle.createReceiveRing(workRequests.map(toNativeRecvWr)), this);
  }

  /**
   * A flow steering rule directing received packets that match `specs` to this QP (ibv_create_flow).
   * RdmaError EOPNOTSUPP on devices without flow steering (rxe, siw).
   */
  createFlow(attributes: FlowAttributes): Flow {
    return new Flow(this.handle.createFlow(toNativeFlowAttributes(attributes)), this);
  }
}

/** A QP's address for its peer (ibv_rc_pingpong's): its number and first PSN, with its port's LID, GID and MTU. */
export function addressOf(context: Context, qpNum: number, psn: number, options: { portNum?: number; gidIndex?: number }): QpAddress {
  const portNum = options.portNum ?? 1;
  const port = context.queryPort(portNum);
  const gidIndex = options.gidIndex ?? context.defaultGidIndex(portNum);
  const entry = context.gidTable().find((e) => e.portNum === portNum && e.index === gidIndex);
  return { qpNum, psn, lid: port.lid, gid: entry?.gid ?? formatGid(new Uint8Array(16)), mtu: mtuBytes(port.activeMtu) };
}

/** The bring-up towards `remote`: the path (GRH on RoCE), then transitions.ts for the type. */
export function connectQp(qp: QueuePair | XrcTargetQp, context: Context, type: QpType, psn: number, remote: QpAddress, options: ConnectOptions): void {
  const portNum = options.portNum ?? 1;
  const port = context.queryPort(portNum);
  const mtu = Math.min(options.mtu ?? remote.mtu, remote.mtu, mtuBytes(port.activeMtu));
  const dgid = parseGid(remote.gid);
  // RoCE has no LIDs: the GRH (with the remote GID) is the address.
  const global = port.linkLayer === LinkLayer.ETHERNET || !isZeroGid(dgid);
  const grh = global ? { grh: { dgid, sgidIndex: options.gidIndex ?? context.defaultGidIndex(portNum), hopLimit: 1 } } : {};
  const init = qp.state === QpState.RESET ? { portNum, accessFlags: options.accessFlags } : undefined;
  const path = { destQpNum: remote.qpNum, rqPsn: remote.psn, pathMtu: mtuEnum(mtu), ahAttr: { dlid: remote.lid, sl: options.sl ?? 0, portNum, ...grh } };
  bringUp(qp, type, init, psn, path, options);
}

function mtuEnum(bytes: number): Mtu {
  const mtu = mtuFromBytes(bytes);
  if (mtu === undefined) throw new RangeError(`path MTU ${bytes} is below 256 bytes`);
  return mtu;
}
