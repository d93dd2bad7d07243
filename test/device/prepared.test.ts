import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, QpType, WrOpcode, type Completion } from '../../lib';
import { TIMEOUT, open, pair, random, remoteAccess } from '../support/fixture';

const ok = (completions: Completion[]): Completion[] => {
  for (const c of completions) assert.equal(c.statusName, 'SUCCESS', `wr ${c.wrId}: ${c.statusName}`);
  return completions;
};

test('prepared sends: slices of one list posted again and again land where each request says', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const target = pd.registerMemory(Buffer.alloc(64), remoteAccess);
  // Four writes of 16 B, each to its own quarter of the target.
  const prepared = qps[0].prepareSend(
    [0, 1, 2, 3].map((i) => ({ wrId: i, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source, offset: i * 16, length: 16 }], remote: target.remote(i * 16, 16) })),
  );
  assert.equal(prepared.length, 4);
  prepared.post(2, 2);
  assert.deepEqual(ok(await cqs[0].take(2, TIMEOUT)).map((c) => c.wrId), [2n, 3n]);
  assert.deepEqual(target.bytes.subarray(32), source.bytes.subarray(32));
  assert.ok(target.bytes.subarray(0, 32).every((b) => b === 0), 'only the slice was posted');
  prepared.post(1);
  assert.deepEqual(ok(await cqs[0].take(3, TIMEOUT)).map((c) => c.wrId), [1n, 2n, 3n]);
  prepared.post();
  assert.deepEqual(ok(await cqs[0].take(4, TIMEOUT)).map((c) => c.wrId), [0n, 1n, 2n, 3n]);
  assert.deepEqual(target.bytes, source.bytes);
  assert.throws(() => prepared.post(3, 2), RangeError);
  assert.throws(() => prepared.post(5), RangeError);
  assert.throws(() => prepared.post(-1), RangeError);
  prepared.post(4);
  prepared.post(0, 0);
});

test('prepared receives and inline sends from an MR; bare buffers are refused for inline', async () => {
  using t = pair({ maxInlineData: 64 });
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(Buffer.from('prepared inline!'));
  const target = pd.registerMemory(Buffer.alloc(16));
  const receive = qps[1].prepareRecv([{ wrId: 9, sgList: [{ mr: target }] }]);
  const send = qps[0].prepareSend([{ wrId: 8, opcode: WrOpcode.SEND, inline: true, sgList: [{ mr: source }] }]);
  for (let round = 0; round < 3; round++) {
    target.bytes.fill(0);
    receive.post();
    send.post();
    ok(await cqs[0].take(1, TIMEOUT));
    const [received] = ok(await cqs[1].take(1, TIMEOUT));
    assert.equal(received!.wrId, 9n);
    assert.equal(Buffer.from(target.bytes).toString(), 'prepared inline!');
  }
  assert.throws(
    () => qps[0].prepareSend([{ opcode: WrOpcode.SEND, inline: true, sgList: [{ buffer: Buffer.from('gone by the next post') }] }]),
    /inline data from an MR/,
  );
});

test('prepared requests hold their MRs and close with their QP', async () => {
  using t = pair();
  const { pd, qps } = t.pair;
  const mr = pd.registerMemory(Buffer.alloc(8), Access.LOCAL_WRITE);
  const prepared = qps[0].prepareRecv([{ sgList: [{ mr }] }]);
  assert.equal(prepared.closed, false);
  qps[0].close();
  assert.equal(prepared.closed, true);
  assert.throws(() => prepared.post(), TypeError);
  prepared.close();
  using context = open();
  const srqPd = context.allocPd();
  const cq = context.createCq(4);
  const srq = srqPd.createSrq({ maxWr: 4 });
  const viaSrq = srqPd.createQp({ sendCq: cq, qpType: QpType.RC, srq });
  assert.throws(() => viaSrq.prepareRecv([]), /SRQ/);
});
