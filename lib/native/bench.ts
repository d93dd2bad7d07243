/** The C core of rdma-node bench (native/bench): perftest's loops. */
import type { NativeAh, NativeCq, NativeMr, NativeQp } from './verbs';

/** One C-core benchmark loop (native/bench/bench.h); the loop kinds are lib/bench/loops.ts's. */
export interface NativeBenchSpec {
  loop: number;
  initiator?: boolean;
  qps: NativeQp[];
  sendCq: NativeCq;
  recvCq: NativeCq;
  send?: {
    opcode: number;
    local: { mr: NativeMr; offset: number; length: number };
    sendFlags?: number;
    remotes?: { addr: bigint; rkey: number }[];
    compareAdd?: bigint;
    swap?: bigint;
    ah?: NativeAh;
    remoteQpn?: number;
    remoteQkey?: number;
  };
  recv?: { mr: NativeMr; offset: number; length: number };
  postByte?: { mr: NativeMr; offset: number };
  pollByte?: { mr: NativeMr; offset: number };
  rxPosted?: number;
  iters: number;
  durationMs?: number;
  marginMs?: number;
  txDepth?: number;
  rxDepth?: number;
  cqMod?: number;
  postList?: number;
  events?: boolean;
  record?: boolean;
  stallMs?: number;
  idleMs?: number;
}

/** Raw results, in ticks (of the cycle counter) since the loop started. */
export interface NativeBenchResult {
  ticksPerUsec: number;
  /** Per post: every iteration of the latency loops; bandwidth loops when recording the peak. */
  posted?: Float64Array;
  /** Per completion (recording the peak): entries where a signaled completion arrived, 0 elsewhere. */
  completed?: Float64Array;
  /** First post (a receiver: first arrival) and the end of the loop. */
  first: number;
  last: number;
  /** Duration mode: the sampled window and the iterations inside it. */
  sampleStart: number;
  sampleEnd: number;
  sampleIters: number;
  scnt: number;
  ccnt: number;
  rcnt: number;
  /** TypeScript driver with countCalls: calls into the addon during the loop, and milliseconds of GC. */
  nativeCalls?: number;
  gcMs?: number;
}

/** The binding's functions for this area. */
export interface NativeBenchFunctions {
  benchRun(spec: NativeBenchSpec, progress?: (done: number) => void): NativeBenchResult;
}
