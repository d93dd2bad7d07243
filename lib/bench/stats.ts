/**
 * perftest's statistics (print_report_lat, print_report_lat_duration, print_report_bw) over the raw
 * timestamps a loop returns, whichever driver ran it. Times are in ticks of `ticksPerUsec`; MB is 2^20
 * bytes and message rates are in millions per second, as perftest prints them.
 */

import type { NativeBenchResult } from '../native';

/** What a measurement loop hands back: the C core's result, or the TypeScript driver's in the same shape. */
export type RawRun = NativeBenchResult;

export interface LatencyStats {
  bytes: number;
  iterations: number;
  min: number;
  max: number;
  /** The median: the number to compare. */
  typical: number;
  average: number;
  stdev: number;
  p99: number;
  p999: number;
}

export interface LatencyDurationStats {
  bytes: number;
  iterations: number;
  average: number;
  /** Transactions per second. */
  tps: number;
}

export interface BandwidthStats {
  bytes: number;
  iterations: number;
  /** MB/s (2^20 bytes); 0 when not computed (-N, timed runs, receivers). */
  peak: number;
  average: number;
  /** Millions of messages per second. */
  msgRate: number;
}

/** perftest drops the two slowest samples (LAT_MEASURE_TAIL) before taking statistics. */
const MEASURE_TAIL = 2;

/** perftest's get_median over the first n sorted samples. */
function median(n: number, sorted: Float64Array): number {
  const half = Math.floor(n / 2);
  return (n - 1) % 2 ? (sorted[half]! + sorted[half - 1]!) / 2 : sorted[half]!;
}

/** Latency of an iteration run: the gaps between consecutive posts, halved for ping-pong tests. */
export function latencyStats(run: RawRun, bytes: number, iterations: number, rttFactor: 1 | 2): LatencyStats {
  const posted = run.posted;
  if (posted === undefined || iterations < 2 || posted.length < iterations) throw new RangeError('latency needs a timestamp per iteration');
  const deltas = new Float64Array(iterations - 1);
  for (let i = 0; i < deltas.length; i++) deltas[i] = posted[i + 1]! - posted[i]!;
  deltas.sort();
  const count = deltas.length > MEASURE_TAIL ? deltas.length - MEASURE_TAIL : deltas.length;
  const unit = run.ticksPerUsec * rttFactor;
  let sum = 0;
  for (let i = 0; i < count; i++) sum += deltas[i]!;
  const average = sum / count / unit;
  let squares = 0;
  for (let i = 0; i < count; i++) squares += (deltas[i]! / unit - average) ** 2;
  const at = (index: number): number => deltas[Math.min(index, deltas.length - 1)]! / unit;
  return {
    bytes,
    iterations,
    min: at(0),
    max: at(count),
    typical: median(count, deltas) / unit,
    average,
    stdev: Math.sqrt(squares / count),
    p99: at(Math.ceil(count * 0.99)),
    p999: at(Math.ceil(count * 0.999)),
  };
}

/** Latency of a timed run: the sampled window over the iterations in it. */
export function latencyDurationStats(run: RawRun, bytes: number, rttFactor: 1 | 2): LatencyDurationStats {
  const micros = (run.sampleEnd - run.sampleStart) / run.ticksPerUsec;
  const iterations = run.sampleIters;
  return { bytes, iterations, average: iterations > 0 ? micros / rttFactor / iterations : NaN, tps: iterations / (micros / 1e6) };
}

/**
 * perftest's peak: the best rate over any run of consecutive requests, min over i <= j of
 * (completed[j] - posted[i]) / (j - i + 1). Only recorded entries take part.
 */
export function peakTicksPerMessage(posted: Float64Array, completed: Float64Array, count: number): number {
  const posts: number[] = [];
  for (let i = 0; i < count; i++) if (posted[i]! > 0) posts.push(i);
  let best = Infinity;
  for (let j = 0; j < count; j++) {
    const done = completed[j]!;
    if (!(done > 0)) continue;
    for (const i of posts) {
      if (i > j) break;
      const t = (done - posted[i]!) / (j - i + 1);
      if (t < best) best = t;
    }
  }
  return best;
}

const MB = 2 ** 20;

/**
 * Bandwidth of a run. `iterations`: requests measured (all QPs together); `window`: 'sample' for timed
 * runs (the window perftest samples), 'run' for iteration runs and receivers (first post or arrival to
 * the last completion).
 */
export function bandwidthStats(run: RawRun, bytes: number, iterations: number, options: { window: 'sample' | 'run'; peak: boolean }): BandwidthStats {
  let ticks: number;
  if (options.window === 'sample') {
    iterations = run.sampleIters;
    ticks = run.sampleEnd - run.sampleStart;
  } else {
    const start = run.posted?.[0] || run.first;
    const end = (run.completed && run.completed[iterations - 1]) || run.last;
    ticks = end - start;
  }
  const seconds = ticks / run.ticksPerUsec / 1e6;
  let peak = 0;
  if (options.peak && run.posted && run.completed) {
    const best = peakTicksPerMessage(run.posted, run.completed, iterations);
    if (Number.isFinite(best) && best > 0) peak = bytes / (best / run.ticksPerUsec / 1e6) / MB;
  }
  return { bytes, iterations, peak, average: (bytes * iterations) / seconds / MB, msgRate: iterations / seconds / 1e6 };
}
