import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, Mtu, QpState, QpType, WrOpcode, mtuBytes, parseGid, formatGid } from '../../lib';
import { TIMEOUT, open, random } from '../support/fixture';

test('a QP is created with at least the caps asked for and queries back its attributes', () => {
  using context = open();
  const pd = context.allocPd();
  const sendCq = context.createCq(16);
  const recvCq = context.createCq(16);
  const qp = pd.createQp({ sendCq, recvCq, maxSendWr: 10, maxRecvWr: 12, maxSendSge: 2, maxRecvSge: 3, maxInlineData: 32, sqSigAll: true });
  assert.ok(qp.qpNum > 0);
  const caps = qp.caps;
  assert.ok(caps.maxSendWr >= 10 && caps.maxRecvWr >= 12 && caps.maxSendSge >= 2 && caps.maxRecvSge >= 3 && caps.maxInlineData >= 32);
  const attr = qp.query();
  assert.equal(attr.qpState, QpState.RESET);
  assert.equal(attr.qpType, QpType.RC);
  assert.equal(attr.sqSigAll, true);
  assert.equal(qp.sendCq, sendCq);
  assert.equal(qp.recvCq, recvCq);
  // Not a QP without an SRQ: a TypeError.
  for (const srq of ['x', {}, sendCq]) assert.throws(() => pd.createQp({ sendCq, srq: srq as never }), TypeError);
  assert.throws(() => qp.postRecv({} as never), TypeError);
});

test('RESET → INIT → RTR → RTS by hand with the full attribute set, checked by query', () => {
  using context = open();
  const pd = context.allocPd();
  const cq = context.createCq(16);
  const [a, b] = [pd.createQp({ sendCq: cq }), pd.createQp({ sendCq: cq })];
  const gidIndex = context.defaultGidIndex();
  const gid = context.gidTable().find((e) => e.index === gidIndex && e.portNum === 1)!;
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  a.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: access });
  assert.equal(a.state, QpState.INIT);
  assert.equal(a.query().qpAccessFlags, access);
  a.modify({
    qpState: QpState.RTR, pathMtu: Mtu.MTU_1024, destQpNum: b.qpNum, rqPsn: 0x123456, maxDestRdAtomic: 1, minRnrTimer: 12,
    ahAttr: { dlid: 0, sl: 0, portNum: 1, grh: { dgid: gid.raw, sgidIndex: gidIndex, hopLimit: 1 } },
  });
  let attr = a.query();
  assert.equal(attr.qpState, QpState.RTR);
  assert.equal(attr.destQpNum, b.qpNum);
  assert.equal(attr.rqPsn, 0x123456);
  assert.equal(attr.pathMtu, Mtu.MTU_1024);
  assert.equal(formatGid(attr.ahAttr.grh!.dgid), gid.gid);
  a.modify({ qpState: QpState.RTS, sqPsn: 0x654321, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1 });
  attr = a.query();
  assert.equal(attr.qpState, QpState.RTS);
  assert.equal(attr.sqPsn, 0x654321);
  assert.equal(attr.timeout, 14);
  assert.equal(attr.retryCnt, 7);
  a.modify({ qpState: QpState.ERR });
  assert.equal(a.state, QpState.ERR);
  a.modify({ qpState: QpState.RESET });
  assert.equal(a.state, QpState.RESET);
});

test('connect() with exchanged endpoints carries traffic in both directions', async () => {
  using context = open();
  const pd = context.allocPd();
  const cqs = [context.createCq(16, { channel: true }), context.createCq(16, { channel: true })];
  const [a, b] = cqs.map((cq) => pd.createQp({ sendCq: cq }));
  // The out-of-band exchange, as JSON would carry it between two processes.
  const [ea, eb] = [a!, b!].map((qp) => JSON.parse(JSON.stringify(qp.address())));
  assert.equal(ea.qpNum, a!.qpNum);
  assert.ok(ea.psn >= 0 && ea.psn < 1 << 24);
  assert.equal(ea.mtu, mtuBytes(context.queryPort(1).activeMtu));
  assert.equal(formatGid(parseGid(ea.gid)), ea.gid);
  a!.connect(eb);
  b!.connect(ea);
  assert.equal(a!.query().sqPsn, ea.psn);
  assert.equal(b!.query().rqPsn, ea.psn);
  const data = random(100);
  const mrs = [pd.registerMemory(Buffer.from(data)), pd.registerMemory(Buffer.alloc(100))];
  b!.postRecv({ sgList: [{ mr: mrs[1]! }] });
  a!.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: mrs[0]! }] });
  await cqs[1]!.take(1, TIMEOUT);
  assert.deepEqual(mrs[1]!.bytes, new Uint8Array(data));
  a!.postRecv({ sgList: [{ mr: mrs[1]! }] });
  b!.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: mrs[0]!, length: 10 }] });
  const [received] = await cqs[0]!.take(2, TIMEOUT).then((c) => c.filter((x) => x.opcode >= 128));
  assert.equal(received!.byteLen, 10);
});

test('a UC QP connects and writes (the transports issue builds on this)', async () => {
  using context = open();
  const pd = context.allocPd();
  const cq = context.createCq(16, { channel: true });
  const [a, b] = [pd.createQp({ sendCq: cq, qpType: QpType.UC }), pd.createQp({ sendCq: cq, qpType: QpType.UC })];
  a.connect(b.address());
  b.connect(a.address());
  const source = pd.registerMemory(random(2000));
  const target = pd.registerMemory(Buffer.alloc(2000), Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  a.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
  assert.equal((await cq.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
  assert.deepEqual(target.bytes, source.bytes);
});
