import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';

import { AsyncEventType, CompletionBatch, RdmaError, WcStatus, WrOpcode, type AsyncEvent } from '../../lib';
import { TIMEOUT, open, pair, random } from '../support/fixture';

test('create, resize and destroy a CQ', () => {
  using context = open();
  const cq = context.createCq(10);
  assert.ok(cq.cqe >= 10);
  assert.ok(cq.resize(100) >= 100);
  assert.ok(cq.cqe >= 100);
  assert.throws(() => context.createCq(1 << 30), (e: RdmaError) => e instanceof RdmaError && e.verb === 'ibv_create_cq');
  cq.close();
  cq.close();
  assert.throws(() => cq.poll(), TypeError);
});

test('poll writes into reusable storage; the object form matches it', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const mr = pd.registerMemory(random(8));
  const target = pd.registerMemory(Buffer.alloc(8 * 5));
  qps[1].postRecv(Array.from({ length: 5 }, (_, i) => ({ wrId: i, sgList: [{ mr: target, offset: i * 8, length: 8 }] })));
  qps[0].postSend(Array.from({ length: 5 }, (_, i) => ({ wrId: 10 + i, opcode: WrOpcode.SEND, sgList: [{ mr }] })));
  await cqs[0].take(5, TIMEOUT);
  const batch = new CompletionBatch(2);
  const seen: bigint[] = [];
  while (seen.length < 5) {
    await cqs[1].wait(TIMEOUT, batch);
    assert.ok(batch.count <= 2, 'never more than the storage holds');
    for (let i = 0; i < batch.count; i++) {
      assert.equal(batch.status(i), WcStatus.SUCCESS);
      assert.equal(batch.byteLen(i), 8);
      assert.deepEqual(batch.get(i).wrId, batch.wrId(i));
      seen.push(batch.wrId(i));
    }
  }
  assert.deepEqual(seen, [0n, 1n, 2n, 3n, 4n]);
  assert.throws(() => batch.get(batch.count), RangeError);
});

test('wait() sleeps until a completion arrives and the async iterator yields them', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const mr = pd.registerMemory(random(16));
  const target = pd.registerMemory(Buffer.alloc(16 * 3));
  qps[1].postRecv(Array.from({ length: 3 }, (_, i) => ({ wrId: i, sgList: [{ mr: target, offset: 16 * i, length: 16 }] })));
  const waiting = cqs[1].wait(TIMEOUT);
  setTimeout(() => qps[0].postSend({ wrId: 9, opcode: WrOpcode.SEND, sgList: [{ mr }] }), 200);
  assert.equal((await waiting).get(0).wrId, 0n);
  qps[0].postSend([1, 2].map((i) => ({ wrId: i, opcode: WrOpcode.SEND, sgList: [{ mr }] })));
  const ids: bigint[] = [];
  for await (const completion of cqs[1]) {
    ids.push(completion.wrId);
    if (ids.length === 2) break;
  }
  assert.deepEqual(ids, [1n, 2n]);
});

test('wait() times out, honours AbortSignal, and closing the CQ rejects a pending wait', async () => {
  using context = open();
  const cq = context.createCq(4, { channel: true });
  await assert.rejects(cq.wait({ timeoutMs: 100 }), (e: RdmaError) => e.code === 'ETIMEDOUT');
  const controller = new AbortController();
  const aborted = cq.wait({ signal: controller.signal });
  controller.abort();
  await assert.rejects(aborted, { name: 'AbortError' });
  const pending = cq.wait();
  setImmediate(() => cq.close());
  await assert.rejects(pending, (e: RdmaError) => e instanceof RdmaError && e.code === 'ECANCELED');
  await assert.rejects(context.createCq(4).wait(), /no completion channel/);
});

test('a closed context settles the waits of its CQs', async () => {
  const context = open();
  const cq = context.createCq(4, { channel: true });
  const pending = cq.wait();
  setImmediate(() => context.close());
  await assert.rejects(pending, (e: RdmaError) => e.code === 'ECANCELED');
});

test('CQ overflow is reported as a CQ error event', async () => {
  using t = pair({ cqe: 4, maxSendWr: 32 });
  const { pd, cqs, qps } = t.pair;
  const events: AsyncEvent[] = [];
  t.context.on('event', (e: AsyncEvent) => events.push(e));
  const mr = pd.registerMemory(random(8));
  const remote = pd.registerMemory(Buffer.alloc(8), 0x7);
  const capacity = cqs[0].cqe;
  qps[0].postSend(Array.from({ length: capacity + 4 }, (_, i) => ({ wrId: i, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr }], remote: remote.remote() })));
  const deadline = Date.now() + 20_000;
  while (!events.some((e) => e.type === AsyncEventType.CQ_ERR) && Date.now() < deadline) {
    await Promise.race([once(t.context, 'event'), new Promise((r) => setTimeout(r, 200))]);
  }
  const error = events.find((e) => e.type === AsyncEventType.CQ_ERR);
  assert.ok(error, `CQ_ERR after overflowing ${capacity} entries (events: ${events.map((e) => e.typeName).join(', ') || 'none'})`);
  assert.equal(error.cq, cqs[0]);
});
