import assert from 'node:assert/strict';
import { test } from 'node:test';

import { QpState, WrOpcode, type MemoryRegion, type QueuePair, type RemoteRegion, type SendWorkRequest } from '../../lib';
import { native } from '../../lib/native';
import { pollCompletions } from '../support/memory';
import { pair, random, remoteAccess } from '../support/fixture';

// A queue holds what its requests name (MRs, AHs, MWs) only while they are outstanding.
const inFlight = (qp: QueuePair) => native.testing.inFlight(qp.handle);

const write = (wrId: number, source: MemoryRegion, target: RemoteRegion, signaled: boolean): SendWorkRequest => ({
  wrId,
  opcode: WrOpcode.RDMA_WRITE,
  signaled,
  sgList: [{ mr: source, length: 64 }],
  remote: target,
});

test('200 000 writes, each from a fresh cached region closed after its completion: what the QP holds stays bounded', () => {
  using t = pair({ maxSendWr: 64 });
  const loop = t.pair;
  using cache = loop.pd.createRegistrationCache({ strategy: 'monitor' });
  const source = random(4096);
  const target = loop.pd.registerMemory(Buffer.alloc(4096), remoteAccess).remote();
  const BATCH = 50;
  const heap: number[] = [];
  for (let sent = 0; sent < 200_000; sent += BATCH) {
    const regions = Array.from({ length: BATCH }, () => cache.register(source, remoteAccess));
    // Every tenth write signaled: a completion also ends the unsignaled writes before it.
    loop.qps[0].postSend(regions.map((region, i) => write(i, region, target, i % 10 === 9)));
    assert.ok(inFlight(loop.qps[0]).objects <= BATCH);
    pollCompletions(loop, BATCH / 10);
    assert.deepEqual(inFlight(loop.qps[0]), { requests: 0, objects: 0 }, `after ${sent + BATCH} writes`);
    for (const region of regions) region.close();
    if (sent % 40_000 === 0) {
      global.gc!();
      heap.push(process.memoryUsage().heapUsed);
    }
  }
  assert.equal(cache.stats().hits, 200_000 - 1);
  const growth = heap.at(-1)! - heap[1]!;
  assert.ok(growth < 8 << 20, `the heap grew by ${growth} bytes over 160 000 writes`);
});

test('unsignaled writes are held until a later signaled one completes; an error completion lets go of everything', () => {
  using t = pair();
  const loop = t.pair;
  const source = loop.pd.registerMemory(random(4096), remoteAccess);
  const sources = [0, 1, 2].map(() => loop.pd.registerMemory(random(4096), remoteAccess));
  const target = loop.pd.registerMemory(Buffer.alloc(4096), remoteAccess).remote();

  loop.qps[0].postSend(sources.map((mr, i) => write(i, mr, target, false)));
  assert.deepEqual(inFlight(loop.qps[0]), { requests: 3, objects: 3 });
  loop.qps[0].postSend([write(3, source, target, true)]);
  assert.deepEqual(inFlight(loop.qps[0]), { requests: 4, objects: 4 });
  pollCompletions(loop, 1);
  assert.deepEqual(inFlight(loop.qps[0]), { requests: 0, objects: 0 });

  // A write to a key that does not exist fails remotely; the QP goes to the error state and the two
  // requests behind it are flushed.
  loop.qps[0].postSend([write(0, source, { ...target, rkey: target.rkey ^ 0xff }, true), write(1, sources[0]!, target, true), write(2, sources[1]!, target, true)]);
  assert.deepEqual(inFlight(loop.qps[0]), { requests: 3, objects: 3 });
  const statuses = pollCompletions(loop, 3);
  assert.equal(statuses[0], 'REM_ACCESS_ERR');
  assert.deepEqual(statuses.slice(1), ['WR_FLUSH_ERR', 'WR_FLUSH_ERR']);
  assert.deepEqual(inFlight(loop.qps[0]), { requests: 0, objects: 0 });
});

test('receives are held one per completion; prepared receives are counted but hold nothing of the queue', () => {
  using t = pair();
  const loop = t.pair;
  const inbox = loop.pd.registerMemory(Buffer.alloc(4096), remoteAccess);
  const outbox = loop.pd.registerMemory(random(4096), remoteAccess);
  loop.qps[1].postRecv([0, 1, 2, 3].map((wrId) => ({ wrId, sgList: [{ mr: inbox, offset: wrId * 1024, length: 1024 }] })));
  assert.deepEqual(inFlight(loop.qps[1]), { requests: 4, objects: 1 });
  using prepared = loop.qps[1].prepareRecv([{ wrId: 9, sgList: [{ mr: inbox, length: 1024 }] }]);
  prepared.post();
  assert.deepEqual(inFlight(loop.qps[1]), { requests: 5, objects: 1 });

  loop.qps[0].postSend([0, 1].map((wrId) => ({ wrId, opcode: WrOpcode.SEND, sgList: [{ mr: outbox, length: 16 }] })));
  pollCompletions(loop, 2);
  const received = pollCompletions({ ...loop, cqs: [loop.cqs[1], loop.cqs[0]] }, 2);
  assert.deepEqual(received.slice(0, 2), ['SUCCESS', 'SUCCESS']);
  assert.deepEqual(inFlight(loop.qps[1]), { requests: 3, objects: 1 });
  loop.qps[1].modify({ qpState: QpState.RESET });
  assert.deepEqual(inFlight(loop.qps[1]), { requests: 0, objects: 0 });
});
