/** Memory (native/memory): mapped buffers, the registration cache and its monitor, segments, CMA. */
import type { NativeResource } from './resource';
import type { NativeMr, NativePd } from './verbs';

export interface NativeMappedBuffer extends NativeResource {
  /** The external ArrayBuffer over the current pages; TypeError when unmapped or freed. */
  readonly arrayBuffer: ArrayBuffer;
  readonly address: bigint;
  readonly length: number;
  readonly pageSize: number;
  readonly mapped: boolean;
  unmap(): void;
  remap(): void;
  discard(offset: number, length: number): void;
  move(): void;
}

export interface NativeRegistrationCacheOptions {
  strategy: 'odp' | 'monitor' | 'uncached' | 'unsafe-unmonitored';
  maxEntries?: number;
  maxBytes?: number | bigint;
}

export interface NativeRegistrationCacheStats {
  hits: number;
  misses: number;
  invalidations: number;
  evictions: number;
  uncached: number;
  entries: number;
  bytes: number;
  inUse: number;
}

export interface NativeRegistrationCache extends NativeResource {
  /** out[0]: the range's offset in the returned entry region, or -1 when the region is its own (uncached). */
  register(buffer: ArrayBuffer, byteOffset: number, byteLength: number, access: number, out: Float64Array): NativeMr;
  stats(): NativeRegistrationCacheStats;
  flush(): void;
  readonly strategy: NativeRegistrationCacheOptions['strategy'];
}

export interface NativeMonitorStatus {
  available: boolean;
  /** errno name of why userfaultfd cannot be used here. */
  error?: string;
  running: boolean;
  unmapEvents: number;
  removeEvents: number;
  remapEvents: number;
  faults: number;
  lostTrack: number;
  watched: number;
}

export interface NativeSegment extends NativeResource {
  readonly id: string;
  readonly size: number;
  attach(offset: number, length: number): NativeMappedBuffer;
  remove(): void;
}

export interface NativeSegmentAccess extends NativeResource {
  readonly size: number;
  readonly writable: boolean;
  attach(offset: number, length: number): NativeMappedBuffer;
}

/** The binding's functions for this area. */
export interface NativeMemoryFunctions {
  allocate(size: number, hugePages: number, address: bigint | undefined, shareable: boolean): NativeMappedBuffer;
  createRegistrationCache(pd: NativePd, options: NativeRegistrationCacheOptions): NativeRegistrationCache;
  monitorStatus(): NativeMonitorStatus;
  makeSegment(source: number | NativeMappedBuffer, mode: number, hugetlb: boolean, channel: number): NativeSegment;
  getSegment(segid: string, writable: boolean, listener: (reason: 'removed' | 'owner-exited') => void): NativeSegmentAccess;
  processRead(pid: number, remote: { addr: bigint; length: bigint | number }[], target: ArrayBuffer, offset: number, length: number): number;
  processWrite(pid: number, remote: { addr: bigint; length: bigint | number }[], source: ArrayBuffer, offset: number, length: number): number;
  allowPtracer(pid: number): void;
}
