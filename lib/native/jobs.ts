/** Jobs (native/jobs): the PMIx client that bootstraps ranks. */
import type { NativeResource } from './resource';

export interface NativePmixClient extends NativeResource {
  readonly info: { namespace: string; rank: number; size: number; localRank: number; localSize: number };
  put(key: string, buffer: ArrayBuffer, offset: number, length: number): void;
  commit(): void;
  /** done(0, '') once every rank arrived, else an errno and PMIx's words for it. */
  fence(collect: boolean, done: (errno: number, detail: string) => void): void;
  get(rank: number, key: string): Buffer | undefined;
}

/** The binding's functions for this area. */
export interface NativeJobsFunctions {
  pmixInit(): NativePmixClient;
}
