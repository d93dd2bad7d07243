/** Shared receive queues: one pool of receive buffers for many QPs. */
import type { NativeSrq } from '../native';
import type { ProtectionDomain } from './pd';
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

  /** @internal Use pd.createSrq(). */
  constructor(handle: NativeSrq, pd: ProtectionDomain) {
    super(handle);
    this.pd = pd;
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
