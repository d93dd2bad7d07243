/**
 * The QP-count sweep of BENCHMARKS.md: N RC connections inside one process (N client QPs, each connected
 * to its own server QP on the same device), how long creating and connecting them takes, what they cost
 * in memory (process RSS and kernel slab + vmalloc, per QP), and the aggregate 64 B RDMA write rate of
 * the C core driving all N client QPs at once.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { Access, QpType, WrOpcode } from '../verbs/constants';
import type { Context } from '../verbs/context';
import type { QueuePair } from '../verbs/qp/qp';
import { native } from '../native';
import { Loop } from './loops';

export interface ScalePoint {
  /** Connections (client QP + server QP each). */
  connections: number;
  qps: number;
  createUsPerQp: number;
  connectUsPerQp: number;
  rssKiBPerQp: number;
  kernelKiBPerQp: number;
  /** Aggregate message rate (millions of 64 B writes per second), or undefined if the run failed. */
  msgRate?: number;
  messages: number;
  failure?: string;
}

/** /proc/meminfo and /proc/self/status values in KiB. */
function memory(): { rss: number; kernel: number } {
  const field = (text: string, name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const status = readFileSync('/proc/self/status', 'utf8');
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  return { rss: field(status, 'VmRSS'), kernel: field(meminfo, 'Slab') + field(meminfo, 'VmallocUsed') };
}

// A full collection before each reading keeps dead JS objects of earlier points out of the RSS deltas.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MESSAGE = 64;
const TARGET_MESSAGES = 20_000;

export function scalePoint(context: Context, connections: number, gidIndex: number, stallMs = 20_000): ScalePoint {
  const depth = Math.max(2, Math.ceil(128 / connections));
  const pd = context.allocPd();
  const clientCq = context.createCq(connections * (depth + 1));
  const serverCq = context.createCq(connections + 1);
  try {
    const buffer = pd.registerMemory(Buffer.alloc(2 * MESSAGE), Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    gc();
    const before = memory();
    const started = process.hrtime.bigint();
    const caps = { maxSendWr: depth + 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 };
    const clients: QueuePair[] = [];
    const servers: QueuePair[] = [];
    for (let i = 0; i < connections; i++) {
      clients.push(pd.createQp({ sendCq: clientCq, qpType: QpType.RC, ...caps }));
      servers.push(pd.createQp({ sendCq: serverCq, qpType: QpType.RC, ...caps }));
    }
    const created = process.hrtime.bigint();
    for (let i = 0; i < connections; i++) {
      const [c, s] = [clients[i]!, servers[i]!];
      const ce = c.address({ gidIndex });
      c.connect(s.address({ gidIndex }), { gidIndex });
      s.connect(ce, { gidIndex });
    }
    const connected = process.hrtime.bigint();
    gc();
    const after = memory();
    const qps = 2 * connections;
    const point: ScalePoint = {
      connections,
      qps,
      createUsPerQp: Number(created - started) / 1000 / qps,
      connectUsPerQp: Number(connected - created) / 1000 / qps,
      rssKiBPerQp: (after.rss - before.rss) / qps,
      kernelKiBPerQp: (after.kernel - before.kernel) / qps,
      messages: 0,
    };
    const iters = Math.max(depth * 2, Math.ceil(TARGET_MESSAGES / connections));
    try {
      const run = native.benchRun({
        loop: Loop.BwPost,
        qps: clients.map((qp) => qp.handle),
        sendCq: clientCq.handle,
        recvCq: clientCq.handle,
        send: {
          opcode: WrOpcode.RDMA_WRITE,
          local: { mr: buffer.handle, offset: 0, length: MESSAGE },
          remotes: clients.map(() => ({ addr: buffer.addr + BigInt(MESSAGE), rkey: buffer.rkey })),
        },
        iters,
        txDepth: depth,
        cqMod: depth,
        stallMs,
      });
      point.messages = run.ccnt;
      point.msgRate = run.ccnt / ((run.last - run.first) / run.ticksPerUsec);
    } catch (error) {
      point.failure = (error as Error).message;
    }
    return point;
  } finally {
    pd.close();
    clientCq.close();
    serverCq.close();
  }
}

/** 1, 2, 4, ... up to `max` connections. */
export function sweepCounts(max: number): number[] {
  const counts: number[] = [];
  for (let n = 1; n <= max; n *= 2) counts.push(n);
  return counts;
}
