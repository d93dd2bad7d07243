/** Shared receive queues: one pool of receive buffers for many QPs. */
import type { NativeSrq } from '../native';
import type { CompletionQueue } from './cq';
import type { ProtectionDomain } from './pd';
import type { XrcDomain } from './xrcd';
import { toNativeRecvWr, type RecvWorkRequest } from './qp/work-request';
import { NativeObject } from '../native/wrapper';

export interface SrqAttributes {
  maxWr: number;
  maxSge: number;
  /** When fewer receives than this remain, SRQ_LIMIT_REACHED fires once (0 = disarmed). */
  srqLimit: number;
}

/** close(): closes the SRQ and the QPs that receive through it. Idempotent. */
export class SharedReceiveQueue extends NativeObject<NativeSrq> {
  readonly pd: ProtectionDomain;
  /** An XRC SRQ's domain and the CQ its receives complete to. */
  readonly xrcd: XrcDomain | undefined;
  readonly cq: CompletionQueue | undefined;

  /** @internal Use pd.createSrq(). */
  constructor(handle: NativeSrq, pd: ProtectionDomain, xrcd?: XrcDomain, cq?: CompletionQueue) {
    super(handle);
    this.pd = pd;
    this.xrcd = xrcd;
    this.cq = cq;
  }

  /** An XRC SRQ's number (ibv_get_srq_num): what senders put in `xrc.remoteSrqn` to reach it. */
  get srqNum(): number {
    return this.handle.srqNum;
  }

  postRecv(workRequests: RecvWorkRequest | RecvWorkRequest[]): void {
    const list = Array.isArray(workRequests) ? workRequests : [workRequests];
    this.handle.postRecv(list.map(toNativeRecvWr));
  }

  /** Resizes and/or (re)arms the limit event. */
  modify(attributes: Partial<Pick<SrqAttributes, 'maxWr' | 'srqLimit'>>): void {
    this.handle.modify(attributes);
  }

  query(): SrqAttributes {
    return this.handle.query();
  }
}
