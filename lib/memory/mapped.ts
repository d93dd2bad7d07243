/**
 * Memory for RDMA: page-aligned mappings (optionally huge pages) seen as a Buffer/ArrayBuffer, released
 * deterministically by free() or `using`, or by garbage collection once neither the MappedBuffer nor any
 * view of its memory is reachable. Freeing closes the memory regions over it and drops registration-cache
 * entries first, and detaches the ArrayBuffer: every Buffer or typed array over it becomes empty, so no
 * JS code can reach memory after it is unmapped.
 */
import { native, type NativeMappedBuffer } from '../native';

export type HugePages = 'transparent' | 'hugetlb';

export interface AllocateOptions {
  /**
   * 'transparent': a 2 MiB-aligned mapping advised MADV_HUGEPAGE (the kernel uses huge pages when it can);
   * 'hugetlb': MAP_HUGETLB 2 MiB pages from the reserved pool (vm.nr_hugepages), ENOMEM when it is empty.
   */
  hugePages?: HugePages;
  /** Map exactly here (MAP_FIXED_NOREPLACE: EEXIST if anything is mapped there); page-aligned. */
  address?: bigint;
}

const hugePagesCode = { transparent: 1, hugetlb: 2 } as const;

export class MappedBuffer implements Disposable {
  readonly #native: NativeMappedBuffer;
  #bytes: Buffer | undefined;

  /** @internal Use allocate(). */
  constructor(handle: NativeMappedBuffer) {
    this.#native = handle;
  }

  /** The ArrayBuffer over the current pages (a new one after remap() or move()). */
  get arrayBuffer(): ArrayBuffer {
    return this.#native.arrayBuffer;
  }

  /** A Buffer over the current pages. */
  get bytes(): Buffer {
    const arrayBuffer = this.#native.arrayBuffer;
    if (this.#bytes?.buffer !== arrayBuffer) this.#bytes = Buffer.from(arrayBuffer);
    return this.#bytes;
  }

  get address(): bigint {
    return this.#native.address;
  }

  get length(): number {
    return this.#native.length;
  }

  /** 4096, or 2 MiB for hugetlb pages. */
  get pageSize(): number {
    return this.#native.pageSize;
  }

  /** False after free() and between unmap() and remap(). */
  get mapped(): boolean {
    return this.#native.mapped;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Deregisters what is registered over the buffer, detaches its views and unmaps it. Idempotent. */
  free(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.free();
  }

  // The operations below change the mapping behind the back of every registration (as other code in the
  // process could): they exist to test that registrations stay correct. Each detaches the current views.

  /** Unmaps the pages; the address range stays reserved for remap(). */
  unmap(): void {
    this.#native.unmap();
  }

  /** Maps fresh zero-filled pages at the same address (mmap MAP_FIXED over our own range). */
  remap(): void {
    this.#native.remap();
  }

  /** madvise(MADV_DONTNEED) on whole pages: they read as zeros again, on fresh physical pages. */
  discard(offset = 0, length = Math.ceil(this.length / this.pageSize) * this.pageSize - offset): void {
    this.#native.discard(offset, length);
  }

  /** mremap()s the pages, with their contents, to a new address. */
  move(): void {
    this.#native.move();
  }
}

/** Maps `size` bytes (rounded up to whole pages) of zero-filled memory. */
export function allocate(size: number, options: AllocateOptions = {}): MappedBuffer {
  const huge = options.hugePages === undefined ? 0 : hugePagesCode[options.hugePages];
  if (huge === undefined) throw new TypeError("hugePages must be 'transparent' or 'hugetlb'");
  return new MappedBuffer(native.allocate(size, huge, options.address));
}
