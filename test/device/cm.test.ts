import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';

import { CmEventType, CmId, PortSpace, QpState, QpType, UD_GRH_BYTES, WrOpcode, type CmEvent, type RdmaError } from '../../lib';
import { TIMEOUT } from '../support/fixture';

const HOST = process.env.RDMA_NODE_TEST_IP ?? '10.0.2.15';
let nextPort = 20_000 + (process.pid % 1000) * 10;

/** A listener on a fresh port and the first incoming request, once there is one. */
async function listener(portSpace = PortSpace.TCP) {
  const id = CmId.create(portSpace);
  const port = nextPort++;
  await id.bind(HOST, port);
  id.listen();
  const request = once(id, 'connection') as Promise<[CmId, CmEvent]>;
  return { id, port, request };
}

/** The client side of a connection up to (not including) connect: resolved, with a QP. */
async function client(port: number, portSpace = PortSpace.TCP) {
  const id = CmId.create(portSpace);
  await id.resolveAddr(HOST, port);
  await id.resolveRoute();
  const context = id.context!;
  const pd = context.allocPd();
  const cq = context.createCq(16, { channel: true });
  const qp = id.createQp(pd, { sendCq: cq, maxSendWr: 8, maxRecvWr: 8 });
  return { id, pd, cq, qp };
}

test('connect and accept with private data both ways, then traffic and disconnect events on both sides', async () => {
  const server = await listener();
  const c = await client(server.port);
  const connecting = c.id.connect({ privateData: Buffer.from('hello server'), responderResources: 1, initiatorDepth: 1 });
  const [incoming, request] = await server.request;
  assert.equal(request.type, CmEventType.CONNECT_REQUEST);
  assert.equal(request.privateData.subarray(0, 12).toString(), 'hello server');
  assert.equal(incoming.remoteAddress!.address, HOST);
  assert.ok(incoming.context, 'the incoming ID is bound to a device');
  const pd = incoming.context!.allocPd();
  const cq = incoming.context!.createCq(16, { channel: true });
  const qp = incoming.createQp(pd, { sendCq: cq });
  const inbox = pd.registerMemory(Buffer.alloc(64));
  qp.postRecv({ sgList: [{ mr: inbox }] });
  await incoming.accept({ privateData: Buffer.from('hello client') });
  const established = await connecting;
  assert.equal(established.typeName, 'ESTABLISHED');
  assert.equal(established.privateData.subarray(0, 12).toString(), 'hello client');
  assert.equal(c.qp.state, QpState.RTS, 'the CM moved the QP to RTS');
  c.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: c.pd.registerMemory(Buffer.from('over rdma_cm')) }] });
  assert.equal((await cq.take(1, TIMEOUT))[0]!.byteLen, 12);
  assert.equal(Buffer.from(inbox.bytes.subarray(0, 12)).toString(), 'over rdma_cm');

  // The passive side answers a disconnect by disconnecting too; then both have seen DISCONNECTED.
  const serverSaw = new Promise<CmEvent>((resolve) => incoming.once('disconnected', (event: CmEvent) => {
    void incoming.disconnect();
    resolve(event);
  }));
  await c.id.disconnect();
  assert.equal((await serverSaw).type, CmEventType.DISCONNECTED);
  assert.equal(c.qp.state, QpState.ERR, 'a disconnected QP is in the error state');
  c.id.close();
  incoming.close();
  server.id.close();
  assert.equal(c.qp.closed, true, 'closing the ID destroyed its QP');
});

test('a rejection reaches the client as ECONNREFUSED with the reason and the private data', async () => {
  const server = await listener();
  const c = await client(server.port);
  const connecting = c.id.connect({ privateData: Buffer.from('let me in') });
  const [incoming] = await server.request;
  incoming.reject(Buffer.from('not today'));
  await assert.rejects(connecting, (e: RdmaError) => {
    assert.equal(e.code, 'ECONNREFUSED');
    assert.equal(e.verb, 'rdma_connect');
    assert.equal(e.cmEvent!.typeName, 'REJECTED');
    assert.equal(e.cmEvent!.status, 28, 'IB_CM_REJ_CONSUMER_DEFINED');
    assert.equal(e.cmEvent!.privateData.subarray(0, 9).toString(), 'not today');
    return true;
  });
  incoming.close();
  c.id.close();
  server.id.close();
});

test('connecting where nobody listens is refused; an unreachable address is an address error', async () => {
  const c = await client(nextPort++);
  await assert.rejects(c.id.connect(), (e: RdmaError) => e.code === 'ECONNREFUSED' && e.cmEvent!.typeName === 'REJECTED');
  c.id.close();
  const lost = CmId.create();
  await assert.rejects(lost.resolveAddr('192.0.2.1', 1, { timeoutMs: 1000 }), (e: RdmaError) =>
    e.verb === 'rdma_resolve_addr' && ['ENETUNREACH', 'EHOSTUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL'].includes(e.code));
  lost.close();
  // Route resolution needs a resolved address first.
  const early = CmId.create();
  await assert.rejects(early.resolveRoute(), (e: RdmaError) => e.verb === 'rdma_resolve_route' && e.code === 'EINVAL');
  early.close();
  const closed = CmId.create();
  closed.close();
  closed.close();
  assert.throws(() => closed.listen(), TypeError);
  await assert.rejects(closed.resolveAddr(HOST, 1), TypeError);
});

test('an operation pending when its ID closes rejects with ECANCELED', async () => {
  const server = await listener();
  const c = await client(server.port);
  const connecting = c.id.connect();
  await server.request; // the listener sits on the request: the connect stays pending
  c.id.close();
  await assert.rejects(connecting, (e: RdmaError) => e.code === 'ECANCELED');
  server.id.close();
});

test('UD over rdmacm: the CM hands out the peer QPN and QKey, datagrams flow both ways', async () => {
  const server = await listener(PortSpace.UDP);
  const c = await client(server.port, PortSpace.UDP);
  const connecting = c.id.connect({ privateData: Buffer.from('udp hello') });
  const [incoming, request] = await server.request;
  assert.equal(request.privateData.subarray(0, 9).toString(), 'udp hello');
  const pd = incoming.context!.allocPd();
  const cq = incoming.context!.createCq(16, { channel: true });
  const qp = incoming.createQp(pd, { sendCq: cq });
  const inbox = pd.registerMemory(Buffer.alloc(UD_GRH_BYTES + 64));
  qp.postRecv({ sgList: [{ mr: inbox }] });
  await incoming.accept();
  const established = await connecting;
  assert.ok(established.ud, 'the ESTABLISHED event of a UDP ID carries the peer address');
  assert.equal(established.ud.qpNum, qp.qpNum);
  const ah = c.pd.createAh(established.ud.ahAttr);
  c.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: c.pd.registerMemory(Buffer.from('datagram')) }], ud: { ah, remoteQpn: established.ud.qpNum, remoteQkey: established.ud.qkey } });
  await c.cq.take(1, TIMEOUT);
  const [received] = await cq.take(1, TIMEOUT);
  assert.equal(received!.byteLen, UD_GRH_BYTES + 8);
  assert.equal(received!.srcQp, c.qp.qpNum);
  assert.equal(Buffer.from(inbox.bytes.subarray(UD_GRH_BYTES, UD_GRH_BYTES + 8)).toString(), 'datagram');
  for (const id of [c.id, incoming, server.id]) id.close();
});

test('multicast: join, send to the group, receive on a member, leave', async () => {
  const group = '239.1.2.3';
  const members = [];
  for (let i = 0; i < 2; i++) {
    const id = CmId.create(PortSpace.UDP);
    await id.resolveAddr(group, 0, { source: HOST });
    const pd = id.context!.allocPd();
    const cq = id.context!.createCq(16, { channel: true });
    const qp = id.createQp(pd, { sendCq: cq });
    const joined = await id.joinMulticast(group);
    assert.equal(joined.typeName, 'MULTICAST_JOIN');
    assert.ok(joined.ud && joined.ud.qpNum === 0xffffff, 'multicast sends go to QPN 0xffffff');
    members.push({ id, pd, cq, qp, joined });
  }
  const [sender, receiver] = members as [typeof members[0], typeof members[0]];
  const inbox = receiver.pd.registerMemory(Buffer.alloc(UD_GRH_BYTES + 32));
  receiver.qp.postRecv({ sgList: [{ mr: inbox }] });
  const ah = sender.pd.createAh(sender.joined.ud!.ahAttr);
  sender.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: sender.pd.registerMemory(Buffer.from('to everyone')) }], ud: { ah, remoteQpn: 0xffffff, remoteQkey: sender.joined.ud!.qkey } });
  assert.equal((await sender.cq.take(1, TIMEOUT))[0]!.statusName, 'SUCCESS');
  const [received] = await receiver.cq.take(1, TIMEOUT);
  assert.equal(Buffer.from(inbox.bytes.subarray(UD_GRH_BYTES, UD_GRH_BYTES + 11)).toString(), 'to everyone');
  assert.equal(received!.srcQp, sender.qp.qpNum);
  for (const member of members) {
    member.id.leaveMulticast(group);
    member.id.close();
  }
});

test('XRC over rdmacm: an XRC_SEND QP on an RDMA_PS_IB ID (rdma_xclient\'s) is EOPNOTSUPP on rxe, a target needs a domain, and the ID stays usable', async () => {
  const id = CmId.create(PortSpace.IB);
  try {
    await id.resolveAddr(HOST, nextPort++);
    const context = id.context!;
    const pd = context.allocPd();
    const cq = context.createCq(16);
    assert.throws(() => id.createQp(pd, { qpType: QpType.XRC_SEND, sendCq: cq }), (e: RdmaError) => e.verb === 'rdma_create_qp' && e.code === 'EOPNOTSUPP');
    assert.throws(() => id.createQp(pd, { qpType: QpType.XRC_SEND, sendCq: cq, recvCq: cq }), /no receive CQ or SRQ/);
    assert.throws(() => id.createXrcTargetQp({} as never), /xrcd must be an XrcDomain/);
    assert.throws(() => id.handle.createXrcTargetQp(pd.handle as never), TypeError);
    const qp = id.createQp(pd, { sendCq: cq });
    assert.equal(qp.qpType, QpType.RC);
    assert.equal(qp.state, QpState.INIT);
  } finally {
    id.context?.close();
    id.close();
  }
});
