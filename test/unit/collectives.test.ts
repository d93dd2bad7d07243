import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FIELDS, OpKind, type Plan, Region } from '../../lib/collectives/plan';
import * as schedules from '../../lib/collectives/schedules';

// Every algorithm's plans for 1 to 9 ranks, run against a simulation of all ranks (per-pair FIFO
// messages, steps as the C engine runs them): the results are checked element by element, message
// lengths must match on both sides, nothing may deadlock, and no receive may write what the same step sends.

type Reduce = (out: Int32Array, input: Int32Array) => void;
const sum: Reduce = (out, input) => {
  for (let i = 0; i < out.length; i++) out[i] = (out[i]! + input[i]!) | 0;
};

function simulate(plans: Plan[], inputs: (Uint8Array | undefined)[]): Uint8Array[] {
  const size = plans.length;
  const areas = plans.map((p, r) => {
    const a = [new Uint8Array(p.srcBytes), new Uint8Array(p.dstBytes), new Uint8Array(p.tmpBytes)];
    if (inputs[r]) a[p.inputRegion]!.set(inputs[r]!, p.inputOffset);
    return a;
  });
  const steps = plans.map((p) => {
    const out: number[][][] = [[]];
    for (let i = 0; i < p.ops.length; i += FIELDS) {
      const op = Array.from(p.ops.subarray(i, i + FIELDS));
      if (op[0] === OpKind.StepEnd) out.push([]);
      else out.at(-1)!.push(op);
    }
    return out;
  });
  const queues = new Map<string, Uint8Array[]>();
  const queue = (from: number, to: number): Uint8Array[] => {
    const key = `${from}>${to}`;
    if (!queues.has(key)) queues.set(key, []);
    return queues.get(key)!;
  };
  const at = (r: number, region: number, off: number, len: number): Uint8Array => areas[r]![region]!.subarray(off, off + len);
  const state = plans.map(() => ({ step: 0, started: false, recvs: [] as number[][] }));
  for (let rounds = 0; ; rounds++) {
    assert.ok(rounds < 100_000, 'the simulation does not end');
    let progressed = false;
    let finished = 0;
    for (let r = 0; r < size; r++) {
      const s = state[r]!;
      if (s.step >= steps[r]!.length) {
        finished++;
        continue;
      }
      const ops = steps[r]![s.step]!;
      if (!s.started) {
        s.started = true;
        progressed = true;
        for (const [kind, , region, off, len, region2, off2] of ops as [number, number, number, number, number, number, number][]) {
          if (kind === OpKind.Copy) at(r, region, off, len).set(at(r, region2, off2, len).slice());
          if (kind === OpKind.Reduce) {
            const out = new Int32Array(areas[r]![region]!.buffer, off, len / 4);
            sum(out, new Int32Array(at(r, region2, off2, len).slice().buffer));
          }
        }
        const sends = ops.filter((o) => o[0] === OpKind.Send);
        s.recvs = ops.filter((o) => o[0] === OpKind.Recv || o[0] === OpKind.RecvReduce);
        for (const [, peer, region, off, len] of sends as number[][]) queue(r, peer!).push(at(r, region!, off!, len!).slice());
        for (const [, , region, off, len] of s.recvs) {
          for (const [, , sregion, soff, slen] of sends) {
            const overlap = region === sregion && off! < soff! + slen! && soff! < off! + len!;
            assert.ok(!overlap || len === 0 || slen === 0, `rank ${r} step ${s.step}: a receive overwrites what the step sends`);
          }
        }
      }
      for (let i = 0; i < s.recvs.length; ) {
        const [kind, peer, region, off, len] = s.recvs[i]!;
        // Per peer, in order: only the first pending receive from a peer may take its next message.
        if (s.recvs.slice(0, i).some((o) => o[1] === peer)) {
          i++;
          continue;
        }
        const message = queue(peer!, r).shift();
        if (message === undefined) {
          i++;
          continue;
        }
        assert.equal(message.length, len, `rank ${r} expected ${len} bytes from ${peer}, got ${message.length}`);
        if (kind === OpKind.Recv) at(r, region!, off!, len!).set(message);
        else sum(new Int32Array(areas[r]![region!]!.buffer, off!, len! / 4), new Int32Array(message.slice().buffer));
        s.recvs.splice(i, 1);
        progressed = true;
      }
      if (s.recvs.length === 0) {
        s.step++;
        s.started = false;
        progressed = true;
      }
    }
    if (finished === size) break;
    assert.ok(progressed, `deadlock: ${JSON.stringify(state.map((s) => s.step))}`);
  }
  for (const [key, q] of queues) assert.equal(q.length, 0, `messages left unreceived ${key}`);
  return plans.map((p, r) => at(r, p.outputRegion, p.outputOffset, p.outputRegion === Region.Dst ? p.dstBytes - p.outputOffset : 0).slice());
}

const ints = (rank: number, count: number, salt = 1): Int32Array => Int32Array.from({ length: count }, (_, i) => (rank + 1) * 1000 * salt + i * 7 - rank * i);
const bytesOf = (a: Int32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const small: schedules.Thresholds = { broadcast: 64, broadcastRanks: 3, allreduce: 64, reduce: 64, allgather: 64, alltoall: 16 };
const sizes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
const counts = [0, 1, 3, 17, 100];

test('barrier: dissemination for 1 to 9 ranks ends on every rank', () => {
  for (const n of sizes) simulate(Array.from({ length: n }, (_, r) => schedules.barrier(r, n)), []);
});

for (const [name, t] of [['small-message', schedules.defaultThresholds], ['large-message', small]] as const) {
  test(`${name} algorithms compute every collective exactly for 1 to 9 ranks and every root`, () => {
    for (const n of sizes) {
      const ranks = Array.from({ length: n }, (_, r) => r);
      for (const count of counts) {
        const inputs = ranks.map((r) => ints(r, count));
        const total = new Int32Array(count);
        for (const a of inputs) sum(total, a);
        const allreduce = simulate(ranks.map((r) => schedules.allreduce(r, n, count, 4, t)), inputs.map(bytesOf));
        for (const out of allreduce) assert.deepEqual(new Int32Array(out.slice().buffer), total, `allreduce n=${n} count=${count}`);
        for (const root of new Set([0, n - 1, Math.floor(n / 2)])) {
          const bcast = simulate(ranks.map((r) => schedules.broadcast(r, n, root, count * 4, t)), ranks.map((r) => (r === root ? bytesOf(inputs[root]!) : undefined)));
          for (const out of bcast) assert.deepEqual(out, bytesOf(inputs[root]!), `broadcast n=${n} count=${count} root=${root}`);
          const reduced = simulate(ranks.map((r) => schedules.reduce(r, n, root, count, 4, t)), inputs.map(bytesOf));
          assert.deepEqual(new Int32Array(reduced[root]!.slice().buffer), total, `reduce n=${n} count=${count} root=${root}`);
        }
        const gathered = simulate(ranks.map((r) => schedules.allgather(r, n, count * 4, t)), inputs.map(bytesOf));
        const expected = Buffer.concat(inputs.map((a) => bytesOf(a)));
        for (const out of gathered) assert.deepEqual(Buffer.from(out), expected, `allgather n=${n} count=${count}`);
        const blocks = ranks.map((r) => ints(r, count * n, 3));
        const blockTotal = new Int32Array(count * n);
        for (const a of blocks) sum(blockTotal, a);
        const scattered = simulate(ranks.map((r) => schedules.reduceScatter(r, n, count, 4)), blocks.map(bytesOf));
        scattered.forEach((out, r) => assert.deepEqual(new Int32Array(out.slice().buffer), blockTotal.slice(r * count, (r + 1) * count), `reduceScatter n=${n} count=${count}`));
        const exchanged = simulate(ranks.map((r) => schedules.alltoall(r, n, count * 4, t)), blocks.map((b) => bytesOf(b.slice(0, count * n))));
        exchanged.forEach((out, r) => {
          const want = Buffer.concat(ranks.map((q) => bytesOf(blocks[q]!.slice(r * count, (r + 1) * count))));
          assert.deepEqual(Buffer.from(out), want, `alltoall n=${n} count=${count} rank=${r}`);
        });
      }
    }
  });
}
