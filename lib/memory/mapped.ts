/**
 * Memory for RDMA: page-aligned mappings (optionally huge pages) seen as a Buffer/ArrayBuffer, released
 * deterministically by close() or `using`, or by garbage collection once neither the MappedBuffer nor any
 * view of its memory is reachable. Freeing closes the memory regions over it and drops registration-cache
 * entries first, and detaches the ArrayBuffer: every Buffer or typed array over it becomes empty, so no
 * JS code can reach memory after it is unmapped.
 */
import { native, type NativeMappedBuffer } from '../native';
import { NativeObject } from '../native/wrapper';

export type HugePages = 'transparent' | 'hugetlb';

export interface AllocateOptions {
  /**
   * 'transparent': a 2 MiB-aligned mapping advised MADV_HUGEPAGE (the kernel uses huge pages when it can);
   * 'hugetlb': MAP_HUGETLB 2 MiB pages from the reserved pool (vm.nr_hugepages), ENOMEM when it is empty.
   */
  hugePages?: HugePages;
  /** Map exactly here (MAP_FIXED_NOREPLACE: EEXIST if anything is mapped there); page-aligned. */
  address?: bigint;
  /**
   * A shared mapping of a memfd of its own (sealed against shrinking and growing) instead of private
   * memory, so that makeSegment(buffer) can export these very pages to other processes.
   */
  shareable?: boolean;
}

const hugePagesCode = { transparent: 1, hugetlb: 2 } as const;

/** close(): deregisters what is registered over the buffer, detaches its views and unmaps it. Idempotent. */
export class MappedBuffer extends NativeObject<NativeMappedBuffer> {
  #bytes: Buffer | undefined;

  /** @internal Use allocate(). */
  constructor(handle: NativeMappedBuffer) {
    super(handle);
  }

  /** The ArrayBuffer over the current pages (a new one after remap() or move()). */
  get arrayBuffer(): ArrayBuffer {
    return this.handle.arrayBuffer;
  }

  /** A Buffer over the current pages. */
  get bytes(): Buffer {
    const arrayBuffer = this.handle.arrayBuffer;
    if (this.#bytes?.buffer !== arrayBuffer) this.#bytes = Buffer.from(arrayBuffer);
    return this.#bytes;
  }

  get address(): bigint {
    return this.handle.address;
  }

  get length(): number {
    return this.handle.length;
  }

  /** 4096, or 2 MiB for hugetlb pages. */
  get pageSize(): number {
    return this.handle.pageSize;
  }

  /** False after close() and between unmap() and remap(). */
  get mapped(): boolean {
    return this.handle.mapped;
  }

  // The operations below change the mapping behind the back of every registration (as other code in the
  // process could): they exist to test that registrations stay correct. Each detaches the current views.

  /** Unmaps the pages; the address range stays reserved for remap(). */
  unmap(): void {
    this.handle.unmap();
  }

  /**
   * Maps fresh zero-filled pages at the same address (mmap MAP_FIXED over our own range). A shared
   * mapping (shareable, or a segment's attachment) maps its file again: the pages and contents are the file's.
   */
  remap(): void {
    this.handle.remap();
  }

  /**
   * madvise(MADV_DONTNEED) on whole pages: they read as zeros again, on fresh physical pages. In a shared
   * mapping MADV_REMOVE: the hole is punched in the file, for every process that maps it.
   */
  discard(offset = 0, length = Math.ceil(this.length / this.pageSize) * this.pageSize - offset): void {
    this.handle.discard(offset, length);
  }

  /** mremap()s the pages, with their contents, to a new address. */
  move(): void {
    this.handle.move();
  }
}

/** Maps `size` bytes (rounded up to whole pages) of zero-filled memory. */
export function allocate(size: number, options: AllocateOptions = {}): MappedBuffer {
  const huge = options.hugePages === undefined ? 0 : hugePagesCode[options.hugePages];
  if (huge === undefined) throw new TypeError("hugePages must be 'transparent' or 'hugetlb'");
  if (options.shareable !== undefined && typeof options.shareable !== 'boolean') throw new TypeError('shareable is a boolean');
  return new MappedBuffer(native.allocate(size, huge, options.address, options.shareable === true));
}
