/** The collectives' surface (native/collectives): the engine and the spec of one collective. */
import type { NativeResource } from './resource';
import type { NativeCq, NativePd, NativeQp } from './verbs';

/** The collectives' engine (native/collectives/collective_engine.h); plans come from lib/collectives. */
export interface NativeCollectiveEngine extends NativeResource {
  readonly inbox: { addr: bigint; rkey: number };
  setPeers(inboxes: ({ addr: bigint; rkey: number } | null)[]): void;
  run(spec: NativeCollectiveSpec): Promise<void>;
  abort(): void;
  peerLost(rank: number): void;
}

export interface NativeCollectiveSpec {
  plan: Float64Array;
  srcBytes: number;
  dstBytes: number;
  tmpBytes: number;
  dtype?: number;
  op?: number;
  timeoutMs: number;
  input?: Uint8Array;
  inputRegion: number;
  inputOffset: number;
  output?: Uint8Array;
  outputRegion: number;
  outputOffset: number;
}

/** The binding's functions for this area. */
export interface NativeCollectivesFunctions {
  createCollectiveEngine(pd: NativePd, cq: NativeCq, qps: (NativeQp | null)[], rank: number, options: { slots: number; chunk: number }): NativeCollectiveEngine;
}
