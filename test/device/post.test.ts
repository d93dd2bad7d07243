import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, WcFlags, WcOpcode, WcStatus, WrOpcode, type Completion } from '../../lib';
import { TIMEOUT, pair, random, remoteAccess } from '../support/fixture';

const ok = (completions: Completion[]): Completion[] => {
  for (const c of completions) assert.equal(c.statusName, 'SUCCESS', `wr ${c.wrId}: ${c.statusName}`);
  return completions;
};

// 1 B, below and above the 1024-byte rxe MTU (so multi-packet messages), and multi-MiB.
const sizes = [1, 1000, 1024, 5000, 3 << 20];

for (const size of sizes) {
  test(`SEND/RECV of ${size} B of random data arrives intact`, async () => {
    using t = pair();
    const { pd, cqs, qps } = t.pair;
    const source = pd.registerMemory(random(size));
    const target = pd.registerMemory(Buffer.alloc(size + 16));
    qps[1].postRecv({ wrId: 7n, sgList: [{ mr: target }] });
    qps[0].postSend({ wrId: 8n, opcode: WrOpcode.SEND, sgList: [{ mr: source }] });
    const [sent] = ok(await cqs[0].take(1, TIMEOUT));
    const [received] = ok(await cqs[1].take(1, TIMEOUT));
    assert.equal(sent!.opcode, WcOpcode.SEND);
    assert.equal(sent!.wrId, 8n);
    assert.equal(received!.opcode, WcOpcode.RECV);
    assert.equal(received!.wrId, 7n);
    assert.equal(received!.byteLen, size);
    assert.equal(received!.qpNum, qps[1].qpNum);
    assert.equal(received!.immData, undefined);
    assert.deepEqual(target.bytes.subarray(0, size), source.bytes);
  });

  test(`RDMA WRITE then READ of ${size} B round-trips intact`, async () => {
    using t = pair();
    const { pd, cqs, qps } = t.pair;
    const source = pd.registerMemory(random(size));
    const remote = pd.registerMemory(Buffer.alloc(size), remoteAccess);
    const back = pd.registerMemory(new Uint8Array(size));
    qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: remote.remote() });
    assert.equal(ok(await cqs[0].take(1, TIMEOUT))[0]!.opcode, WcOpcode.RDMA_WRITE);
    assert.deepEqual(remote.bytes, source.bytes);
    qps[0].postSend({ wrId: 2, opcode: WrOpcode.RDMA_READ, sgList: [{ mr: back }], remote: remote.remote() });
    const [read] = ok(await cqs[0].take(1, TIMEOUT));
    assert.equal(read!.opcode, WcOpcode.RDMA_READ);
    assert.equal(read!.byteLen, size);
    assert.deepEqual(back.bytes, source.bytes);
  });
}

test('several SGEs gather on send and scatter on receive, at offsets', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const a = pd.registerMemory(random(3000));
  const b = pd.registerMemory(new Uint16Array(500)); // a typed array: 1000 bytes
  b.bytes.set(random(1000));
  const recvBuffer = new ArrayBuffer(8192);
  const r1 = pd.registerMemory(recvBuffer, Access.LOCAL_WRITE, { offset: 0, length: 1500 });
  const r2 = pd.registerMemory(recvBuffer, Access.LOCAL_WRITE, { offset: 4096, length: 4096 });
  qps[1].postRecv({ wrId: 1, sgList: [{ mr: r1 }, { mr: r2, offset: 100 }] });
  qps[0].postSend({ wrId: 2, opcode: WrOpcode.SEND, sgList: [{ mr: a, offset: 500, length: 2000 }, { mr: b }, { mr: a, length: 10 }] });
  ok(await cqs[0].take(1, TIMEOUT));
  const [received] = ok(await cqs[1].take(1, TIMEOUT));
  assert.equal(received!.byteLen, 3010);
  const expected = Buffer.concat([a.bytes.subarray(500, 2500), b.bytes, a.bytes.subarray(0, 10)]);
  const actual = Buffer.concat([r1.bytes, r2.bytes.subarray(100, 100 + 3010 - 1500)]);
  assert.deepEqual(actual, expected);
});

test('SEND_WITH_IMM and RDMA_WRITE_WITH_IMM deliver the immediate data', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(256));
  const target = pd.registerMemory(Buffer.alloc(256), remoteAccess);
  qps[1].postRecv([{ wrId: 1, sgList: [{ mr: target }] }, { wrId: 2, sgList: [] }]);
  qps[0].postSend([
    { wrId: 3, opcode: WrOpcode.SEND_WITH_IMM, immData: 0xdeadbeef, sgList: [{ mr: source, length: 16 }] },
    { wrId: 4, opcode: WrOpcode.RDMA_WRITE_WITH_IMM, immData: 0x01020304, sgList: [{ mr: source }], remote: target.remote() },
  ]);
  ok(await cqs[0].take(2, TIMEOUT));
  const [send, write] = ok(await cqs[1].take(2, TIMEOUT));
  assert.equal(send!.opcode, WcOpcode.RECV);
  assert.equal(send!.immData, 0xdeadbeef);
  assert.ok(send!.wcFlags & WcFlags.WITH_IMM);
  assert.equal(write!.opcode, WcOpcode.RECV_RDMA_WITH_IMM);
  assert.equal(write!.wrId, 2n);
  assert.equal(write!.immData, 0x01020304);
  assert.equal(write!.byteLen, 256);
  assert.deepEqual(target.bytes, source.bytes);
});

test('atomics return the old value and update remote memory', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const remote = pd.registerMemory(new BigUint64Array([100n, 7n]), remoteAccess);
  const result = pd.registerMemory(new BigUint64Array(2));
  const words = new BigUint64Array(remote.bytes.buffer, remote.bytes.byteOffset, 2);
  const old = new BigUint64Array(result.bytes.buffer, result.bytes.byteOffset, 2);

  qps[0].postSend({ wrId: 1, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, compareAdd: 23n, sgList: [{ mr: result, length: 8 }], remote: remote.remote(0, 8) });
  assert.equal(ok(await cqs[0].take(1, TIMEOUT))[0]!.opcode, WcOpcode.FETCH_ADD);
  assert.equal(old[0], 100n);
  assert.equal(words[0], 123n);

  // A compare that matches swaps; one that does not leaves memory alone. Both return the old value.
  qps[0].postSend({ wrId: 2, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, compareAdd: 7n, swap: 0xffff_ffff_ffff_fff0n, sgList: [{ mr: result, offset: 8, length: 8 }], remote: remote.remote(8, 8) });
  assert.equal(ok(await cqs[0].take(1, TIMEOUT))[0]!.opcode, WcOpcode.COMP_SWAP);
  assert.equal(old[1], 7n);
  assert.equal(words[1], 0xffff_ffff_ffff_fff0n);
  qps[0].postSend({ wrId: 3, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, compareAdd: 7n, swap: 1n, sgList: [{ mr: result, offset: 8, length: 8 }], remote: remote.remote(8, 8) });
  ok(await cqs[0].take(1, TIMEOUT));
  assert.equal(old[1], 0xffff_ffff_ffff_fff0n);
  assert.equal(words[1], 0xffff_ffff_ffff_fff0n);
});

test('unsignaled sends produce no completion; the signaled one after them does', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const target = pd.registerMemory(Buffer.alloc(64 * 8));
  qps[1].postRecv(Array.from({ length: 8 }, (_, i) => ({ wrId: i, sgList: [{ mr: target, offset: i * 64, length: 64 }] })));
  qps[0].postSend(Array.from({ length: 8 }, (_, i) => ({ wrId: 100 + i, opcode: WrOpcode.SEND, signaled: i === 7, sgList: [{ mr: source }] })));
  const received = ok(await cqs[1].take(8, TIMEOUT));
  assert.deepEqual(received.map((c) => c.wrId), [0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n]);
  const [sent] = ok(await cqs[0].take(1, TIMEOUT));
  assert.equal(sent!.wrId, 107n);
  assert.equal(cqs[0].poll().count, 0, 'no completion for the unsignaled sends');
  for (let i = 0; i < 8; i++) assert.deepEqual(target.bytes.subarray(i * 64, i * 64 + 64), source.bytes);
});

test('inline sends copy from an MR or a plain buffer at post time', async () => {
  using t = pair({ maxInlineData: 64 });
  const { pd, cqs, qps } = t.pair;
  assert.ok(qps[0].caps.maxInlineData >= 64);
  const fromMr = pd.registerMemory(random(40));
  const plain = random(24);
  const expected = Buffer.concat([fromMr.bytes, plain]);
  const target = pd.registerMemory(Buffer.alloc(128));
  qps[1].postRecv({ wrId: 1, sgList: [{ mr: target }] });
  qps[0].postSend({ wrId: 2, opcode: WrOpcode.SEND, inline: true, sgList: [{ mr: fromMr }, { buffer: plain }] });
  plain.fill(0); // already copied: changing it now must not change what arrives
  ok(await cqs[0].take(1, TIMEOUT));
  const [received] = ok(await cqs[1].take(1, TIMEOUT));
  assert.equal(received!.byteLen, 64);
  assert.deepEqual(Buffer.from(target.bytes.subarray(0, 64)), expected);
});

test('a list of work requests posts in one call and completes in order', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(32 * 32));
  const remote = pd.registerMemory(Buffer.alloc(32 * 32), remoteAccess);
  qps[0].postSend(Array.from({ length: 32 }, (_, i) => ({
    wrId: BigInt(i) << 40n, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source, offset: i * 32, length: 32 }], remote: remote.remote(i * 32, 32),
  })));
  const done = ok(await cqs[0].take(32, TIMEOUT));
  assert.deepEqual(done.map((c) => c.wrId), Array.from({ length: 32 }, (_, i) => BigInt(i) << 40n));
  assert.deepEqual(remote.bytes, source.bytes);
  assert.equal(done[0]!.status, WcStatus.SUCCESS);
});

test('the extended post API (ibv_wr_*) carries the same requests: send with imm, inline, write, read, atomics', async () => {
  using t = pair({ extended: true, maxInlineData: 64 });
  const { pd, cqs, qps } = t.pair;
  assert.equal(qps[0].extended, true);
  const source = pd.registerMemory(random(3000));
  const remote = pd.registerMemory(Buffer.alloc(3000), remoteAccess);
  const back = pd.registerMemory(Buffer.alloc(3000));
  const inbox = pd.registerMemory(Buffer.alloc(64));
  const counter = pd.registerMemory(new BigUint64Array([41n]), remoteAccess);
  const old = pd.registerMemory(new BigUint64Array(1));
  qps[1].postRecv({ wrId: 1, sgList: [{ mr: inbox }] });
  qps[0].postSend([
    { wrId: 10, opcode: WrOpcode.SEND_WITH_IMM, immData: 5, inline: true, sgList: [{ buffer: Buffer.from('inline hello') }] },
    // One SGE: rxe's ibv_wr_set_sge_list in rdma-core 44 miscounts lists (fixed upstream, PR #1744).
    { wrId: 11, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: remote.remote() },
    { wrId: 12, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, compareAdd: 1n, sgList: [{ mr: old }], remote: counter.remote() },
  ]);
  const sent = ok(await cqs[0].take(3, TIMEOUT));
  assert.deepEqual(sent.map((c) => c.opcode), [WcOpcode.SEND, WcOpcode.RDMA_WRITE, WcOpcode.FETCH_ADD]);
  const [received] = ok(await cqs[1].take(1, TIMEOUT));
  assert.equal(received!.immData, 5);
  assert.equal(Buffer.from(inbox.bytes.subarray(0, received!.byteLen)).toString(), 'inline hello');
  assert.deepEqual(remote.bytes, source.bytes);
  assert.equal(new BigUint64Array(old.bytes.buffer, old.bytes.byteOffset, 1)[0], 41n);
  assert.equal(new BigUint64Array(counter.bytes.buffer, counter.bytes.byteOffset, 1)[0], 42n);
  qps[0].postSend({ wrId: 13, opcode: WrOpcode.RDMA_READ, sgList: [{ mr: back }], remote: remote.remote() });
  ok(await cqs[0].take(1, TIMEOUT));
  assert.deepEqual(back.bytes, source.bytes);
});
