/** Protection domains: the parent of memory regions and queue pairs. */
import { Access } from './constants';
import type { Context } from './context';
import { MemoryRegion } from './mr';
import type { NativePd } from './native';
import { odpMissing, odpUnsupported } from './odp';
import { QueuePair, type QpInitAttributes } from './qp';
import { RegistrationCache, type RegistrationCacheOptions } from './regcache';
import { toByteRange, type BufferSource } from './buffers';

export class ProtectionDomain implements Disposable {
  readonly #native: NativePd;
  readonly context: Context;

  /** @internal Use context.allocPd(). */
  constructor(handle: NativePd, context: Context) {
    this.#native = handle;
    this.context = context;
  }

  /** @internal */
  get handle(): NativePd {
    return this.#native;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /**
   * Registers `buffer` (an ArrayBuffer, Buffer or typed array; optionally a byte range of it) with the
   * given access flags (default LOCAL_WRITE). The buffer cannot be collected while the MR lives.
   * Access.ON_DEMAND on a device without On-Demand Paging is an RdmaError EOPNOTSUPP.
   */
  registerMemory(buffer: BufferSource, access: number = Access.LOCAL_WRITE, range: { offset?: number; length?: number } = {}): MemoryRegion {
    const { arrayBuffer, offset, length } = toByteRange(buffer, range.offset, range.length);
    if (access & Access.ON_DEMAND) {
      const missing = odpMissing(this.context.queryDevice().odpCaps);
      if (missing !== undefined) throw odpUnsupported(missing);
    }
    const handle = this.#native.registerMemory(arrayBuffer, offset, length, access);
    return new MemoryRegion(handle, this, new Uint8Array(arrayBuffer, offset, length));
  }

  /** A registration cache over this PD (see RegistrationCache for the strategies). */
  createRegistrationCache(options: RegistrationCacheOptions = {}): RegistrationCache {
    return new RegistrationCache(this, options);
  }

  /** A queue pair (RC unless `qpType` says otherwise) sending to `sendCq` and receiving to `recvCq`. */
  createQp(attributes: QpInitAttributes): QueuePair {
    const { sendCq, recvCq = sendCq, ...rest } = attributes;
    return new QueuePair(this.#native.createQp(sendCq.handle, recvCq.handle, rest), this, sendCq, recvCq);
  }

  /** Closes the PD and its MRs and QPs. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
