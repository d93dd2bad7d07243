/** Protection domains: the parent of memory regions and queue pairs. */
import { Access } from './constants';
import type { Context } from './context';
import { MemoryRegion } from './mr';
import type { NativePd } from './native';
import { QueuePair, type QpInitAttributes } from './qp';
import { toByteRange, type BufferSource } from './buffers';

export class ProtectionDomain implements Disposable {
  readonly #native: NativePd;
  readonly context: Context;

  /** @internal Use context.allocPd(). */
  constructor(handle: NativePd, context: Context) {
    this.#native = handle;
    this.context = context;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /**
   * Registers `buffer` (an ArrayBuffer, Buffer or typed array; optionally a byte range of it) with the
   * given access flags (default LOCAL_WRITE). The buffer cannot be collected while the MR lives.
   */
  registerMemory(buffer: BufferSource, access: number = Access.LOCAL_WRITE, range: { offset?: number; length?: number } = {}): MemoryRegion {
    const { arrayBuffer, offset, length } = toByteRange(buffer, range.offset, range.length);
    const handle = this.#native.registerMemory(arrayBuffer, offset, length, access);
    return new MemoryRegion(handle, this, new Uint8Array(arrayBuffer, offset, length));
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
