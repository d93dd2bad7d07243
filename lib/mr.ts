/** Memory regions: registered memory the device may access, and the descriptor a peer needs to reach it. */
import type { NativeMr } from './native';
import type { ProtectionDomain } from './pd';

/** What a peer needs to RDMA-read/write/atomically update a region. */
export interface RemoteRegion {
  addr: bigint;
  rkey: number;
  length: number;
}

export class MemoryRegion implements Disposable {
  readonly #native: NativeMr;
  readonly pd: ProtectionDomain;
  /** The registered bytes. */
  readonly bytes: Uint8Array;

  /** @internal Use pd.registerMemory(). */
  constructor(handle: NativeMr, pd: ProtectionDomain, bytes: Uint8Array) {
    this.#native = handle;
    this.pd = pd;
    this.bytes = bytes;
  }

  /** @internal */
  get handle(): NativeMr {
    return this.#native;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  get lkey(): number {
    return this.#native.lkey;
  }

  get rkey(): number {
    return this.#native.rkey;
  }

  /** The registered address (the iova a peer uses). */
  get addr(): bigint {
    return this.#native.addr;
  }

  get length(): number {
    return this.#native.length;
  }

  /** The descriptor of this region, or of a part of it, for a peer. */
  remote(offset = 0, length = this.length - offset): RemoteRegion {
    if (!Number.isInteger(offset) || offset < 0 || length < 0 || offset + length > this.length) {
      throw new RangeError('range exceeds the memory region');
    }
    return { addr: this.addr + BigInt(offset), rkey: this.rkey, length };
  }

  /** Deregisters; the buffer may be collected afterwards. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
