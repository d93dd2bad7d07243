/**
 * Costs measured in one process on one device in the same run: what the promise endpoints cost against
 * the raw verbs a fast TypeScript loop would use for the same exchange (a 2-byte send/receive round trip,
 * a 2-byte RDMA write until its completion), and where a TypeScript loop's time goes against the C core's
 * loop on the very same QP (inside its one native call per operation, or outside it in JavaScript).
 */
import { performance } from 'node:perf_hooks';

import { connect, listen } from '../endpoint/endpoint';
import { createLoopbackPair } from '../endpoint/loopback';
import { CompletionBatch } from '../verbs/completion';
import { Access, WcOpcode, WrOpcode } from '../verbs/constants';
import type { CompletionQueue } from '../verbs/cq';
import { openDevice } from '../verbs/device';
import { native } from '../native';

export interface EndpointCost {
  label: string;
  endpointUsec: number;
  rawUsec: number;
}

/** RDMA reads on one QP: the C core's loop against a TypeScript loop of one postAndPoll per read. */
export interface LoopSplit {
  cCoreUsec: number;
  typeScriptUsec: number;
  /** Of typeScriptUsec: the median time between native calls, i.e. the JavaScript of the loop. */
  outsideUsec: number;
}

const PORT = 18517;
const WARM_UP = 100;
const SPIN_US = 1000;

/** Microseconds per iteration of `step`, after a warm-up. */
async function perIteration(iterations: number, step: () => Promise<void> | void): Promise<number> {
  for (let i = 0; i < WARM_UP; i++) await step();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await step();
  return ((performance.now() - start) * 1000) / iterations;
}

/** Polls `cq` (spinning natively) until a receive completion; send completions met on the way are reaped. */
function receiveOn(cq: CompletionQueue, batch: CompletionBatch): void {
  for (;;) {
    cq.poll(batch, { spinUs: SPIN_US });
    for (let i = 0; i < batch.count; i++) {
      if (batch.status(i) !== 0) throw new Error(`completion failed with status ${batch.status(i)}`);
      if (batch.opcode(i) === WcOpcode.RECV) return;
    }
  }
}

async function rawCosts(device: string | undefined, iterations: number): Promise<{ sendRoundTrip: number; write: number }> {
  using context = openDevice(device);
  using pair = createLoopbackPair(context, { maxSendWr: 16, maxRecvWr: 16 });
  const { pd, cqs, qps } = pair;
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
  const [a, b] = [pd.registerMemory(Buffer.alloc(64), access), pd.registerMemory(Buffer.alloc(64), access)];
  const ring = (mr: typeof a): Array<{ sgList: Array<{ mr: typeof a; offset: number; length: number }> }> => Array.from({ length: 4 }, () => ({ sgList: [{ mr, offset: 32, length: 32 }] }));
  qps[0].createReceiveRing(ring(a));
  qps[1].createReceiveRing(ring(b));
  const aSend = qps[0].prepareSend([{ opcode: WrOpcode.SEND, sgList: [{ mr: a, length: 2 }] }]);
  const bSend = qps[1].prepareSend([{ opcode: WrOpcode.SEND, sgList: [{ mr: b, length: 2 }] }]);
  const write = qps[0].prepareSend([{ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: a, length: 2 }], remote: b.remote(0, 2) }]);
  const batch = new CompletionBatch(4);
  const sendRoundTrip = await perIteration(iterations, () => {
    aSend.post();
    receiveOn(cqs[1], batch);
    bSend.post();
    receiveOn(cqs[0], batch);
  });
  // The sends' own completions left in the CQs are not this measurement's: drain them before the writes.
  while (cqs[0].poll(batch, { spinUs: 20_000 }).count > 0);
  const writeCost = await perIteration(iterations, () => {
    if (write.postAndPoll(cqs[0], batch, SPIN_US).count === 0) while (cqs[0].poll(batch, { spinUs: SPIN_US }).count === 0);
  });
  return { sendRoundTrip, write: writeCost };
}

const median = (values: Float64Array): number => values.sort()[values.length >> 1]!;

/** Median usec per read: the C core's read_lat loop and a TypeScript loop on the same QP, same process. */
export function loopSplit(device: string | undefined, iterations = 3000): LoopSplit {
  using context = openDevice(device);
  using pair = createLoopbackPair(context);
  const { pd, cqs, qps } = pair;
  const access = Access.LOCAL_WRITE | Access.REMOTE_READ;
  const [a, b] = [pd.registerMemory(Buffer.alloc(64), access), pd.registerMemory(Buffer.alloc(64), access)];
  const c = native.benchRun({
    loop: 2, initiator: true, qps: [qps[0].handle], sendCq: cqs[0].handle, recvCq: cqs[0].handle, iters: iterations, durationMs: 0,
    marginMs: 0, txDepth: 1, rxDepth: 1, cqMod: 1, postList: 1, rxPosted: 0, events: false, record: false, stallMs: 10_000, idleMs: 0,
    send: { opcode: WrOpcode.RDMA_READ, local: { mr: a.handle, offset: 0, length: 2 }, sendFlags: 0, remotes: [b.remote(0, 2)] },
  });
  const cCore = new Float64Array(iterations - 1).map((_, i) => (c.posted![i + 1]! - c.posted![i]!) / c.ticksPerUsec);
  const read = qps[0].prepareSend([{ opcode: WrOpcode.RDMA_READ, sgList: [{ mr: a, length: 2 }], remote: b.remote(0, 2) }]);
  const batch = new CompletionBatch(1);
  const total = new Float64Array(iterations);
  const outside = new Float64Array(iterations);
  let last = performance.now();
  for (let i = 0; i < iterations; i++) {
    const before = performance.now();
    if (read.postAndPoll(cqs[0], batch, SPIN_US).count === 0) while (cqs[0].poll(batch, { spinUs: SPIN_US }).count === 0);
    const now = performance.now();
    outside[i] = (before - last) * 1000;
    total[i] = (now - last) * 1000;
    last = now;
  }
  return { cCoreUsec: median(cCore), typeScriptUsec: median(total), outsideUsec: median(outside) };
}

async function endpointCostsOf(host: string, iterations: number): Promise<{ sendRoundTrip: number; write: number }> {
  using listener = await listen(host, PORT);
  const [a, b] = await Promise.all([connect(host, PORT), listener.accept()]);
  try {
    const message = Buffer.from('hi');
    const sendRoundTrip = await perIteration(iterations, async () => {
      const there = b.receive();
      await a.send(message);
      const got = await there;
      const back = a.receive();
      await b.send(got);
      await back;
    });
    const local = a.registerMemory(Buffer.alloc(2));
    const target = b.registerMemory(Buffer.alloc(2));
    const write = await perIteration(iterations, () => a.write(local, target.remote()));
    local.close();
    target.close();
    return { sendRoundTrip, write };
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

/** Endpoint against raw verbs, same device, same run; each row is microseconds per operation. */
export async function endpointCosts(host: string, iterations = 1000): Promise<EndpointCost[]> {
  const raw = await rawCosts(process.env.RDMA_NODE_DEVICE, iterations);
  const endpoint = await endpointCostsOf(host, iterations);
  return [
    { label: 'send()/receive() round trip, 2 B', endpointUsec: endpoint.sendRoundTrip, rawUsec: raw.sendRoundTrip },
    { label: 'write(), 2 B, until its completion', endpointUsec: endpoint.write, rawUsec: raw.write },
  ];
}
