/**
 * A raw RC peer SIGKILLed during RDMA traffic: the survivor's pending work completes in error within a
 * bounded time (REM_ACCESS_ERR while the dying peer's QP outlives its region, else the requester runs out of
 * transport retries: rxe drops packets for a QP that is gone), and
 * its CQ, PD and memory serve a new connection at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

import { QpState, WcStatus, WrOpcode, type QpAddress, type RemoteRegion } from '../../lib';
import { TIMEOUT, deviceName, open, random, remoteAccess } from '../support/fixture';

test('a peer SIGKILLed during RDMA writes: the survivor\'s writes complete in error, then its CQ, PD and memory serve a new connection', async (t) => {
  using context = open();
  const pd = context.allocPd();
  const cq = context.createCq(256, { channel: true });
  const qp = pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 128 });
  const source = pd.registerMemory(random(64 << 10));

  const peer = spawn(process.execPath, [join(__dirname, '..', 'support', 'rc-peer.js'), deviceName()], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: peer.stdout! })[Symbol.asyncIterator]();
  const hello = JSON.parse((await lines.next()).value as string) as { address: QpAddress; region: { addr: string; rkey: number; length: number } };
  const remote: RemoteRegion = { ...hello.region, addr: BigInt(hello.region.addr) };
  qp.connect(hello.address, { timeout: 12, retryCnt: 3 });
  peer.stdin!.write(`${JSON.stringify(qp.address())}\n`);
  assert.equal((await lines.next()).value, 'connected');

  const write = (wrId: number): void => qp.postSend({ wrId, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { ...remote, length: source.length } });
  for (let i = 0; i < 8; i++) write(i);
  assert.deepEqual(new Set((await cq.take(8, TIMEOUT)).map((c) => c.statusName)), new Set(['SUCCESS']), 'traffic flows to the live peer');
  for (let i = 0; i < 64; i++) write(100 + i);
  peer.kill('SIGKILL');
  await once(peer, 'exit');
  const started = Date.now();
  const completions = [];
  while (completions.length < 64) completions.push(...(await cq.take(64 - completions.length, { timeoutMs: 120_000 })));
  const failed = completions.filter((c) => c.status !== WcStatus.SUCCESS);
  t.diagnostic(`${64 - failed.length} writes completed before the peer died; the first failure: ${failed[0]?.statusName}, ${Date.now() - started} ms after the kill`);
  assert.ok(failed.length > 0, 'writes in flight when the peer died fail');
  // Which depends on where the dying peer's teardown was: its region already deregistered while its QP
  // still answered (the kernel destroys a process's objects newest first: REM_ACCESS_ERR), or its QP gone
  // (packets dropped until the retries run out: RETRY_EXC_ERR).
  assert.ok([WcStatus.REM_ACCESS_ERR, WcStatus.RETRY_EXC_ERR].includes(failed[0]!.status), failed[0]!.statusName);
  assert.deepEqual(new Set(failed.slice(1).map((c) => c.statusName)), failed.length > 1 ? new Set(['WR_FLUSH_ERR']) : new Set(), 'the rest are flushed');
  assert.equal(qp.state, QpState.ERR);

  // The same CQ, PD and source memory serve a new connection.
  const target = pd.registerMemory(Buffer.alloc(source.length), remoteAccess);
  const [a, b] = [0, 1].map(() => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 4 }));
  a!.connect(b!.address());
  b!.connect(a!.address());
  a!.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
  assert.equal((await cq.take(1, TIMEOUT))[0]!.status, WcStatus.SUCCESS);
  assert.deepEqual(Buffer.from(target.bytes), Buffer.from(source.bytes));
});
