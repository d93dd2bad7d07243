/** The test hooks' surface (native/testing). */
import type { NativeRegistrationCache } from './memory';
import type { NativeMr, NativePd, NativeQp } from './verbs';

/** Hooks for tests and benchmarks (native/testing/hooks.cc); not part of the API. */
export interface NativeTesting {
  forkProbe(mr: NativeMr): { parentValid: boolean; childValid: boolean; childCouldWatch: boolean; childCouldMonitor: boolean };
  simulateLostTrack(): void;
  /** An ArrayBuffer over a read-only private mapping of the file's first 4096 bytes. */
  mapFile(path: string): ArrayBuffer;
  /** An ArrayBuffer over 4096 bytes of a memfd mapped shared. */
  mapShared(): ArrayBuffer;
  /** A new thread mmaps fresh pages over the range (MAP_FIXED); returns without waiting for it. */
  remapOnThread(address: bigint, length: number): void;
  /** Registers memory the binding never hears of (never deregistered): destroying the PD then fails. */
  registerUntracked(pd: NativePd, buffer: ArrayBuffer, offset: number, length: number): void;
  /** The requests a QP counts as outstanding (sends and receives, an SRQ's for its receives) and the objects they hold. */
  inFlight(qp: NativeQp): { requests: number; objects: number };
  /** ns per ibv_reg_mr + ibv_dereg_mr */
  benchRegDereg(pd: NativePd, buffer: ArrayBuffer, offset: number, length: number, access: number, iterations: number): number;
  /** ns per cache hit (lookup, validity check, take and return the entry) */
  benchCacheHits(cache: NativeRegistrationCache, buffer: ArrayBuffer, offset: number, length: number, access: number, iterations: number): number;
  /** ns per monitor catch-up check (the system call of a monitored hit) on the range's first page */
  benchCatchUp(buffer: ArrayBuffer, offset: number, length: number, iterations: number): number;
  /** ns per munmap of `size` populated bytes, registered with the monitor or not */
  benchMunmap(size: number, monitored: boolean, iterations: number): number;
  /** The bytes ibv_create_flow would get for these flow attributes */
  packFlow(attributes: object): Buffer;
}
