/**
 * Faults with a bounded outcome, each asserted: receivers without buffers (RNR), an SRQ run dry, pinned
 * memory over RLIMIT_MEMLOCK, objects over an rdma cgroup's limits, a process exiting with traffic in
 * flight, and a hundred worker threads opening, posting and exiting (some terminated mid-operation).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import {
  QpState, QpType, RdmaError, WcStatus, WrOpcode,
  type CompletionQueue, type ConnectOptions, type ProtectionDomain, type QueuePair,
} from '../../lib';
import { TIMEOUT, deviceName, kernelObjects, open } from '../support/fixture';
import { waitFor } from '../support/processes';

const child = join(__dirname, 'faults-child.js');
const env = { ...process.env, RDMA_NODE_DEVICE: deviceName() };

/** Runs faults-child.js MODE under `wrapper` (a command prefix); its JSON line. */
function runChild(mode: string, wrapper: string[] = []): Record<string, any> {
  const run = spawnSync(wrapper[0] ?? process.execPath, [...wrapper.slice(1), ...(wrapper.length ? [process.execPath] : []), child, mode], { encoding: 'utf8', env, timeout: 120_000 });
  assert.equal(run.status, 0, `${mode}: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!);
}

/** Two RC QPs on one CQ each, connected with `options`. */
function connected(pd: ProtectionDomain, options: ConnectOptions): { qps: [QueuePair, QueuePair]; cqs: [CompletionQueue, CompletionQueue] } {
  const cqs = [pd.context.createCq(64, { channel: true }), pd.context.createCq(64, { channel: true })] as [CompletionQueue, CompletionQueue];
  const qps = [
    pd.createQp({ qpType: QpType.RC, sendCq: cqs[0], recvCq: cqs[0], maxSendWr: 64, maxRecvWr: 64 }),
    pd.createQp({ qpType: QpType.RC, sendCq: cqs[1], recvCq: cqs[1], maxSendWr: 64, maxRecvWr: 64 }),
  ] as [QueuePair, QueuePair];
  qps[0].connect(qps[1].address(), options);
  qps[1].connect(qps[0].address(), options);
  return { qps, cqs };
}

const statuses = (completions: { statusName: string }[]): string[] => [...new Set(completions.map((c) => c.statusName))];

test('a receiver without buffers: a bounded RNR retry fails the send with RNR_RETRY_EXC_ERR and the QP reconnects; an unbounded one delivers all once buffers come', async () => {
  using context = open();
  const pd = context.allocPd();
  const source = pd.registerMemory(Buffer.alloc(32 * 64));
  const target = pd.registerMemory(Buffer.alloc(32 * 64));
  for (let i = 0; i < 32; i++) source.bytes.fill(i + 1, i * 64, (i + 1) * 64);
  const send = (qp: QueuePair, i: number): void => qp.postSend({ wrId: i, opcode: WrOpcode.SEND, sgList: [{ mr: source, offset: i * 64, length: 64 }] });

  const bounded = connected(pd, { rnrRetry: 1, minRnrTimer: 1 });
  for (let i = 0; i < 4; i++) send(bounded.qps[0], i);
  const failed = await bounded.cqs[0].take(4, TIMEOUT);
  assert.equal(failed[0]!.status, WcStatus.RNR_RETRY_EXC_ERR);
  assert.deepEqual(statuses(failed.slice(1)), ['WR_FLUSH_ERR'], 'what followed is flushed');
  assert.equal(bounded.qps[0].state, QpState.ERR);
  // Back to RESET and connected again (the peer too: it saw nothing wrong but must match the new PSNs).
  for (const qp of bounded.qps) qp.modify({ qpState: QpState.RESET });
  bounded.qps[0].connect(bounded.qps[1].address());
  bounded.qps[1].connect(bounded.qps[0].address());
  bounded.qps[1].postRecv({ sgList: [{ mr: target, offset: 0, length: 64 }] });
  send(bounded.qps[0], 0);
  assert.deepEqual(statuses(await bounded.cqs[0].take(1, TIMEOUT)), ['SUCCESS']);
  assert.deepEqual(statuses(await bounded.cqs[1].take(1, TIMEOUT)), ['SUCCESS']);

  // rnrRetry 7 retries for ever: 32 sends wait, nothing completes, until the receives are posted.
  const patient = connected(pd, { rnrRetry: 7, minRnrTimer: 1 });
  for (let i = 0; i < 32; i++) send(patient.qps[0], i);
  await assert.rejects(patient.cqs[0].take(1, { timeoutMs: 1000 }), (e: RdmaError) => e.code === 'ETIMEDOUT');
  target.bytes.fill(0);
  for (let i = 0; i < 32; i++) patient.qps[1].postRecv({ wrId: i, sgList: [{ mr: target, offset: i * 64, length: 64 }] });
  assert.deepEqual(statuses(await patient.cqs[0].take(32, TIMEOUT)), ['SUCCESS']);
  const received = await patient.cqs[1].take(32, TIMEOUT);
  assert.deepEqual(received.map((c) => Number(c.wrId)), [...Array(32).keys()], 'in order');
  assert.deepEqual(Buffer.from(target.bytes), Buffer.from(source.bytes), 'every byte arrived');
});

test('an SRQ run dry holds two senders at RNR until it is refilled; then every message arrives once', async () => {
  using context = open();
  const pd = context.allocPd();
  const srq = pd.createSrq({ maxWr: 32, maxSge: 1 });
  const cq = context.createCq(64, { channel: true });
  const receivers = [0, 1].map(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, srq, maxSendWr: 4 }));
  const senderCq = context.createCq(64, { channel: true });
  const senders = [0, 1].map(() => pd.createQp({ qpType: QpType.RC, sendCq: senderCq, recvCq: senderCq, maxSendWr: 16, maxRecvWr: 1 }));
  senders.forEach((qp, i) => {
    qp.connect(receivers[i]!.address(), { rnrRetry: 7, minRnrTimer: 1 });
    receivers[i]!.connect(qp.address(), { rnrRetry: 7, minRnrTimer: 1 });
  });
  const sent = Buffer.alloc(2 * 6 * 8);
  for (let i = 0; i < 12; i++) sent.writeUInt32LE(0xc0de0000 + i, i * 8);
  const source = pd.registerMemory(sent);
  const arrivals = Buffer.alloc(12 * 8);
  const target = pd.registerMemory(arrivals);
  const receive = (slot: number): void => srq.postRecv({ wrId: slot, sgList: [{ mr: target, offset: slot * 8, length: 8 }] });
  for (let slot = 0; slot < 4; slot++) receive(slot);
  senders.forEach((qp, s) => {
    for (let i = 0; i < 6; i++) qp.postSend({ wrId: s * 6 + i, opcode: WrOpcode.SEND, sgList: [{ mr: source, offset: (s * 6 + i) * 8, length: 8 }] });
  });
  assert.equal((await cq.take(4, TIMEOUT)).length, 4, 'the four receives are used');
  await assert.rejects(cq.take(1, { timeoutMs: 1000 }), (e: RdmaError) => e.code === 'ETIMEDOUT', 'the rest wait: the SRQ is dry');
  for (let slot = 4; slot < 12; slot++) receive(slot);
  await cq.take(8, TIMEOUT);
  assert.deepEqual(statuses(await senderCq.take(12, TIMEOUT)), ['SUCCESS']);
  const arrived = [...Array(12).keys()].map((slot) => arrivals.readUInt32LE(slot * 8) - 0xc0de0000).sort((a, b) => a - b);
  assert.deepEqual(arrived, [...Array(12).keys()], 'each message once');
});

test('pinned memory over RLIMIT_MEMLOCK (without CAP_IPC_LOCK) is an RdmaError ENOMEM and registers nothing; what fits still registers', () => {
  const limited = ['prlimit', '--memlock=262144:262144', 'setpriv', '--inh-caps=-ipc_lock', '--ambient-caps=-ipc_lock', '--bounding-set=-ipc_lock'];
  const result = runChild('memlock', limited);
  assert.deepEqual(result.refused, { code: 'ENOMEM', errno: 12, verb: 'ibv_reg_mr' });
  assert.deepEqual(result.after, result.before, 'no MR half-made in the kernel');
  assert.equal(result.small, result.before.mr + 1);
});

test("QPs, MRs and contexts over an rdma cgroup's limits are RdmaError EAGAIN; nothing is left half-made and closing makes room", () => {
  const cgroup = `/sys/fs/cgroup/rdma-node-faults-${process.pid}`;
  writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+rdma');
  mkdirSync(cgroup);
  try {
    // One context; 20 objects: the PD and the CQ, then QPs (or MRs) until refused.
    writeFileSync(join(cgroup, 'rdma.max'), `${deviceName()} hca_handle=1 hca_object=20`);
    const result = runChild('objects', ['sh', '-c', `echo $$ > ${cgroup}/cgroup.procs && exec "$@"`, 'sh']);
    for (const kind of ['qp', 'mr'] as const) {
      assert.deepEqual(result[kind].refused, { code: 'EAGAIN', errno: 11, verb: kind === 'qp' ? 'ibv_create_qp' : 'ibv_reg_mr' });
      assert.equal(result[kind].count, 18, `${kind}s up to the limit`);
      assert.equal(result[kind].kernel[kind], 18, `the kernel holds exactly the ${kind}s made`);
    }
    assert.equal(result.context.code, 'EAGAIN', 'a second context is over hca_handle=1');
    assert.deepEqual(result.afterClose, { pd: 1, cq: 1, qp: 0, mr: 0 });
    assert.deepEqual(result.again, { pd: 1, cq: 1, qp: 1, mr: 0 });
  } finally {
    rmdirSync(cgroup);
  }
});

test('process.exit() with traffic in flight and everything open: the process ends and the kernel lets go of all it held', async () => {
  const result = runChild('exit');
  assert.ok(result.kernel.qp >= 2 && result.kernel.mr >= 2, 'it held objects when it exited');
  await waitFor(() => Object.values(kernelObjects(result.pid)).every((n) => n === 0), 'the exited process\'s objects to go', 30_000);
});

test('100 worker threads open the device, register and post; a third are terminated mid-operation: no crash, no kernel object or fd left', async () => {
  const uverbsFds = (): number => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('/dev/infiniband/uverbs');
    } catch {
      return false;
    }
  }).length;
  const before = { kernel: kernelObjects(), fds: uverbsFds() };
  const script = `
    const { parentPort, workerData } = require('node:worker_threads');
    // Only the modules used: loading JS is most of a worker's life in the emulated VM.
    const { openDevice } = require(workerData.lib + '/verbs/device');
    const { createLoopbackPair } = require(workerData.lib + '/endpoint/loopback');
    const { Access, WrOpcode } = require(workerData.lib + '/verbs/constants');
    const context = openDevice(workerData.device);
    const loop = createLoopbackPair(context, { maxSendWr: 64 });
    const source = loop.pd.registerMemory(Buffer.alloc(4096, 1));
    const target = loop.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE | Access.REMOTE_WRITE);
    const post = () => loop.qps[0].postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
    (async () => {
      for (let i = 0; i < 8; i++) post();
      parentPort.postMessage('posting');
      for (let round = 0; round < 4; round++) {
        await loop.cqs[0].take(8);
        for (let i = 0; i < 8; i++) post();
      }
      parentPort.postMessage('done');
    })();
  `;
  const workerData = { lib: join(__dirname, '..', '..', 'lib'), device: deviceName() };
  const outcomes = { finished: 0, terminated: 0 };
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all([...Array(10).keys()].map(async (i) => {
      const worker = new Worker(script, { eval: true, workerData });
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      const error = new Promise((_, reject) => worker.once('error', reject));
      await Promise.race([new Promise((resolve) => worker.once('message', resolve)), error]);
      if ((batch * 10 + i) % 3 === 0) {
        await worker.terminate(); // mid-operation: writes in flight, a take() pending
        outcomes.terminated++;
      } else {
        await Promise.race([new Promise((resolve) => worker.on('message', (m) => m === 'done' && resolve(m))), error]);
        await worker.terminate();
        outcomes.finished++;
      }
      await exited;
    }));
  }
  assert.deepEqual(outcomes, { finished: 66, terminated: 34 });
  assert.deepEqual(kernelObjects(), before.kernel, 'no PD, CQ, QP or MR of a worker is left in the kernel');
  assert.equal(uverbsFds(), before.fds, 'no uverbs fd is left open');
  using context = open();
  assert.ok(context.queryDevice().maxQp > 0, 'the device is still usable');
});
