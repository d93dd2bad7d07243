/**
 * The calls that make a TypeScript loop cheap: polls that spin natively, a post fused with the poll of
 * its completion, receive rings reposted by the CQ, and waits that spin before sleeping. Each is checked
 * for what arrives: no completion lost or seen twice when spinning and sleeping alternate, and aborts
 * that leave the CQ usable. And registration-cache hits, which make no native object.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { CachedMemoryRegion, CompletionBatch, CrossingCounter, RdmaError, WcStatus, WrOpcode, allocate } from '../../lib';
import { TIMEOUT, open, pair, random, remoteAccess } from '../support/fixture';

test('poll with spinUs returns a completion that comes during the spin, and 0 after it on an idle CQ', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const target = pd.registerMemory(Buffer.alloc(64), remoteAccess);
  const batch = new CompletionBatch(4);
  assert.equal(cqs[0].poll(batch, { spinUs: 2000 }).count, 0);
  for (let round = 0; round < 20; round++) {
    qps[0].postSend({ wrId: round, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
    // One call: the write's completion arrives while the native poll spins (10 s is only the bound).
    assert.equal(cqs[0].poll(batch, { spinUs: 10_000_000 }).count, 1);
    assert.equal(batch.status(0), WcStatus.SUCCESS);
    assert.equal(batch.wrId(0), BigInt(round));
  }
  assert.deepEqual(target.bytes, source.bytes);
  assert.throws(() => cqs[0].poll(batch, { spinUs: -1 }), RangeError);
  assert.throws(() => cqs[0].poll(batch, { spinUs: 'long' as unknown as number }), TypeError);
  assert.throws(() => cqs[0].poll(batch, { spinUs: 20_000_000 }), RangeError);
});

test('postAndPoll posts a prepared request and returns its completion in the same call', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(256));
  const target = pd.registerMemory(Buffer.alloc(256), remoteAccess);
  const batch = new CompletionBatch(1);
  const write = qps[0].prepareSend([{ wrId: 7, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() }]);
  const read = qps[0].prepareSend([{ wrId: 8, opcode: WrOpcode.RDMA_READ, sgList: [{ mr: source }], remote: target.remote() }]);
  for (let round = 0; round < 20; round++) {
    source.bytes.fill(round);
    assert.equal(write.postAndPoll(cqs[0], batch, 10_000_000).count, 1);
    assert.deepEqual([batch.wrId(0), batch.status(0)], [7n, WcStatus.SUCCESS]);
    assert.ok(target.bytes.every((b) => b === round));
    target.bytes.fill(round + 100);
    assert.equal(read.postAndPoll(cqs[0], batch, 10_000_000).count, 1);
    assert.deepEqual([batch.wrId(0), batch.status(0)], [8n, WcStatus.SUCCESS]);
    assert.ok(source.bytes.every((b) => b === round + 100));
  }
  // Without a spin it polls once: the completion is then left for the next poll.
  write.postAndPoll(cqs[0], batch);
  assert.equal((await cqs[0].take(batch.count === 0 ? 1 : 0, TIMEOUT)).length + batch.count, 1);
  const receives = qps[1].prepareRecv([{ sgList: [{ mr: target }] }]);
  assert.throws(() => receives.postAndPoll(cqs[1], batch), /posts prepared sends/);
  assert.throws(() => write.postAndPoll(qps[0] as never, batch), /must be a CompletionQueue/);
  assert.throws(() => write.postAndPoll(cqs[0], new Float64Array(16) as never), /Uint32Array/);
  write.close();
  assert.throws(() => write.postAndPoll(cqs[0], batch), /closed/);
});

test('a receive ring reposts what a poll returned at the next poll, in order, and owns the receive queue', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const slots = pd.registerMemory(Buffer.alloc(4 * 8));
  const ring = qps[1].createReceiveRing([0, 1, 2, 3].map((i) => ({ wrId: i, sgList: [{ mr: slots, offset: i * 8, length: 8 }] })));
  const message = pd.registerMemory(Buffer.alloc(8));
  const batch = new CompletionBatch(4);
  let sequence = 0;
  for (let round = 0; round < 10; round++) {
    // Four sends fill the four receives; the ring has reposted the last round's at this side's last poll.
    for (let i = 0; i < 4; i++) {
      message.bytes.set(Buffer.from(`msg ${String(sequence++).padStart(3, '0')}`));
      qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: message }] });
      await cqs[0].take(1, TIMEOUT);
    }
    const ids: bigint[] = [];
    while (ids.length < 4) {
      const polled = cqs[1].poll(batch, { spinUs: 1_000_000 });
      for (let i = 0; i < polled.count; i++) {
        assert.equal(polled.status(i), WcStatus.SUCCESS);
        ids.push(polled.wrId(i));
      }
    }
    assert.deepEqual(ids, [0n, 1n, 2n, 3n]);
    for (let i = 0; i < 4; i++) assert.equal(Buffer.from(slots.bytes.subarray(i * 8, i * 8 + 7)).toString(), `msg ${String(round * 4 + i).padStart(3, '0')}`);
    assert.equal(cqs[1].poll(batch).count, 0); // consumed: this poll reposts the four
  }
  assert.throws(() => qps[1].postRecv({ sgList: [{ mr: slots }] }), /receive ring posts its receives/);
  assert.throws(() => qps[1].createReceiveRing([{ sgList: [{ mr: slots }] }]), /receive ring/);
  assert.throws(() => ring.post(), /posts its own receives/);
  assert.throws(() => qps[0].createReceiveRing([]), RangeError);
  ring.close();
  qps[1].postRecv({ wrId: 99, sgList: [{ mr: slots }] });
  assert.equal(ring.closed, true);
});

test('spinning and sleeping in turn lose no completion and see none twice', async () => {
  using t = pair({ maxRecvWr: 16 });
  const { pd, cqs, qps } = t.pair;
  const slots = pd.registerMemory(Buffer.alloc(16 * 4));
  using ring = qps[1].createReceiveRing(Array.from({ length: 16 }, (_, i) => ({ wrId: i, sgList: [{ mr: slots, offset: i * 4, length: 4 }] })));
  const message = pd.registerMemory(Buffer.alloc(4));
  assert.equal(ring.length, 16);
  const total = 300;
  const seen: number[] = [];
  let sent = 0;
  const sender = (async () => {
    while (sent < total) {
      // At most 8 in flight beyond what the receiver has taken: the ring's 16 receives always suffice.
      if (sent - seen.length < 8) {
        qps[0].postSend({ wrId: sent, opcode: WrOpcode.SEND_WITH_IMM, immData: sent, sgList: [{ mr: message }], signaled: sent % 4 === 3 });
        sent++;
        if (sent % 4 === 0) await cqs[0].take(1, TIMEOUT);
      }
      if (Math.random() < 0.3) await sleep(Math.random() < 0.5 ? 0 : 2);
      else await new Promise(setImmediate);
    }
  })();
  const batch = new CompletionBatch(8);
  while (seen.length < total) {
    const mode = seen.length % 3;
    const spinUs = Math.floor(Math.random() * 300);
    const polled = mode === 0 ? await cqs[1].wait({ spinUs, timeoutMs: 30_000 }, batch) : mode === 1 ? await cqs[1].wait({ spinUs: 0, timeoutMs: 30_000 }, batch) : cqs[1].poll(batch, { spinUs });
    for (let i = 0; i < polled.count; i++) {
      assert.equal(polled.status(i), WcStatus.SUCCESS);
      seen.push(polled.immData(i));
    }
    if (mode === 2 && polled.count === 0) await new Promise(setImmediate);
  }
  await sender;
  assert.deepEqual(seen, Array.from({ length: total }, (_, i) => i));
  assert.equal(cqs[1].poll(batch, { spinUs: 20_000 }).count, 0, 'nothing seen twice');
});

test('an aborted or timed-out wait leaves the CQ to the other waiters and to the next wait', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const mr = pd.registerMemory(random(8));
  qps[1].postRecv([{ wrId: 1, sgList: [{ mr }] }, { wrId: 2, sgList: [{ mr }] }]);
  const controller = new AbortController();
  const aborted = cqs[1].wait({ signal: controller.signal, spinUs: 50 });
  const patient = cqs[1].wait({ spinUs: 0 }, new CompletionBatch(1));
  const timed = cqs[1].wait({ timeoutMs: 30, spinUs: 0 }, new CompletionBatch(1));
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(aborted, { name: 'AbortError' });
  await assert.rejects(timed, (e: RdmaError) => e instanceof RdmaError && e.code === 'ETIMEDOUT');
  qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr }] });
  assert.equal((await patient).wrId(0), 1n);
  await assert.rejects(cqs[1].wait({ signal: AbortSignal.abort(), spinUs: 0 }), { name: 'AbortError' });
  qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr }] });
  assert.equal((await cqs[1].wait({ ...TIMEOUT, spinUs: 0 })).wrId(0), 2n);
});

test('closing a QP closes its ring; a closed CQ refuses spinning polls', () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const ring = qps[1].createReceiveRing([{ sgList: [{ mr: pd.registerMemory(Buffer.alloc(8)) }] }]);
  qps[1].close();
  assert.equal(ring.closed, true);
  cqs[1].close();
  assert.throws(() => cqs[1].poll(new CompletionBatch(1), { spinUs: 10 }), /closed/);
});

test('a registration-cache hit is a view of its entry: one native call each way, its own range, closed once', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  using cache = pd.createRegistrationCache({ strategy: 'monitor' });
  using memory = allocate(16384);
  const whole = cache.register(memory.bytes, remoteAccess);
  assert.ok(!(whole instanceof CachedMemoryRegion) || whole.cached);
  // Hits on parts of the registered range: each a view with its own address, length and bytes.
  const part = cache.register(memory.bytes.subarray(4096, 8192), remoteAccess);
  assert.ok(part instanceof CachedMemoryRegion);
  assert.equal(part.addr, whole.addr + 4096n);
  assert.equal(part.length, 4096);
  assert.equal(part.bytes.byteOffset, memory.bytes.byteOffset + 4096);
  assert.equal(cache.stats().inUse, 1);
  // A write from the part's offset 0 sends the part's bytes; a write into the part lands in the part.
  const source = pd.registerMemory(random(64), remoteAccess);
  memory.bytes.fill(0);
  qps[0].postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: part.remote(100, 64) });
  assert.equal((await cqs[0].take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
  assert.deepEqual(new Uint8Array(memory.bytes.subarray(4196, 4260)), source.bytes);
  source.bytes.fill(0);
  qps[0].postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: part, offset: 100, length: 64 }], remote: source.remote() });
  assert.equal((await cqs[0].take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
  assert.deepEqual(source.bytes, new Uint8Array(memory.bytes.subarray(4196, 4260)));
  assert.throws(() => qps[0].postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: part, offset: 4000, length: 200 }], remote: source.remote() }), /exceeds the MR/);
  assert.throws(() => qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: part, offset: -1 }] }), RangeError);

  // register() + close() of a hit: one native call each.
  using counter = new CrossingCounter().watch(cache.handle, part.handle);
  const hit = cache.register(memory.bytes.subarray(0, 4096), remoteAccess);
  hit.close();
  hit.close();
  assert.equal(counter.count, 2);
  counter.close();
  assert.equal(hit.closed, true);
  assert.throws(() => hit.lkey, /memory region is closed/);
  assert.throws(() => qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: hit }] }), /memory region is closed/);
  assert.equal(cache.stats().inUse, 1, 'a second close() returned nothing twice');
  part.close();
  assert.equal(cache.stats().inUse, 1);
  whole.close();
  assert.equal(cache.stats().inUse, 0);
  assert.equal(cache.stats().entries, 1, 'still cached');
});

test('unmapping memory revokes the cache hits over it, in use or not; closing the cache revokes the rest', () => {
  using context = open();
  const pd = context.allocPd();
  const cache = pd.createRegistrationCache({ strategy: 'monitor' });
  const memory = allocate(8192);
  const first = cache.register(memory.bytes);
  const second = cache.register(memory.bytes.subarray(0, 4096));
  memory.close();
  assert.equal(first.closed, true);
  assert.equal(second.closed, true);
  assert.equal(cache.stats().inUse, 0);
  assert.equal(cache.stats().entries, 0);
  first.close();
  using other = allocate(4096);
  const third = cache.register(other.bytes);
  cache.close();
  assert.equal(third.closed, true);
  third.close();
});
