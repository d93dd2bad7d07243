/**
 * Registration caches: memory regions for byte ranges, reusing a cached registration that still covers
 * the memory now mapped there. See native/memory/registration_cache.h for the strategies and what keeps each correct.
 */
import { toByteRange, type BufferSource } from '../core/buffers';
import { Access } from '../verbs/constants';
import { CachedMemoryRegion, MemoryRegion } from '../verbs/mr';
import { native, type NativeMonitorStatus, type NativeRegistrationCache, type NativeRegistrationCacheStats } from '../native';
import { odpMissing, odpUnsupported, type OdpTransport } from '../verbs/odp';
import { odpMisplaces } from './odp-probe';
import { ProtectionDomain } from '../verbs/pd';
import { NativeObject } from '../native/wrapper';

/**
 * - 'odp': On-Demand Paging registrations, which follow the pages mapped at their addresses: nothing to
 *   invalidate when memory is unmapped and mapped again.
 * - 'monitor': pinned registrations, invalidated by the userfaultfd monitor when their memory is unmapped,
 *   discarded (madvise) or moved (mremap).
 * - 'uncached': every register() is a fresh registration.
 * - 'unsafe-unmonitored': pinned registrations reused without the monitor. A registration can then outlive
 *   the memory it was made for, and RDMA to it silently misses the memory now at that address: this
 *   strategy exists to show that failure.
 */
export type RegistrationStrategy = 'odp' | 'monitor' | 'uncached' | 'unsafe-unmonitored';

export interface RegistrationCacheOptions {
  /**
   * 'auto' (default): 'odp' where the device has it for `transport` and a probe (one loopback RDMA write
   * per device and process) finds the data where it belongs, else 'monitor' where userfaultfd works, else
   * 'uncached'. ODP needs nothing pinned and nothing invalidated; the probe keeps it off rxe in Linux 6.15
   * to 7.3, whose ODP misplaces the data of packets that do not start at a page boundary (see README).
   */
  strategy?: 'auto' | RegistrationStrategy;
  /** The QPs the memory is for, which decides the ODP capabilities needed (default 'rc'). */
  transport?: OdpTransport;
  /** Most entries kept (default 1024); entries in use are never evicted. */
  maxEntries?: number;
  /** Most registered bytes kept (default 1 GiB). */
  maxBytes?: number;
}

export type RegistrationCacheStats = NativeRegistrationCacheStats;
export type MonitorStatus = NativeMonitorStatus;

/**
 * What 'auto' (or an explicit strategy) becomes, given why ODP and the monitor are not available;
 * `odpMisplaces` (the probe) runs only when 'auto' would otherwise take ODP.
 */
export function chooseStrategy(
  requested: 'auto' | RegistrationStrategy,
  odpUnavailable: string | undefined,
  monitorUnavailable: string | undefined,
  odpMisplaces: () => string | undefined = () => undefined,
): { strategy: RegistrationStrategy; reason: string } {
  switch (requested) {
    case 'auto': {
      const odpUnusable = odpUnavailable ?? odpMisplaces();
      if (odpUnusable === undefined) return { strategy: 'odp', reason: 'the device has On-Demand Paging and it placed the probe\'s data right' };
      if (monitorUnavailable === undefined) return { strategy: 'monitor', reason: `userfaultfd monitors the memory; no ODP (${odpUnusable})` };
      return { strategy: 'uncached', reason: `no userfaultfd (${monitorUnavailable}) and no ODP (${odpUnusable})` };
    }
    case 'odp':
      if (odpUnavailable !== undefined) throw odpUnsupported(odpUnavailable);
      return { strategy: 'odp', reason: 'requested' };
    case 'monitor': case 'uncached': case 'unsafe-unmonitored':
      return { strategy: requested, reason: 'requested' };
    default:
      throw new TypeError(`unknown registration strategy ${String(requested)}`);
  }
}

/** close(): closes the regions it made and deregisters everything. Idempotent. */
export class RegistrationCache extends NativeObject<NativeRegistrationCache> {
  readonly pd: ProtectionDomain;
  /** Why the strategy in effect was chosen. */
  readonly reason: string;
  /** Where register() says which kind of region it returned. */
  readonly #out = new Float64Array(1);

  /** @internal Use pd.createRegistrationCache(). */
  constructor(pd: ProtectionDomain, options: RegistrationCacheOptions = {}) {
    const odp = odpMissing(pd.context.odpCaps, options.transport ?? 'rc', Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ);
    const monitor = native.monitorStatus();
    const { strategy, reason } = chooseStrategy(options.strategy ?? 'auto', odp, monitor.available ? undefined : `userfaultfd: ${monitor.error}`, () => odpMisplaces(pd.context));
    super(native.createRegistrationCache(pd.handle, { strategy, maxEntries: options.maxEntries, maxBytes: options.maxBytes }));
    this.pd = pd;
    this.reason = reason;
  }

  get strategy(): RegistrationStrategy {
    return this.handle.strategy;
  }

  /**
   * A memory region for `buffer` (or a byte range of it): a cached registration covering it when one is
   * still valid, else a new one (cached when possible). close() the region when the operations using it
   * have completed; the registration stays cached for the next register(). A hit costs one native call
   * and one small object (a CachedMemoryRegion, a view of the entry's region); its close() one more call.
   */
  register(buffer: BufferSource, access: number = Access.LOCAL_WRITE, range: { offset?: number; length?: number } = {}): MemoryRegion {
    const { arrayBuffer, offset, length } = toByteRange(buffer, range.offset, range.length);
    const handle = this.handle.register(arrayBuffer, offset, length, access, this.#out);
    const base = this.#out[0]!;
    return base < 0 ? new MemoryRegion(handle, this.pd, arrayBuffer, offset, length) : new CachedMemoryRegion(handle, this.pd, arrayBuffer, offset, length, base);
  }

  stats(): RegistrationCacheStats {
    return this.handle.stats();
  }

  /** Deregisters every cached registration not in use. */
  flush(): void {
    this.handle.flush();
  }
}

/** The userfaultfd monitor: whether it can run here, and what it has seen (process-wide). */
export function monitorStatus(): MonitorStatus {
  return native.monitorStatus();
}

declare module '../verbs/pd' {
  interface ProtectionDomain {
    /** A registration cache over this PD (see RegistrationCache for the strategies). */
    createRegistrationCache(options?: RegistrationCacheOptions): RegistrationCache;
  }
}

// The PD is the cache's parent, so it makes the cache, but verbs sits below memory: the method is added here.
ProtectionDomain.prototype.createRegistrationCache = function createRegistrationCache(this: ProtectionDomain, options = {}) {
  return new RegistrationCache(this, options);
};
