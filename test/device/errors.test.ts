import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { Access, Mtu, QpState, RdmaError, WcStatus, WrOpcode, openDevice } from '../../lib';
import { TIMEOUT, deviceName, open, pair, random, remoteAccess } from '../support/fixture';

test('a bad rkey fails with REM_ACCESS_ERR and puts the QP in the error state', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const remote = pd.registerMemory(Buffer.alloc(64), remoteAccess);
  qps[0].postSend({ wrId: 5, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { addr: remote.addr, rkey: remote.rkey ^ 0x5a5a00 } });
  const [failed] = await cqs[0].take(1, TIMEOUT);
  assert.equal(failed!.status, WcStatus.REM_ACCESS_ERR);
  assert.equal(failed!.statusName, 'REM_ACCESS_ERR');
  assert.equal(failed!.wrId, 5n);
  assert.equal(qps[0].state, QpState.ERR);
  assert.deepEqual(remote.bytes, new Uint8Array(64), 'nothing was written');
});

test('a write to a region without remote-write access fails with REM_ACCESS_ERR', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const readOnly = pd.registerMemory(Buffer.alloc(64), Access.LOCAL_WRITE | Access.REMOTE_READ);
  qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: readOnly.remote() });
  assert.equal((await cqs[0].take(1, TIMEOUT))[0]!.status, WcStatus.REM_ACCESS_ERR);
  assert.deepEqual(readOnly.bytes, new Uint8Array(64));
});

// The verbs spec says LOC_PROT_ERR; rxe reports the local failure as LOC_QP_OP_ERR (6.1) or completes the
// failed request as WR_FLUSH_ERR when it moves the QP to the error state (7.x). Either way: not SUCCESS,
// nothing transferred, QP in ERR, and every later request flushed.
const localErrors = ['LOC_PROT_ERR', 'LOC_QP_OP_ERR', 'WR_FLUSH_ERR'];

test('a bad lkey on the sender fails locally, transfers nothing and flushes what follows', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const remote = pd.registerMemory(Buffer.alloc(64), remoteAccess);
  qps[0].postSend([
    { wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source, lkey: source.lkey ^ 0x3c3c00 }], remote: remote.remote() },
    { wrId: 2, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: remote.remote() },
  ]);
  const [first, second] = await cqs[0].take(2, TIMEOUT);
  assert.equal(first!.wrId, 1n);
  assert.ok(localErrors.includes(first!.statusName), `bad lkey completed with ${first!.statusName}`);
  assert.equal(second!.statusName, 'WR_FLUSH_ERR');
  assert.equal(qps[0].state, QpState.ERR);
  assert.deepEqual(remote.bytes, new Uint8Array(64), 'nothing was written');
});

test('a bad lkey in a receive request fails it locally and the sender sees REM_OP_ERR', async () => {
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(64));
  const target = pd.registerMemory(Buffer.alloc(64));
  qps[1].postRecv({ wrId: 9, sgList: [{ mr: target, lkey: target.lkey ^ 0xff }] });
  qps[0].postSend({ wrId: 1, opcode: WrOpcode.SEND, sgList: [{ mr: source }] });
  const [received] = await cqs[1].take(1, TIMEOUT);
  assert.equal(received!.wrId, 9n);
  assert.ok(['LOC_PROT_ERR', 'LOC_QP_OP_ERR'].includes(received!.statusName), `receive completed with ${received!.statusName}`);
  const [sent] = await cqs[0].take(1, TIMEOUT);
  assert.equal(sent!.statusName, 'REM_OP_ERR');
  assert.equal(qps[1].state, QpState.ERR);
  assert.deepEqual(target.bytes, new Uint8Array(64));
});

test('bad inputs are TypeErrors or RangeErrors, never a crash', () => {
  using t = pair();
  const { pd, qps, cqs } = t.pair;
  const mr = pd.registerMemory(Buffer.alloc(64));
  const qp = qps[0];
  const bad = (fn: () => unknown, type: ErrorConstructor) => assert.throws(fn, type);
  bad(() => pd.registerMemory('nope' as never), TypeError);
  bad(() => pd.registerMemory(Buffer.alloc(8), Access.LOCAL_WRITE, { offset: 9 }), RangeError);
  bad(() => pd.registerMemory(Buffer.alloc(8), Access.LOCAL_WRITE, { length: -1 }), RangeError);
  bad(() => pd.registerMemory(Buffer.alloc(8), -1), RangeError);
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr, offset: 60, length: 8 }] }), RangeError);
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr, offset: 65 }] }), RangeError);
  bad(() => qp.postSend({ opcode: 10 as WrOpcode }), RangeError); // TSO: not describable here
  bad(() => qp.postSend({ opcode: 'SEND' as never }), TypeError);
  bad(() => qp.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr }] }), TypeError); // no remote
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, inline: true, sgList: [{ addr: 0x1000n, length: 8, lkey: 1 }] }), TypeError);
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ buffer: Buffer.alloc(8) }] }), TypeError);
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: {} as never }] }), TypeError);
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: cqs[0] as never }] }), TypeError);
  bad(() => qp.postSend({ wrId: -1, opcode: WrOpcode.SEND }), RangeError);
  bad(() => qp.postSend({ wrId: 1n << 64n, opcode: WrOpcode.SEND }), RangeError);
  bad(() => qp.postSend(null as never), TypeError);
  bad(() => qp.modify({ pathMtu: 9 as Mtu }), RangeError);
  bad(() => qp.modify({ ahAttr: { grh: { dgid: new Uint8Array(3) } } }), TypeError);
  bad(() => cqs[0].poll({ words: new Float64Array(16) } as never), TypeError);
  bad(() => pd.createQp({ sendCq: mr as never }), TypeError);
  bad(() => t.context.createCq(-1), RangeError);
  bad(() => t.context.queryPort(1.5), RangeError);
  // A detached buffer cannot be posted from: its memory is gone.
  const detachable = new ArrayBuffer(64);
  const registered = pd.registerMemory(detachable);
  structuredClone(detachable, { transfer: [detachable] });
  bad(() => qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: registered }] }), TypeError);
  bad(() => pd.registerMemory(detachable), TypeError);
});

test('a verb the device refuses is an RdmaError with errno, code and verb', () => {
  using t = pair();
  const qp = t.pair.qps[0];
  // RTS → INIT is not a legal transition.
  assert.throws(() => qp.modify({ qpState: QpState.INIT }), (e: RdmaError) =>
    e instanceof RdmaError && e.code === 'EINVAL' && e.errno === 22 && e.verb === 'ibv_modify_qp');
  assert.throws(() => t.pair.pd.createQp({ sendCq: t.pair.cqs[0], maxSendWr: 1 << 30 }), (e: RdmaError) =>
    e instanceof RdmaError && e.verb === 'ibv_create_qp' && typeof e.errno === 'number');
});

test('use after close and double close', () => {
  const t = pair();
  const { pd, cqs, qps } = t.pair;
  const mr = pd.registerMemory(Buffer.alloc(8));
  mr.close();
  mr.close();
  assert.throws(() => qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr }] }), /closed/);
  qps[0].close();
  qps[0].close();
  assert.throws(() => qps[0].postSend({ opcode: WrOpcode.SEND }), TypeError);
  assert.throws(() => qps[0].query(), TypeError);
  pd.close();
  assert.throws(() => pd.createQp({ sendCq: cqs[0] }), /closed/);
  t[Symbol.dispose]();
  assert.throws(() => cqs[0].poll(), TypeError);
  assert.throws(() => pd.registerMemory(Buffer.alloc(8)), TypeError);
});

test('garbage collection while operations are in flight loses nothing', async () => {
  const maybeGc = (globalThis as { gc?: () => void }).gc;
  assert.ok(maybeGc, 'run with --expose-gc');
  const gc: () => void = maybeGc;
  using t = pair();
  const { pd, cqs, qps } = t.pair;
  const size = 1 << 20;
  const expected = random(size);
  const target = pd.registerMemory(Buffer.alloc(size), remoteAccess);
  // Only the QP's in-flight bookkeeping and the MR hold the source now.
  (() => {
    const source = pd.registerMemory(Buffer.from(expected));
    qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
  })();
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const [done] = await cqs[0].take(1, TIMEOUT);
  assert.equal(done!.statusName, 'SUCCESS');
  assert.deepEqual(target.bytes, new Uint8Array(expected));
  // Objects nobody references are collected and closed without crashing.
  for (let i = 0; i < 50; i++) t.context.allocPd().registerMemory(Buffer.alloc(4096));
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
});

test('worker threads get their own addon instance and clean up when they exit', async () => {
  const script = `
    const { parentPort, workerData } = require('node:worker_threads');
    const rdma = require(workerData.lib);
    const context = rdma.openDevice(workerData.device);
    const pd = context.allocPd();
    const cq = context.createCq(4, { channel: true });
    pd.createQp({ sendCq: cq });
    pd.registerMemory(Buffer.alloc(4096));
    cq.wait().catch(() => {});
    parentPort.postMessage(context.queryPort(1).state);
    // Exits with everything open and a wait pending: teardown must close it all.
    setImmediate(() => process.exit(0));
  `;
  const worker = new Worker(script, { eval: true, workerData: { lib: require.resolve('../../lib'), device: deviceName() } });
  const [state] = (await Promise.all([new Promise((r) => worker.once('message', r)), new Promise((r) => worker.once('exit', r))])) as unknown as [number];
  assert.equal(state, 4);
  await worker.terminate();
  using context = openDevice(deviceName());
  assert.ok(context.queryDevice().maxQp > 0, 'the device is still usable');
});

test('opening and closing many contexts releases them', () => {
  for (let i = 0; i < 20; i++) open().close();
});
