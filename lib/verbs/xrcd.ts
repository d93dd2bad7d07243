/**
 * XRC (eXtended Reliable Connection): one initiator QP of a process reaches every process of a node
 * through the XRC SRQs of a shared XRC domain. The domain holds the target QPs (XRC_RECV, no PD, CQs or
 * queues: each receive lands in the XRC SRQ the sender names); initiators are XRC_SEND QPs of a PD
 * (pd.createQp) and XRC SRQs come from pd.createSrq({ xrcd, cq }). Hardware only (mlx4, mlx5, hns, qedr):
 * rxe and siw refuse with RdmaError EOPNOTSUPP.
 */
import { randomInt } from 'node:crypto';

import { QpType, type QpState } from './constants';
import type { Context } from './context';
import type { NativeQp, NativeXrcd } from '../native';
import { addressOf, connectQp, type ConnectOptions, type QpAddress, type QpAttributes, type QpQueryResult } from './qp/qp';
import { NativeObject } from '../native/wrapper';

export interface XrcdOptions {
  /** A file naming the domain: processes opening the same file share it (made if `create`). */
  file?: string;
  /** Or an open file descriptor of that file. Neither: a private domain. */
  fd?: number;
  /** Make the domain if the file has none yet (O_CREAT; default true). */
  create?: boolean;
  /** Fail if the file has a domain already (O_EXCL). */
  exclusive?: boolean;
}

/** close(): closes the domain's target QPs and SRQs first. Idempotent. */
export class XrcDomain extends NativeObject<NativeXrcd> {
  readonly context: Context;

  /** @internal Use context.openXrcd(). */
  constructor(handle: NativeXrcd, context: Context) {
    super(handle);
    this.context = context;
  }

  /** A new XRC target QP (ibv_create_qp_ex with this domain). */
  createQp(): XrcTargetQp {
    return new XrcTargetQp(this.handle.createQp(), this);
  }

  /** An existing target QP of this domain, made by another process of the node (ibv_open_qp). */
  openQp(qpNum: number): XrcTargetQp {
    return new XrcTargetQp(this.handle.openQp(qpNum), this);
  }
}

/** An XRC target QP: brought to RTR towards its initiator; it posts nothing. close() destroys it (or lets go of an opened one). */
export class XrcTargetQp extends NativeObject<NativeQp> {
  readonly xrcd: XrcDomain;
  readonly qpType = QpType.XRC_RECV;
  #psn: number = randomInt(0, 1 << 24);

  /** @internal Use xrcd.createQp() or xrcd.openQp(). */
  constructor(handle: NativeQp, xrcd: XrcDomain) {
    super(handle);
    this.xrcd = xrcd;
  }

  get qpNum(): number {
    return this.handle.qpNum;
  }

  get state(): QpState {
    return this.handle.state;
  }

  modify(attributes: QpAttributes): void {
    this.handle.modify(attributes);
  }

  query(): QpQueryResult {
    return this.handle.query() as unknown as QpQueryResult;
  }

  address(options: { portNum?: number; gidIndex?: number } = {}): QpAddress {
    return addressOf(this.xrcd.context, this.qpNum, this.#psn, options);
  }

  /** RESET (or INIT) → INIT → RTR towards the initiator `remote`. */
  connect(remote: QpAddress, options: ConnectOptions = {}): void {
    connectQp(this, this.xrcd.context, this.qpType, this.#psn, remote, options);
  }
}
