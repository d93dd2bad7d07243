/** Shared receive queues: one pool of receive buffers for many QPs. */
import type { NativeSrq } from '../native';
import type { ProtectionDomain } from './pd';
import { register } from '../core/registry';
import { toNativeRecvWr, type RecvWorkRequest } from './qp/work-request';

export interface SrqAttributes {
  maxWr: number;
  maxSge: number;
  /** When fewer receives than this remain, SRQ_LIMIT_REACHED fires once (0 = disarmed). */
  srqLimit: number;
}

export class SharedReceiveQueue implements Disposable {
  readonly #native: NativeSrq;
  readonly pd: ProtectionDomain;

  /** @internal Use pd.createSrq(). */
  constructor(handle: NativeSrq, pd: ProtectionDomain) {
    this.#native = register(handle, this);
    this.pd = pd;
  }

  /** @internal */
  get handle(): NativeSrq {
    return this.#native;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  postRecv(workRequests: RecvWorkRequest | RecvWorkRequest[]): void {
    const list = Array.isArray(workRequests) ? workRequests : [workRequests];
    this.#native.postRecv(list.map(toNativeRecvWr));
  }

  /** Resizes and/or (re)arms the limit event. */
  modify(attributes: Partial<Pick<SrqAttributes, 'maxWr' | 'srqLimit'>>): void {
    this.#native.modify(attributes);
  }

  query(): SrqAttributes {
    return this.#native.query();
  }

  /** Closes the SRQ and the QPs that receive through it. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
