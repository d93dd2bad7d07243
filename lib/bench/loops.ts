/**
 * Which measurement loop each side of each test runs, with what request, whichever driver runs it: the
 * C core (driver-c.ts) or TypeScript through the binding (driver-ts.ts).
 */
import { UD_GRH_BYTES, WrOpcode } from '../verbs/constants';
import type { BenchOptions } from './options';
import type { PeerInfo, Resources } from './session';
import { QKEY, remoteRegion } from './session';
import type { RawRun } from './stats';
import { testInfo } from './tests';

/** native/bench/bench.h Loop. */
export enum Loop {
  LatSend = 0,
  LatWrite = 1,
  LatRoundTrip = 2,
  BwPost = 3,
  BwRecv = 4,
}

export interface LoopPlan {
  loop: Loop;
  initiator: boolean;
  iters: number;
  durationMs: number;
  marginMs: number;
  txDepth: number;
  rxDepth: number;
  cqMod: number;
  postList: number;
  events: boolean;
  /** Count the calls into the addon (TypeScript driver). */
  countCalls: boolean;
  /** A timestamp per post and completion, for the peak bandwidth. */
  record: boolean;
  stallMs: number;
  /** Receivers over UC/UD: stop once nothing arrived for this long (messages can be lost). */
  idleMs: number;
  /** Receives this side posts before the barrier (its loop reposts as they are consumed). */
  prepost: number;
  send?: {
    opcode: WrOpcode;
    /** Offset and length in the MR (the send region). */
    length: number;
    inline: boolean;
    remote?: { addr: bigint; rkey: number };
    compareAdd?: bigint;
    swap?: bigint;
    ud?: { remoteQpn: number; remoteQkey: number };
  };
  /** Receive region: offset in the MR and length (UD: with room for the GRH). */
  recv?: { offset: number; length: number };
  /** write_lat: the byte this side writes its counter into and the byte the peer's writes land in. */
  postByte?: number;
  pollByte?: number;
}

/** perftest gives up when nothing completes for a minute (check_alive); so does the bench. */
export const STALL_MS = 60_000;
const UNRELIABLE_IDLE_MS = 2000;

const opcodes = {
  send: WrOpcode.SEND,
  write: WrOpcode.RDMA_WRITE,
  read: WrOpcode.RDMA_READ,
  atomic: WrOpcode.ATOMIC_FETCH_AND_ADD,
} as const;

/** The loop this side runs for one message size; undefined when it only waits (passive servers). */
export function planLoop(options: BenchOptions, server: boolean, res: Resources, remote: PeerInfo, size: number): LoopPlan | undefined {
  const info = testInfo(options.test);
  let loop: Loop;
  if (info.kind === 'lat') {
    if (info.verb === 'send') loop = Loop.LatSend;
    else if (info.verb === 'write') loop = Loop.LatWrite;
    else if (server) return undefined;
    else loop = Loop.LatRoundTrip;
  } else if (!server) {
    loop = Loop.BwPost;
  } else if (info.verb === 'send') {
    loop = Loop.BwRecv;
  } else {
    return undefined;
  }
  const receives = loop === Loop.LatSend || loop === Loop.BwRecv;
  const ud = options.connection === 'UD';
  const plan: LoopPlan = {
    loop,
    // perftest: the client sends first in send_lat, the server writes first in write_lat.
    initiator: loop === Loop.LatWrite ? server : !server,
    iters: options.iters,
    durationMs: options.duration * 1000,
    marginMs: options.margin * 1000,
    txDepth: options.txDepth,
    rxDepth: options.rxDepth,
    cqMod: options.cqMod,
    postList: options.postList,
    events: options.events,
    countCalls: options.countCalls,
    record: info.kind === 'bw' && !options.noPeak && options.iters > 0,
    stallMs: STALL_MS,
    idleMs: loop === Loop.BwRecv && options.connection !== 'RC' ? UNRELIABLE_IDLE_MS : 0,
    prepost: receives ? (options.iters > 0 ? Math.min(options.rxDepth, options.iters) : options.rxDepth) : 0,
  };
  if (loop !== Loop.BwRecv) {
    const atomic = info.verb === 'atomic';
    plan.send = {
      opcode: atomic && options.atomicType === 'CMP_AND_SWAP' ? WrOpcode.ATOMIC_CMP_AND_SWP : opcodes[info.verb],
      length: size,
      inline: (info.verb === 'send' || info.verb === 'write') && size <= options.inlineSize,
      remote: info.verb === 'send' ? undefined : remoteRegion(remote),
      ...(atomic ? { compareAdd: options.atomicType === 'CMP_AND_SWAP' ? 0n : 1n, swap: 1n } : {}),
      ud: ud ? { remoteQpn: remote.qpNum, remoteQkey: QKEY } : undefined,
    };
  }
  if (receives) plan.recv = { offset: res.region, length: size + (ud ? UD_GRH_BYTES : 0) };
  if (loop === Loop.LatWrite) {
    plan.postByte = size - 1;
    plan.pollByte = res.region + size - 1;
  }
  return plan;
}

/** A driver runs one planned loop on this side's objects and returns the raw timestamps. */
export type LoopDriver = (res: Resources, plan: LoopPlan, progress: (done: number) => void) => Promise<RawRun>;
