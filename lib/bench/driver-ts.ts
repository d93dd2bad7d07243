/**
 * The TypeScript driver: the same loops as native/bench/bench_loops.cc, but every post and every poll is
 * a call from TypeScript through the binding, written as a user of the binding would write it for speed:
 * prepared work requests, receives reposted by a receive ring, polls that spin natively, and a post fused
 * with the poll of its completion. With -e it awaits cq.wait() through the event loop. Comparing the two
 * drivers shows what driving RDMA from TypeScript costs.
 */
import { CompletionBatch } from '../verbs/completion';
import { WcStatus, WrOpcode, enumName } from '../verbs/constants';
import type { CompletionQueue } from '../verbs/cq';
import { rdmaError } from '../core/errors';
import { CrossingCounter } from '../native/crossings';
import { PerformanceObserver } from 'node:perf_hooks';
import type { PreparedWorkRequests } from '../verbs/qp/prepared';
import type { SendWorkRequest } from '../verbs/qp/work-request';
import { Loop, type LoopDriver, type LoopPlan } from './loops';
import type { Resources } from './session';
import type { RawRun } from './stats';

const enum State { Start, Sample, StopSample, End }

const POLL_BATCH = 16;
const PROGRESS_MS = 200;
/** How long one busy poll spins natively before the loop checks its clock (and -e waits before sleeping). */
const SPIN_US = 1000;
const SPIN = { spinUs: SPIN_US } as const;
const NO_SPIN = { spinUs: 0 } as const;
const EVENT_SPIN_US = 0;
/** -e: how often the clock and the stall check run while the loop sleeps on a channel. */
const TICK_MS = 50;
const ENDED = Symbol('ended');

class Runner {
  readonly #plan: LoopPlan;
  readonly #progress: (done: number) => void;
  readonly #t0 = performance.now();
  readonly run: RawRun;
  readonly #batch: CompletionBatch;
  #spins = 0;
  #now = 0;
  #clockStart = -1;
  #state = State.Start;
  #lastActivity = 0;
  #nextProgress = PROGRESS_MS * 1e6;
  readonly #abort = new AbortController();
  readonly #waitOptions: { signal: AbortSignal; spinUs: number };
  #ticker: NodeJS.Timeout | undefined;
  /** --count-calls: counts the calls into the addon. */
  readonly counter: CrossingCounter | undefined;

  constructor(plan: LoopPlan, progress: (done: number) => void) {
    this.#plan = plan;
    this.#progress = progress;
    const lat = plan.loop <= Loop.LatRoundTrip;
    // The latency loops poll one completion at a time, as perftest's do.
    this.#batch = new CompletionBatch(lat ? 1 : POLL_BATCH);
    const samples = plan.iters > 0 && (lat || plan.record) ? new Float64Array(plan.iters) : undefined;
    this.run = {
      ticksPerUsec: 1000,
      posted: samples,
      completed: plan.record && !lat ? new Float64Array(plan.iters) : undefined,
      first: 0, last: 0, sampleStart: 0, sampleEnd: 0, sampleIters: 0, scnt: 0, ccnt: 0, rcnt: 0,
    };
    this.#waitOptions = { signal: this.#abort.signal, spinUs: EVENT_SPIN_US };
    this.counter = plan.countCalls ? new CrossingCounter() : undefined;
    if (plan.events) {
      // Sleeping loops keep time here: the tick ends a timed run or reports a stall by aborting the wait.
      this.#ticker = setInterval(() => {
        try {
          this.refresh();
          if (this.ended) this.#abort.abort(ENDED);
        } catch (error) {
          this.#abort.abort(error);
        }
      }, TICK_MS);
    }
  }

  stop(): void {
    clearInterval(this.#ticker);
    if (this.counter) this.run.nativeCalls = this.counter.count;
    this.counter?.close();
  }

  /** Counts the calls into these objects too (--count-calls). */
  watch(...objects: Array<{ handle: object } | undefined>): void {
    for (const object of objects) if (object) this.counter?.watch(object.handle);
  }

  /** Nanoseconds since the loop started (the driver's ticks): performance.now() costs a third of hrtime.bigint(). */
  stamp(): number {
    return (performance.now() - this.#t0) * 1e6;
  }

  get duration(): boolean {
    return this.#plan.iters === 0;
  }
  get ended(): boolean {
    return this.#state === State.End;
  }
  get sampling(): boolean {
    return this.#state === State.Sample;
  }

  startClock(): void {
    if (!this.duration) return;
    this.#clockStart = this.stamp();
    this.#advance(this.#clockStart);
  }

  #advance(now: number): void {
    if (!this.duration || this.#clockStart < 0) return;
    const { durationMs, marginMs } = this.#plan;
    if (this.#state === State.Start && now >= this.#clockStart + marginMs * 1e6) {
      this.#state = State.Sample;
      this.run.sampleStart = this.stamp();
    }
    if (this.#state === State.Sample && now >= this.#clockStart + (durationMs - marginMs) * 1e6) {
      this.#state = State.StopSample;
      this.run.sampleEnd = this.stamp();
    }
    if (this.#state === State.StopSample && now >= this.#clockStart + durationMs * 1e6) this.#state = State.End;
  }

  spin(): void {
    if ((++this.#spins & 255) === 0) this.refresh();
  }

  refresh(): void {
    const now = (this.#now = this.stamp());
    this.#advance(now);
    if (this.#plan.stallMs > 0 && now - this.#lastActivity > this.#plan.stallMs * 1e6 && !this.ended) {
      throw rdmaError('ibv_poll_cq', 'ETIMEDOUT', `nothing completed for ${this.#plan.stallMs / 1000} s (is the peer still running?)`);
    }
    if (now >= this.#nextProgress) {
      this.#nextProgress = now + PROGRESS_MS * 1e6;
      const r = this.run;
      this.#progress(this.duration ? r.sampleIters : Math.max(r.scnt, r.ccnt, r.rcnt));
    }
  }

  activity(): void {
    this.#lastActivity = this.#now;
  }

  check(batch: CompletionBatch, i: number, what: string): void {
    const status = batch.status(i);
    if (status === WcStatus.SUCCESS) return;
    const error = rdmaError('ibv_poll_cq', 'EIO', `${what} completed with ${enumName(WcStatus, status)} after ${this.run.ccnt} completions`);
    Object.assign(error, { status, statusName: enumName(WcStatus, status) });
    throw error;
  }

  /**
   * Polls until `cq` yields completions into the batch (0 once a timed run has ended). Busy polling stays
   * synchronous and spins natively (an await per completion would cost a microtask turn each); -e awaits
   * cq.wait().
   */
  pollWait(cq: CompletionQueue): number | Promise<number> {
    return this.#plan.events ? this.#pollEvents(cq) : this.#pollBusy(cq);
  }

  #pollBusy(cq: CompletionQueue): number {
    for (;;) {
      const n = cq.poll(this.#batch, SPIN).count;
      if (n > 0) {
        this.activity();
        return n;
      }
      if (this.ended) return 0;
      this.refresh();
    }
  }

  async #pollEvents(cq: CompletionQueue): Promise<number> {
    const n = await this.waitPoll(cq);
    if (n > 0) this.activity();
    return n;
  }

  /** Busy polling: posts `request` and polls `cq` in one call (its completion usually comes in the spin). */
  postPoll(request: PreparedWorkRequests, cq: CompletionQueue): number | Promise<number> {
    if (this.#plan.events) {
      request.post();
      return this.#pollEvents(cq);
    }
    const n = request.postAndPoll(cq, this.#batch, SPIN_US).count;
    if (n === 0) return this.#pollBusy(cq);
    this.activity();
    return n;
  }

  /** -e: sleeps on the CQ's channel until completions arrive; 0 when the run has ended. */
  async waitPoll(cq: CompletionQueue): Promise<number> {
    try {
      return (await cq.wait(this.#waitOptions, this.#batch)).count;
    } catch (error) {
      if (error === ENDED) return 0;
      throw error;
    }
  }

  get batch(): CompletionBatch {
    return this.#batch;
  }
}

function sendRequest(res: Resources, plan: LoopPlan, signaled: boolean): SendWorkRequest {
  const send = plan.send!;
  return {
    opcode: send.opcode,
    sgList: [{ mr: res.mr, offset: 0, length: send.length }],
    signaled,
    inline: send.inline,
    remote: send.remote,
    compareAdd: send.compareAdd,
    swap: send.swap,
    ud: send.ud && res.ah ? { ah: res.ah, ...send.ud } : undefined,
  };
}

/** The send request prepared twice, unsignaled and signaled, so each post is an argument-less call. */
function prepareSends(r: Runner, res: Resources, plan: LoopPlan): { quiet: PreparedWorkRequests; signaled: PreparedWorkRequests } {
  const sends = { quiet: res.qp.prepareSend([sendRequest(res, plan, false)]), signaled: res.qp.prepareSend([sendRequest(res, plan, true)]) };
  r.watch(sends.quiet, sends.signaled);
  return sends;
}

/**
 * One iteration of a loop: true to go on, false to stop, or (only when it must sleep, -e) a promise of
 * either. The loops are written as steps because V8 cannot optimize a loop running inside an async
 * function (no on-stack replacement of resumable functions): such a loop stays interpreted, which under
 * TCG costs about 30 µs per iteration, more than the binding. Steps run in a plain function instead.
 */
type Step = () => boolean | Promise<boolean>;

/** Runs steps while they finish synchronously; returns false or the promise of the step that sleeps. */
function spinSteps(step: Step): false | Promise<boolean> {
  for (;;) {
    const more = step();
    if (more !== true) return more;
  }
}

async function drive(step: Step): Promise<void> {
  for (;;) {
    const more = spinSteps(step);
    if (more === false || !(await more)) return;
  }
}

/** `next(n)` now when `polled` is a count, or once the wait resolves. */
function after(polled: number | Promise<number>, next: (n: number) => boolean): boolean | Promise<boolean> {
  return typeof polled === 'number' ? next(polled) : polled.then(next);
}

async function latSend(r: Runner, res: Resources, plan: LoopPlan): Promise<void> {
  const { quiet, signaled } = prepareSends(r, res, plan);
  const run = r.run;
  const posted = run.posted;
  const received = (n: number): boolean => {
    if (n === 0) return false;
    r.check(r.batch, 0, 'receive');
    if (!plan.initiator && run.rcnt === 0) r.startClock();
    run.rcnt++;
    if (r.sampling) run.sampleIters++;
    // The ring (res.ring) reposts the receive at the next poll of the receive CQ.
    return true;
  };
  const sent = (n: number): boolean => {
    if (n === 0) return false;
    r.check(r.batch, 0, 'send');
    run.ccnt++;
    return true;
  };
  const send = (): boolean | Promise<boolean> => {
    if (!(run.scnt < plan.iters || (r.duration && !r.ended))) return true;
    if (posted) posted[run.scnt] = r.stamp();
    run.scnt++;
    if (run.scnt % plan.cqMod === 0 || (!r.duration && run.scnt === plan.iters)) return after(r.postPoll(signaled, res.sendCq), sent);
    quiet.post();
    return true;
  };
  if (plan.initiator) r.startClock();
  run.first = r.stamp();
  try {
    await drive(() => {
      if (!(run.scnt < plan.iters || run.rcnt < plan.iters || (r.duration && !r.ended))) return false;
      r.spin();
      if ((run.rcnt < plan.iters || r.duration) && !(plan.initiator && run.scnt === 0)) {
        const got = after(r.pollWait(res.recvCq), received);
        if (got === false) return false;
        if (got !== true) return got.then((more) => more && send());
      }
      return send();
    });
  } finally {
    quiet.close();
    signaled.close();
  }
}

async function latWrite(r: Runner, res: Resources, plan: LoopPlan): Promise<void> {
  const write = res.qp.prepareSend([sendRequest(res, plan, true)]);
  r.watch(write);
  const bytes = res.mr.bytes;
  const postAt = plan.postByte!;
  const pollAt = plan.pollByte!;
  const run = r.run;
  const posted = run.posted;
  const completed = (n: number): boolean => {
    if (n === 0) return false;
    r.check(r.batch, 0, 'RDMA write');
    run.ccnt++;
    return true;
  };
  r.startClock();
  run.first = r.stamp();
  try {
    await drive(() => {
      if (!(run.scnt < plan.iters || run.ccnt < plan.iters || run.rcnt < plan.iters || (r.duration && !r.ended))) return false;
      r.spin();
      if ((run.rcnt < plan.iters || r.duration) && !(run.scnt === 0 && plan.initiator)) {
        const expected = ++run.rcnt & 0xff;
        // Atomics.load is never hoisted out of the loop: each spin reads the byte the device writes.
        while (Atomics.load(bytes, pollAt) !== expected && !r.ended) r.spin();
        r.activity();
        if (r.sampling) run.sampleIters++;
      }
      if (!(run.scnt < plan.iters || r.duration)) return true;
      if (r.ended) return false;
      if (posted) posted[run.scnt] = r.stamp();
      Atomics.store(bytes, postAt, ++run.scnt & 0xff);
      return after(r.postPoll(write, res.sendCq), completed);
    });
  } finally {
    write.close();
  }
}

async function latRoundTrip(r: Runner, res: Resources, plan: LoopPlan): Promise<void> {
  const request = res.qp.prepareSend([sendRequest(res, plan, true)]);
  r.watch(request);
  const run = r.run;
  const posted = run.posted;
  const what = plan.send!.opcode === WrOpcode.RDMA_READ ? 'RDMA read' : 'atomic';
  const completed = (n: number): boolean => {
    if (n === 0) return false;
    r.check(r.batch, 0, what);
    run.ccnt++;
    if (r.sampling) run.sampleIters++;
    return true;
  };
  r.startClock();
  run.first = r.stamp();
  try {
    await drive(() => {
      if (!(run.scnt < plan.iters || (r.duration && !r.ended))) return false;
      r.spin();
      if (posted) posted[run.scnt] = r.stamp();
      run.scnt++;
      return after(r.postPoll(request, res.sendCq), completed);
    });
  } finally {
    request.close();
  }
}

async function bwPost(r: Runner, res: Resources, plan: LoopPlan): Promise<void> {
  const list = plan.postList;
  // A list of `list` requests, the last signaled (post lists: cq_mod equals the list length)...
  const batchList = list > 1 ? res.qp.prepareSend(Array.from({ length: list }, (_, i) => sendRequest(res, plan, i === list - 1))) : undefined;
  // ...or single requests, every cq_mod-th signaled.
  const single = list === 1 ? prepareSends(r, res, plan) : undefined;
  r.watch(batchList);
  const run = r.run;
  const { posted, completed } = run;
  const iters = plan.iters;
  const batch = r.batch;
  const reap = (n: number): boolean => {
    for (let i = 0; i < n; i++) {
      r.check(batch, i, 'work request');
      let fill = plan.cqMod;
      if (!r.duration && run.ccnt + fill > iters) fill = iters - run.ccnt;
      run.ccnt += fill;
      if (completed) completed[run.ccnt - 1] = r.stamp();
      if (r.sampling) run.sampleIters += fill;
    }
    if (n > 0) r.activity();
    return true;
  };
  r.startClock();
  run.first = r.stamp();
  try {
    await drive(() => {
      if (!(run.scnt < iters || run.ccnt < iters || (r.duration && !r.ended))) return false;
      r.spin();
      while ((run.scnt < iters || r.duration) && run.scnt + list <= plan.txDepth + run.ccnt) {
        if (r.duration && r.ended) break;
        if (posted) posted[run.scnt] = r.stamp();
        if (batchList) batchList.post();
        else if ((run.scnt + 1) % plan.cqMod === 0 || (!r.duration && run.scnt + 1 === iters)) single!.signaled.post();
        else single!.quiet.post();
        run.scnt += list;
      }
      if (run.ccnt >= run.scnt) return true;
      // With the send queue full there is nothing to do but wait: spin natively (or sleep, with -e).
      const full = run.scnt + list > plan.txDepth + run.ccnt;
      const n = res.sendCq.poll(batch, full && !plan.events ? SPIN : NO_SPIN).count;
      return n === 0 && full && plan.events ? after(r.waitPoll(res.sendCq), reap) : reap(n);
    });
    if (r.duration) await drain(r, res, plan, run.scnt - run.ccnt);
  } finally {
    batchList?.close();
    single?.quiet.close();
    single?.signaled.close();
  }
}

/** As the C core: after a timed run, one more signaled request completes after everything in flight. */
async function drain(r: Runner, res: Resources, plan: LoopPlan, inFlight: number): Promise<void> {
  if (inFlight <= 0) return;
  const last = res.qp.prepareSend([{ ...sendRequest(res, plan, true), wrId: 1n }]);
  try {
    last.post();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const batch = res.sendCq.poll(r.batch);
      for (let i = 0; i < batch.count; i++) {
        r.check(batch, i, 'work request');
        if (batch.wrId(i) === 1n) return;
      }
    }
  } finally {
    last.close();
  }
}

async function bwRecv(r: Runner, res: Resources, plan: LoopPlan): Promise<void> {
  const run = r.run;
  const batch = r.batch;
  let lastRx = 0;
  const received = (n: number): boolean => {
    if (n > 0) {
      if (run.rcnt === 0) {
        run.first = r.stamp();
        r.startClock();
      }
      for (let i = 0; i < n; i++) {
        r.check(batch, i, 'receive');
        run.rcnt++;
        if (r.sampling) run.sampleIters++;
      }
      r.activity();
      if (plan.idleMs) lastRx = r.stamp();
      return true;
    }
    return !(plan.idleMs && run.rcnt > 0 && r.stamp() - lastRx > plan.idleMs * 1e6);
  };
  await drive(() => {
    if (!(run.rcnt < plan.iters || (r.duration && !r.ended))) return false;
    r.spin();
    // The ring (res.ring) reposts the receives polled here at the next poll.
    return plan.events ? after(r.waitPoll(res.recvCq), received) : received(res.recvCq.poll(batch, SPIN).count);
  });
}

const loops = {
  [Loop.LatSend]: latSend,
  [Loop.LatWrite]: latWrite,
  [Loop.LatRoundTrip]: latRoundTrip,
  [Loop.BwPost]: bwPost,
  [Loop.BwRecv]: bwRecv,
};

/** Milliseconds of garbage collection from now until the returned function is awaited. */
function gcTime(): () => Promise<number> {
  let ms = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) ms += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  return async () => {
    await new Promise((resolve) => setTimeout(resolve, 20)); // entries arrive on the event loop
    observer.disconnect();
    return ms;
  };
}

export const runInTs: LoopDriver = async (res, plan, progress) => {
  if (plan.events) {
    res.sendCq.requestNotify();
    res.recvCq.requestNotify();
  }
  const runner = new Runner(plan, progress);
  runner.watch(res.qp, res.sendCq, res.recvCq, res.mr, res.ring);
  const gc = plan.countCalls ? gcTime() : undefined;
  try {
    await loops[plan.loop](runner, res, plan);
  } finally {
    runner.stop();
  }
  if (gc) runner.run.gcMs = await gc();
  runner.run.last = runner.stamp();
  return runner.run;
};
