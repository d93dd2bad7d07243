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
  readonly #arrayBuffer: ArrayBuffer;
  readonly #byteOffset: number;
  readonly #byteLength: number;
  #bytes: Uint8Array | undefined;

  /** @internal Use pd.registerMemory(). */
  constructor(handle: NativeMr, pd: ProtectionDomain, arrayBuffer: ArrayBuffer, byteOffset: number, byteLength: number) {
    super(handle, false);
    this.pd = pd;
    this.#arrayBuffer = arrayBuffer;
    this.#byteOffset = byteOffset;
    this.#byteLength = byteLength;
  }

  /** The registered bytes. */
  get bytes(): Uint8Array {
    return (this.#bytes ??= new Uint8Array(this.#arrayBuffer, this.#byteOffset, this.#byteLength));
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
    const { mr, offset, length } = this.nativeRange(options.offset ?? 0, options.length);
    mr.advise(code, options.flush ? ADVISE_FLUSH : 0, offset!, length ?? mr.length - offset!);
  }

  /** The descriptor of this region, or of a part of it, for a peer. */
  remote(offset = 0, length = this.length - offset): RemoteRegion {
    if (typeof offset !== 'number' || typeof length !== 'number') throw new TypeError('offset and length must be numbers');
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.length) {
      throw new RangeError('range exceeds the memory region');
    }
    return { addr: this.addr + BigInt(offset), rkey: this.rkey, length };
  }

  /**
   * @internal A part of this region as the native side names it: the native region and the offset in it
   * (the native side checks the range against the native region).
   */
  nativeRange(offset?: number, length?: number): { mr: NativeMr; offset?: number; length?: number } {
    return { mr: this.handle, offset, length };
  }
}

/**
 * A registration-cache hit: a view with its own range of the one native region of a cache entry, so a hit
 * makes no native object. close() returns the entry to the cache (once: idempotent).
 */
export class CachedMemoryRegion extends MemoryRegion {
  /** Where this view starts in the entry's region. */
  readonly #base: number;
  readonly #length: number;
  #released = false;

  /** @internal Use cache.register(). */
  constructor(handle: NativeMr, pd: ProtectionDomain, arrayBuffer: ArrayBuffer, byteOffset: number, byteLength: number, base: number) {
    super(handle, pd, arrayBuffer, byteOffset, byteLength);
    this.#base = base;
    this.#length = byteLength;
  }

  /** @internal */
  override get handle(): NativeMr {
    if (this.#released) throw new TypeError('memory region is closed');
    return super.handle;
  }

  override get closed(): boolean {
    return this.#released || super.closed;
  }

  override close(): void {
    if (this.#released) return;
    this.#released = true;
    super.handle.release();
  }

  override get addr(): bigint {
    return this.handle.addr + BigInt(this.#base);
  }

  override get length(): number {
    this.handle; // closed is closed, as for every region
    return this.#length;
  }

  override get cached(): boolean {
    return this.handle.cached;
  }

  override nativeRange(offset = 0, length?: number): { mr: NativeMr; offset: number; length: number } {
    if (typeof offset !== 'number' || (length !== undefined && typeof length !== 'number')) throw new TypeError('sge offset and length must be numbers');
    const size = this.#length;
    if (!Number.isInteger(offset) || offset < 0 || offset > size) throw new RangeError('sge.offset is beyond the end of the MR');
    const count = length ?? size - offset;
    if (!Number.isInteger(count) || count < 0 || count > size - offset) throw new RangeError('sge range exceeds the MR');
    return { mr: this.handle, offset: this.#base + offset, length: count };
  }
}
