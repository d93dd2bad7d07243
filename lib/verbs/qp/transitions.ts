/**
 * QP bring-up, RESET → INIT → RTR → RTS, for every QP type the binding has (RC, UC, UD, XRC), in one place (as pyverbs keeps
 * its per-type transitions together). Each type takes exactly the attributes the verbs spec requires of
 * it at each step: qp.connect(), the pingpong tools, the bench and the tests all come through here.
 */
import { Access, Mtu, QpState, QpType } from '../constants';
import type { AddressVector, QpAttributes } from './qp';

/** What a QP needs to leave RESET: its port and partition, and what peers may do (RC/UC) or its Q_Key (UD). */
export interface InitAttributes {
  portNum: number;
  pkeyIndex?: number;
  /** RC/UC: what the peer may do to this side's memory (default: local write and, RC, remote read/write/atomic). */
  accessFlags?: number;
  /** UD: the Q_Key datagrams to this QP must carry. */
  qkey?: number;
}

/** The path to the peer of a connected (RC/UC) QP. */
export interface PathAttributes {
  destQpNum: number;
  /** The peer's first PSN: what this side expects to receive. */
  rqPsn: number;
  pathMtu: Mtu;
  ahAttr: AddressVector;
}

/** RC's timers and limits, with ibv_rc_pingpong's values as defaults. */
export interface ReliableAttributes {
  timeout?: number;
  retryCnt?: number;
  rnrRetry?: number;
  maxRdAtomic?: number;
  maxDestRdAtomic?: number;
  minRnrTimer?: number;
}

interface Modifiable {
  modify(attributes: QpAttributes): void;
}

/** RC and both XRC halves take RC's attributes (ibv_xsrq_pingpong brings its XRC QPs up as RC ones). */
const isReliable = (type: QpType): boolean => type === QpType.RC || type === QpType.XRC_SEND || type === QpType.XRC_RECV;

const defaultAccess = (type: QpType): number =>
  Access.LOCAL_WRITE | Access.REMOTE_WRITE | (isReliable(type) ? Access.REMOTE_READ | Access.REMOTE_ATOMIC : 0);

export function toInit(qp: Modifiable, type: QpType, init: InitAttributes): void {
  const common = { qpState: QpState.INIT, pkeyIndex: init.pkeyIndex ?? 0, portNum: init.portNum };
  if (type === QpType.UD) qp.modify({ ...common, qkey: init.qkey ?? 0 });
  else qp.modify({ ...common, qpAccessFlags: init.accessFlags ?? defaultAccess(type) });
}

/** UD needs no path: its destinations travel in each send's address handle. */
export function toRtr(qp: Modifiable, type: QpType, path?: PathAttributes, reliable: ReliableAttributes = {}): void {
  if (type === QpType.UD) return qp.modify({ qpState: QpState.RTR });
  if (path === undefined) throw new TypeError('a connected QP needs the path to its peer to reach RTR');
  const { destQpNum, rqPsn, pathMtu, ahAttr } = path;
  qp.modify({
    qpState: QpState.RTR, destQpNum, rqPsn, pathMtu, ahAttr,
    ...(isReliable(type) ? { maxDestRdAtomic: reliable.maxDestRdAtomic ?? 1, minRnrTimer: reliable.minRnrTimer ?? 12 } : {}),
  });
}

export function toRts(qp: Modifiable, type: QpType, sqPsn: number, reliable: ReliableAttributes = {}): void {
  qp.modify({
    qpState: QpState.RTS, sqPsn,
    ...(isReliable(type)
      ? { timeout: reliable.timeout ?? 14, retryCnt: reliable.retryCnt ?? 7, rnrRetry: reliable.rnrRetry ?? 7, maxRdAtomic: reliable.maxRdAtomic ?? 1 }
      : {}),
  });
}

/** All three steps (an XRC target, which never sends, stops at RTR); `init` undefined when the QP is in INIT already. */
export function bringUp(qp: Modifiable, type: QpType, init: InitAttributes | undefined, sqPsn: number, path?: PathAttributes, timers: ReliableAttributes = {}): void {
  if (init !== undefined) toInit(qp, type, init);
  toRtr(qp, type, path, timers);
  if (type !== QpType.XRC_RECV) toRts(qp, type, sqPsn, timers);
}
