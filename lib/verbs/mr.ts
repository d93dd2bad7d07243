/** Memory regions: registered memory the device may access, and the descriptor a peer needs to reach it. */
import type { NativeMr } from '../native';
import type { ProtectionDomain } from './pd';
import { NativeObject } from '../native/wrapper';

/** ibv_advise_mr advice: prefetch pages of an ODP region for reading, for writing, or only those present. */
export type MrAdvice = 'prefetch' | 'prefetch-write' | 'prefetch-no-fault';
const adviceCodes = { prefetch: 0, 'prefetch-write': 1, 'prefetch-no-fault': 2 } as const;
const ADVISE_FLUSH = 1;

/** What a peer needs to RDMA-read/write/atomically update a region. */
export interface RemoteRegion {
  addr: bigint;
  rkey: number;
  length: number;
}

/**
 * close(): deregisters (or returns a cached registration to its cache); the buffer may be collected
 * afterwards: a cache holds no reference to it (its entry goes when the buffer is collected or its memory
 * unmapped). Idempotent.
 */
export class MemoryRegion extends NativeObject<NativeMr> {
  readonly pd: ProtectionDomain;
  /** The registered bytes. */
  readonly bytes: Uint8Array;

  /** @internal Use pd.registerMemory(). */
  constructor(handle: NativeMr, pd: ProtectionDomain, bytes: Uint8Array) {
    super(handle);
    this.pd = pd;
    this.bytes = bytes;
  }

  get lkey(): number {
    return this.handle.lkey;
  }

  get rkey(): number {
    return this.handle.rkey;
  }

  /** The registered address (the iova a peer uses). */
  get addr(): bigint {
    return this.handle.addr;
  }

  get length(): number {
    return this.handle.length;
  }

  /** Made by a registration cache from a cached registration (close() returns it to the cache). */
  get cached(): boolean {
    return this.handle.cached;
  }

  /**
   * ibv_advise_mr over a part of the region: prefetches On-Demand Paging pages before the device needs
   * them (`flush`: wait until done). RdmaError EOPNOTSUPP where the provider has no advise_mr (rxe before
   * rdma-core 59).
   */
  advise(advice: MrAdvice, options: { offset?: number; length?: number; flush?: boolean } = {}): void {
    const code = adviceCodes[advice];
    if (code === undefined) throw new TypeError(`advice must be one of ${Object.keys(adviceCodes).join(', ')}`);
    const offset = options.offset ?? 0;
    this.handle.advise(code, options.flush ? ADVISE_FLUSH : 0, offset, options.length ?? this.length - offset);
  }

  /** The descriptor of this region, or of a part of it, for a peer. */
  remote(offset = 0, length = this.length - offset): RemoteRegion {
    if (typeof offset !== 'number' || typeof length !== 'number') throw new TypeError('offset and length must be numbers');
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.length) {
      throw new RangeError('range exceeds the memory region');
    }
    return { addr: this.addr + BigInt(offset), rkey: this.rkey, length };
  }
}
