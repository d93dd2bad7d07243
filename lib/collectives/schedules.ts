/**
 * The algorithms, as plans (plan.ts) for one rank: the ones MPICH and Open MPI's tuned component choose
 * by message size and rank count. Pure functions of (rank, size, sizes, root, thresholds), cached by the
 * communicator; test/unit/collectives.test.ts runs them against a simulation of every rank.
 */
import { type Plan, PlanBuilder, Region } from './plan';

/** Sizes (bytes) from which the large-message algorithm is chosen. */
export interface Thresholds {
  /** broadcast: binomial tree below, scatter + ring allgather from here (with `broadcastRanks` or more). */
  broadcast: number;
  /** broadcast: the fewest ranks for scatter + ring allgather (at least 3). */
  broadcastRanks: number;
  /** allreduce: recursive doubling below, ring reduce-scatter + allgather from here. */
  allreduce: number;
  /** reduce: binomial tree below, ring reduce-scatter + gather at the root from here. */
  reduce: number;
  /** allgather (total bytes gathered): Bruck below, ring from here. */
  allgather: number;
  /** alltoall (bytes per peer): everything at once below, pairwise exchange from here. */
  alltoall: number;
}

/**
 * From bench:collectives (4 ranks on two VMs, BENCHMARKS-collectives.md): the ring allreduce won from
 * 256 KiB in three runs of four; the ring allgather's switch point moved from run to run (128 KiB to
 * 16 MiB gathered; 128 KiB in the run that set it); scatter + allgather never won a broadcast with 4
 * ranks, so it waits for 8 as MPICH's does (MPIR_CVAR_BCAST_MIN_PROCS). Reduce and alltoall, not
 * measured there, keep MPICH's defaults.
 */
export const defaultThresholds: Thresholds = { broadcast: 64 << 10, broadcastRanks: 8, allreduce: 256 << 10, reduce: 64 << 10, allgather: 128 << 10, alltoall: 8 << 10 };

/** The large-message algorithm at every size and rank count: what the tests and the benchmark force. */
export const largeMessageAlgorithms: Thresholds = { broadcast: 0, broadcastRanks: 3, allreduce: 0, reduce: 0, allgather: 0, alltoall: 0 };

const mod = (a: number, n: number): number => ((a % n) + n) % n;

/** Element-aligned blocks of `count` elements over `size` ranks: the first count % size get one more. */
function blocks(count: number, size: number, element: number): { offset: (b: number) => number; length: (b: number) => number } {
  const q = Math.floor(count / size);
  const m = count % size;
  return { offset: (b) => (b * q + Math.min(b, m)) * element, length: (b) => (q + (b < m ? 1 : 0)) * element };
}

const layout = (srcBytes: number, dstBytes: number, tmpBytes: number, input: [Region, number], output: [Region, number]): Omit<Plan, 'ops'> => ({
  srcBytes, dstBytes, tmpBytes, inputRegion: input[0], inputOffset: input[1], outputRegion: output[0], outputOffset: output[1],
});

/** Dissemination barrier: ceil(log2 n) rounds of one zero-byte message each way. */
export function barrier(rank: number, size: number): Plan {
  const b = new PlanBuilder();
  for (let k = 1; k < size; k <<= 1) b.send(mod(rank + k, size), Region.Dst, 0, 0).recv(mod(rank - k, size), Region.Dst, 0, 0).step();
  return b.build(layout(0, 0, 0, [Region.Dst, 0], [Region.Dst, 0]));
}

/** Binomial tree from the root, in ranks relative to it. */
function binomialBroadcast(b: PlanBuilder, rank: number, size: number, root: number, bytes: number): void {
  const vr = mod(rank - root, size);
  let mask = 1;
  for (; mask < size; mask <<= 1) {
    if (vr & mask) {
      b.recv(mod(vr - mask + root, size), Region.Dst, 0, bytes).step();
      break;
    }
  }
  for (mask >>= 1; mask > 0; mask >>= 1) if (vr + mask < size) b.send(mod(vr + mask + root, size), Region.Dst, 0, bytes);
  b.step();
}

/** MPICH's broadcast for long messages: binomial scatter of ceil(n/size)-byte pieces, then a ring allgather. */
function scatterAllgatherBroadcast(b: PlanBuilder, rank: number, size: number, root: number, bytes: number): void {
  const vr = mod(rank - root, size);
  const piece = Math.ceil(bytes / size);
  const clip = (x: number): number => Math.min(bytes, x);
  const lowbit = (v: number): number => v & -v;
  // What a relative rank holds after the scatter: its subtree's pieces.
  const subtree = (v: number): [number, number] => {
    const end = v === 0 ? size : Math.min(size, v + lowbit(v));
    return [clip(v * piece), clip(end * piece)];
  };
  const real = (v: number): number => mod(v + root, size);
  if (vr !== 0) {
    const [from, to] = subtree(vr);
    if (to > from) b.recv(real(vr - lowbit(vr)), Region.Dst, from, to - from).step();
  }
  for (let mask = vr === 0 ? 1 << Math.ceil(Math.log2(size)) : lowbit(vr); (mask >>= 1) > 0; ) {
    if (vr + mask >= size) continue;
    const [from, to] = subtree(vr + mask);
    if (to > from) b.send(real(vr + mask), Region.Dst, from, to - from);
  }
  b.step();
  const block = (v: number): [number, number] => [clip(mod(v, size) * piece), clip((mod(v, size) + 1) * piece)];
  for (let s = 0; s < size - 1; s++) {
    const [sf, st] = block(vr - s);
    const [rf, rt] = block(vr - s - 1);
    if (st > sf) b.send(real(vr + 1), Region.Dst, sf, st - sf);
    if (rt > rf) b.recv(real(vr - 1), Region.Dst, rf, rt - rf);
    b.step();
  }
}

export function broadcast(rank: number, size: number, root: number, bytes: number, t: Thresholds): Plan {
  const b = new PlanBuilder();
  if (size >= Math.max(3, t.broadcastRanks) && bytes >= t.broadcast) scatterAllgatherBroadcast(b, rank, size, root, bytes);
  else binomialBroadcast(b, rank, size, root, bytes);
  return b.build(layout(0, bytes, 0, [Region.Dst, 0], [Region.Dst, 0]));
}

/** Ring reduce-scatter in place on `region`: rank r ends holding the reduced block r. */
function ringReduceScatter(b: PlanBuilder, rank: number, size: number, region: Region, blk: ReturnType<typeof blocks>): void {
  const right = mod(rank + 1, size);
  const left = mod(rank - 1, size);
  for (let s = 0; s < size - 1; s++) {
    const send = mod(rank - s - 1, size);
    const recv = mod(rank - s - 2, size);
    b.send(right, region, blk.offset(send), blk.length(send)).recvReduce(left, region, blk.offset(recv), blk.length(recv)).step();
  }
}

/** Ring allgather in place on `region`, from rank r holding block r. */
function ringAllgather(b: PlanBuilder, rank: number, size: number, region: Region, blk: ReturnType<typeof blocks>): void {
  const right = mod(rank + 1, size);
  const left = mod(rank - 1, size);
  for (let s = 0; s < size - 1; s++) {
    const send = mod(rank - s, size);
    const recv = mod(rank - s - 1, size);
    b.send(right, region, blk.offset(send), blk.length(send)).recv(left, region, blk.offset(recv), blk.length(recv)).step();
  }
}

/**
 * Recursive doubling on Dst with Tmp for the partner's data; a rank count that is not a power of two is
 * folded first (MPICH): the first 2·rem ranks pair up, the even one hands its data to the odd one and
 * gets the result back at the end.
 */
function recursiveDoublingAllreduce(b: PlanBuilder, rank: number, size: number, bytes: number): void {
  const pof2 = 2 ** Math.floor(Math.log2(size));
  const rem = size - pof2;
  let newRank: number;
  if (rank < 2 * rem) {
    if (rank % 2 === 0) {
      b.send(rank + 1, Region.Dst, 0, bytes).step();
      newRank = -1;
    } else {
      b.recv(rank - 1, Region.Tmp, 0, bytes).step().reduce(Region.Dst, 0, bytes, Region.Tmp, 0);
      newRank = rank >> 1;
    }
  } else {
    newRank = rank - rem;
  }
  if (newRank >= 0) {
    for (let mask = 1; mask < pof2; mask <<= 1) {
      const partner = newRank ^ mask;
      const peer = partner < rem ? partner * 2 + 1 : partner + rem;
      b.send(peer, Region.Dst, 0, bytes).recv(peer, Region.Tmp, 0, bytes).step().reduce(Region.Dst, 0, bytes, Region.Tmp, 0);
    }
    b.step();
  }
  if (rank < 2 * rem) {
    if (rank % 2 === 1) b.send(rank - 1, Region.Dst, 0, bytes);
    else b.recv(rank + 1, Region.Dst, 0, bytes);
    b.step();
  }
}

export function allreduce(rank: number, size: number, count: number, element: number, t: Thresholds): Plan {
  const bytes = count * element;
  const b = new PlanBuilder();
  if (bytes >= t.allreduce && count >= size) {
    const blk = blocks(count, size, element);
    ringReduceScatter(b, rank, size, Region.Dst, blk);
    ringAllgather(b, rank, size, Region.Dst, blk);
    return b.build(layout(0, bytes, 0, [Region.Dst, 0], [Region.Dst, 0]));
  }
  recursiveDoublingAllreduce(b, rank, size, bytes);
  return b.build(layout(0, bytes, bytes, [Region.Dst, 0], [Region.Dst, 0]));
}

export function reduce(rank: number, size: number, root: number, count: number, element: number, t: Thresholds): Plan {
  const bytes = count * element;
  const b = new PlanBuilder();
  if (bytes >= t.reduce && count >= size) {
    const blk = blocks(count, size, element);
    ringReduceScatter(b, rank, size, Region.Dst, blk);
    if (rank === root) {
      for (let p = 0; p < size; p++) if (p !== root) b.recv(p, Region.Dst, blk.offset(p), blk.length(p));
    } else {
      b.send(root, Region.Dst, blk.offset(rank), blk.length(rank));
    }
    b.step();
  } else {
    const vr = mod(rank - root, size);
    for (let mask = 1; mask < size; mask <<= 1) {
      if ((vr & mask) === 0) {
        if ((vr | mask) < size) b.recvReduce(mod((vr | mask) + root, size), Region.Dst, 0, bytes).step();
      } else {
        b.send(mod((vr & ~mask) + root, size), Region.Dst, 0, bytes).step();
        break;
      }
    }
  }
  return b.build(layout(0, bytes, 0, [Region.Dst, 0], [Region.Dst, 0]));
}

/** Every rank's `bytes`, in rank order. */
export function allgather(rank: number, size: number, bytes: number, t: Thresholds): Plan {
  const b = new PlanBuilder();
  const total = bytes * size;
  if (total >= t.allgather) {
    const blk = { offset: (p: number) => p * bytes, length: () => bytes };
    ringAllgather(b, rank, size, Region.Dst, blk);
    return b.build(layout(0, total, 0, [Region.Dst, rank * bytes], [Region.Dst, 0]));
  }
  // Bruck: Tmp holds the blocks of ranks rank, rank+1, …; doubling each round; rotated into place at the end.
  for (let k = 1; k < size; k <<= 1) {
    const count = Math.min(k, size - k);
    b.send(mod(rank - k, size), Region.Tmp, 0, count * bytes).recv(mod(rank + k, size), Region.Tmp, k * bytes, count * bytes).step();
  }
  const head = (size - rank) * bytes;
  b.copy(Region.Dst, rank * bytes, head, Region.Tmp, 0).copy(Region.Dst, 0, total - head, Region.Tmp, head).step();
  return b.build(layout(0, total, total, [Region.Tmp, 0], [Region.Dst, 0]));
}

/** Block r of the reduction of every rank's size·count elements, at rank r (MPI_Reduce_scatter_block). */
export function reduceScatter(rank: number, size: number, count: number, element: number): Plan {
  const b = new PlanBuilder();
  const bytes = count * element;
  const blk = { offset: (p: number) => p * bytes, length: () => bytes };
  ringReduceScatter(b, rank, size, Region.Tmp, blk);
  b.copy(Region.Dst, 0, bytes, Region.Tmp, rank * bytes).step();
  return b.build(layout(0, bytes, bytes * size, [Region.Tmp, 0], [Region.Dst, 0]));
}

/** Block p of every rank's input to rank p. */
export function alltoall(rank: number, size: number, bytes: number, t: Thresholds): Plan {
  const b = new PlanBuilder();
  const total = bytes * size;
  b.copy(Region.Dst, rank * bytes, bytes, Region.Src, rank * bytes);
  if (bytes < t.alltoall) {
    for (let i = 1; i < size; i++) {
      const to = mod(rank + i, size);
      const from = mod(rank - i, size);
      b.send(to, Region.Src, to * bytes, bytes).recv(from, Region.Dst, from * bytes, bytes);
    }
    b.step();
  } else {
    b.step();
    for (let i = 1; i < size; i++) {
      const to = mod(rank + i, size);
      const from = mod(rank - i, size);
      b.send(to, Region.Src, to * bytes, bytes).recv(from, Region.Dst, from * bytes, bytes).step();
    }
  }
  return b.build(layout(total, total, 0, [Region.Src, 0], [Region.Dst, 0]));
}
