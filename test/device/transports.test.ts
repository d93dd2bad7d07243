import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';

import {
  Access, AsyncEventType, MwType, UD_GRH_BYTES, WcFlags, WcOpcode, WrOpcode, splitUdReceive, udReceiveBytes,
  type AsyncEvent, type ProtectionDomain,
} from '../../lib';
import { QKEY, TIMEOUT, open, random, udQp } from '../support/fixture';

test('UD datagrams through an AH made from a GID, answered through an AH made from the completion', async () => {
  using context = open();
  const pd = context.allocPd();
  const [a, b] = [udQp(context, pd), udQp(context, pd)];
  const gidIndex = context.defaultGidIndex();
  const gid = context.gidTable().find((e) => e.index === gidIndex && e.portNum === 1)!;
  const message = random(512);
  const source = pd.registerMemory(Buffer.from(message));
  const target = pd.registerMemory(Buffer.alloc(udReceiveBytes(512)));
  b.qp.postRecv({ wrId: 1, sgList: [{ mr: target }] });
  const ah = pd.createAh({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gidIndex, hopLimit: 1 } });
  assert.equal(ah.attr.portNum, 1);
  a.qp.postSend({ wrId: 2, opcode: WrOpcode.SEND_WITH_IMM, immData: 77, sgList: [{ mr: source }], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: QKEY } });
  assert.equal((await a.cq.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
  const [received] = await b.cq.take(1, TIMEOUT);
  assert.equal(received!.statusName, 'SUCCESS');
  assert.equal(received!.byteLen, UD_GRH_BYTES + 512, 'UD byte_len counts the GRH slot');
  assert.ok(received!.wcFlags & WcFlags.GRH, 'RoCE datagrams carry a GRH');
  assert.equal(received!.srcQp, a.qp.qpNum);
  assert.equal(received!.immData, 77);
  const { grh, payload } = splitUdReceive(target.bytes, received!);
  assert.deepEqual(Buffer.from(payload), message);
  assert.ok(grh, 'the GRH is handed back separately');

  // The reply goes back to whoever sent, found from the completion and its GRH.
  const reply = pd.createAhFromCompletion(received!, grh);
  const back = pd.registerMemory(Buffer.alloc(UD_GRH_BYTES + 4));
  a.qp.postRecv({ wrId: 3, sgList: [{ mr: back }] });
  b.qp.postSend({ wrId: 4, opcode: WrOpcode.SEND, sgList: [{ buffer: Buffer.from('pong') }], inline: true, ud: { ah: reply, remoteQpn: received!.srcQp, remoteQkey: QKEY } });
  await b.cq.take(1, TIMEOUT);
  assert.equal((await a.cq.take(1, TIMEOUT))[0]!.srcQp, b.qp.qpNum);
  assert.equal(Buffer.from(back.bytes.subarray(UD_GRH_BYTES)).toString(), 'pong');
  // A datagram with the wrong QKey is dropped, not delivered.
  b.qp.postRecv({ wrId: 5, sgList: [{ mr: target }] });
  a.qp.postSend({ wrId: 6, opcode: WrOpcode.SEND, sgList: [{ mr: source }], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: QKEY + 1 } });
  await a.cq.take(1, TIMEOUT);
  await assert.rejects(b.cq.take(1, { timeoutMs: 500 }), { code: 'ETIMEDOUT' });
  assert.throws(() => a.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: source }] }), TypeError, 'UD sends need an AH');
});

test('QPs share one SRQ; the SRQ limit event fires once armed', async () => {
  using context = open();
  const events: AsyncEvent[] = [];
  context.on('event', (e: AsyncEvent) => events.push(e));
  const pd = context.allocPd();
  const srq = pd.createSrq({ maxWr: 16, maxSge: 1 });
  assert.ok(srq.query().maxWr >= 16);
  const cq = context.createCq(64, { channel: true });
  const receivers = [0, 1, 2].map(() => pd.createQp({ sendCq: cq, srq }));
  const senders = [0, 1, 2].map(() => pd.createQp({ sendCq: cq }));
  receivers.forEach((qp, i) => {
    qp.connect(senders[i]!.address());
    senders[i]!.connect(qp.address());
  });
  assert.equal(receivers[0]!.srq, srq);
  assert.throws(() => receivers[0]!.postRecv({ sgList: [] }), /SRQ/);
  const slab = pd.registerMemory(Buffer.alloc(16 * 64));
  srq.postRecv(Array.from({ length: 12 }, (_, i) => ({ wrId: 100 + i, sgList: [{ mr: slab, offset: i * 64, length: 64 }] })));
  srq.modify({ srqLimit: 10 });
  assert.equal(srq.query().srqLimit, 10);
  const message = (i: number) => Buffer.from(`from sender ${i}`);
  senders.forEach((qp, i) => qp.postSend({ wrId: i, opcode: WrOpcode.SEND, inline: false, sgList: [{ mr: pd.registerMemory(message(i)) }] }));
  const completions = await cq.take(6, TIMEOUT);
  const received = completions.filter((c) => c.opcode === WcOpcode.RECV);
  assert.equal(received.length, 3);
  for (const c of received) {
    const sender = receivers.findIndex((qp) => qp.qpNum === c.qpNum);
    const slot = Number(c.wrId) - 100;
    assert.equal(Buffer.from(slab.bytes.subarray(slot * 64, slot * 64 + c.byteLen)).toString(), `from sender ${sender}`);
  }
  const deadline = Date.now() + 10_000;
  while (!events.some((e) => e.type === AsyncEventType.SRQ_LIMIT_REACHED) && Date.now() < deadline) {
    await Promise.race([once(context, 'event'), new Promise((r) => setTimeout(r, 100))]);
  }
  const limit = events.find((e) => e.type === AsyncEventType.SRQ_LIMIT_REACHED);
  assert.ok(limit, 'SRQ_LIMIT_REACHED after the receives fell below 10');
  assert.equal(limit.srq, srq);
  assert.equal(srq.query().srqLimit, 0, 'the event disarms the limit');
});

async function windowPair() {
  const context = open();
  const pd = context.allocPd();
  const cqs = [context.createCq(64, { channel: true }), context.createCq(64, { channel: true })];
  const [a, b] = cqs.map((cq) => pd.createQp({ sendCq: cq })) as [ReturnType<ProtectionDomain['createQp']>, ReturnType<ProtectionDomain['createQp']>];
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  a.connect(b.address(), { accessFlags: access | Access.MW_BIND });
  b.connect(a.address(), { accessFlags: access | Access.MW_BIND });
  const target = pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE | Access.MW_BIND);
  const source = pd.registerMemory(random(256));
  return { context, pd, cqs, a, b, target, source };
}

// rxe checks a window's accesses against its MR's range, not the window's: the bounds of a window are
// not enforced there, so these tests check grants and revocations, which are.
test('a type 1 window grants remote write to part of an MR and rebinding revokes it', async () => {
  const { context, pd, cqs, a, b, target, source } = await windowPair();
  try {
    const mw = pd.allocMw(MwType.TYPE_1);
    assert.equal(mw.type, MwType.TYPE_1);
    const rkey = b.bindMw(mw, { mr: target, offset: 1024, length: 256, access: Access.REMOTE_WRITE, wrId: 9 });
    assert.equal((await cqs[1]!.take(1, TIMEOUT))[0]!.opcode, WcOpcode.BIND_MW);
    assert.equal(mw.rkey, rkey);
    a.postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { addr: target.addr + 1024n, rkey } });
    assert.equal((await cqs[0]!.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
    assert.deepEqual(target.bytes.subarray(1024, 1280), source.bytes);
    // Binding again (here: to nothing) gives the window a new rkey; the old one no longer grants anything.
    const next = b.bindMw(mw, { mr: target, offset: 0, length: 0, access: Access.REMOTE_WRITE, wrId: 10 });
    await cqs[1]!.take(1, TIMEOUT);
    assert.notEqual(next, rkey);
    target.bytes.fill(0);
    a.postSend({ wrId: 2, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { addr: target.addr + 1024n, rkey } });
    assert.equal((await cqs[0]!.take(1, TIMEOUT))[0]!.statusName, 'REM_ACCESS_ERR');
    assert.deepEqual(target.bytes, new Uint8Array(4096), 'nothing written through the revoked rkey');
  } finally {
    context.close();
  }
});

test('a type 2 window bound by work request, revoked by LOCAL_INV, refuses access afterwards', async () => {
  const { context, pd, cqs, a, b, target, source } = await windowPair();
  try {
    const mw = pd.allocMw(MwType.TYPE_2);
    const rkey = mw.nextRkey();
    b.postSend({ wrId: 1, opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr: target, offset: 0, length: 512, access: Access.REMOTE_WRITE | Access.REMOTE_READ } });
    assert.equal((await cqs[1]!.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
    assert.equal(mw.rkey, rkey);
    a.postSend({ wrId: 2, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { addr: target.addr, rkey } });
    assert.equal((await cqs[0]!.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
    assert.deepEqual(target.bytes.subarray(0, 256), source.bytes);

    b.postSend({ wrId: 3, opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey });
    assert.equal((await cqs[1]!.take(1, TIMEOUT))[0]!.opcode, WcOpcode.LOCAL_INV);
    target.bytes.fill(0);
    a.postSend({ wrId: 4, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { addr: target.addr, rkey } });
    assert.equal((await cqs[0]!.take(1, TIMEOUT))[0]!.statusName, 'REM_ACCESS_ERR');
    assert.deepEqual(target.bytes.subarray(0, 256), new Uint8Array(256), 'nothing written through the revoked window');
  } finally {
    context.close();
  }
});

test('SEND_WITH_INV revokes the receiver\'s type 2 window and reports the rkey', async () => {
  const { context, pd, cqs, a, b, target, source } = await windowPair();
  try {
    const mw = pd.allocMw(MwType.TYPE_2);
    const rkey = mw.nextRkey();
    b.postSend({ wrId: 1, opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr: target, length: 512, access: Access.REMOTE_WRITE } });
    await cqs[1]!.take(1, TIMEOUT);
    const inbox = pd.registerMemory(Buffer.alloc(64));
    b.postRecv({ wrId: 5, sgList: [{ mr: inbox }] });
    a.postSend({ wrId: 6, opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: rkey, sgList: [{ mr: source, length: 16 }] });
    assert.equal((await cqs[0]!.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
    const [received] = await cqs[1]!.take(1, TIMEOUT);
    assert.equal(received!.statusName, 'SUCCESS');
    assert.equal(received!.byteLen, 16);
    // The verbs report the invalidated rkey with IBV_WC_WITH_INV; rxe revokes the window but leaves the
    // flag out of user-space completions, so the revocation itself is what is checked below.
    if (received!.wcFlags & WcFlags.WITH_INV) assert.equal(received!.invalidatedRkey, rkey);
    a.postSend({ wrId: 7, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { addr: target.addr, rkey } });
    assert.equal((await cqs[0]!.take(1, TIMEOUT))[0]!.statusName, 'REM_ACCESS_ERR');
  } finally {
    context.close();
  }
});
