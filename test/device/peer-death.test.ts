/**
 * A raw RC peer SIGKILLed during RDMA traffic: the survivor's pending work completes in error within a
 * bounded time (REM_ACCESS_ERR while the dying peer's QP outlives its region, else the requester runs out of
 * transport retries: rxe drops packets for a QP that is gone), and its CQ, PD and memory (registered
 * directly, or through a registration cache) serve a new connection at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

import {
  QpState, WcStatus, WrOpcode, allocate, type CompletionQueue, type MemoryRegion, type QpAddress, type QueuePair, type RemoteRegion, type Completion,
} from '../../lib';
import { TIMEOUT, deviceName, open, random, remoteAccess } from '../support/fixture';

/** A raw RC peer process (rc-peer.ts) connected to `qp`, with its writable region; kill() SIGKILLs it. */
async function rcPeer(qp: QueuePair): Promise<{ remote: RemoteRegion; kill(): Promise<void> }> {
  const peer = spawn(process.execPath, [join(__dirname, '..', 'support', 'rc-peer.js'), deviceName()], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: peer.stdout! })[Symbol.asyncIterator]();
  const hello = JSON.parse((await lines.next()).value as string) as { address: QpAddress; region: { addr: string; rkey: number; length: number } };
  qp.connect(hello.address, { timeout: 12, retryCnt: 3 });
  peer.stdin!.write(`${JSON.stringify(qp.address())}\n`);
  assert.equal((await lines.next()).value, 'connected');
  return {
    remote: { ...hello.region, addr: BigInt(hello.region.addr) },
    kill: async () => {
      peer.kill('SIGKILL');
      await once(peer, 'exit');
    },
  };
}

/**
 * Keeps 32 RDMA writes in flight (`write(wrId)` posts one, `taken` sees each completion), kills the peer
 * after the first 16 complete and goes on posting until a failure comes back, so that the death lands
 * mid-transfer however fast the writes are (a fixed batch can all complete before the kill lands on a slow
 * host, as under the sanitizers); then takes the rest. Returns every completion.
 */
async function writeThroughDeath(cq: CompletionQueue, peer: { kill(): Promise<void> }, write: (wrId: number) => void, taken: (completion: Completion) => void = () => {}): Promise<Completion[]> {
  let posted = 0;
  for (; posted < 32; posted++) write(posted);
  const completions: Completion[] = [];
  let killed: Promise<void> | undefined;
  const take = async (): Promise<Completion> => {
    const [completion] = await cq.take(1, { timeoutMs: 120_000 });
    taken(completion!);
    completions.push(completion!);
    return completion!;
  };
  while ((await take()).status === WcStatus.SUCCESS) {
    if (completions.length === 16) killed = peer.kill();
    write(posted++);
  }
  await (killed ?? peer.kill());
  while (completions.length < posted) await take();
  return completions;
}

/**
 * The writes in flight when the peer died: at least one fails, the first by the death (which depends on
 * where the dying peer's teardown was: its region already deregistered while its QP still answered, the
 * kernel destroying a process's objects newest first: REM_ACCESS_ERR; or its QP gone, packets dropped until
 * the retries run out: RETRY_EXC_ERR), the rest flushed, and the QP is in ERR. Returns the failures.
 */
function assertFailedByDeath(completions: Completion[], qp: QueuePair): Completion[] {
  const failed = completions.filter((c) => c.status !== WcStatus.SUCCESS);
  assert.ok(failed.length > 0, 'writes in flight when the peer died fail');
  assert.ok([WcStatus.REM_ACCESS_ERR, WcStatus.RETRY_EXC_ERR].includes(failed[0]!.status), failed[0]!.statusName);
  assert.deepEqual(new Set(failed.slice(1).map((c) => c.statusName)), failed.length > 1 ? new Set(['WR_FLUSH_ERR']) : new Set(), 'the rest are flushed');
  assert.equal(qp.state, QpState.ERR);
  return failed;
}

test('a peer SIGKILLed during RDMA writes: the survivor\'s writes complete in error, then its CQ, PD and memory serve a new connection', async (t) => {
  using context = open();
  const pd = context.allocPd();
  const cq = context.createCq(256, { channel: true });
  const qp = pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 128 });
  const source = pd.registerMemory(random(64 << 10));

  const peer = await rcPeer(qp);
  const { remote } = peer;

  const write = (wrId: number): void => qp.postSend({ wrId, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: { ...remote, length: source.length } });
  for (let i = 0; i < 8; i++) write(i);
  assert.deepEqual(new Set((await cq.take(8, TIMEOUT)).map((c) => c.statusName)), new Set(['SUCCESS']), 'traffic flows to the live peer');
  const completions = await writeThroughDeath(cq, peer, (wrId) => write(100 + wrId));
  const failed = assertFailedByDeath(completions, qp);
  t.diagnostic(`${completions.length - failed.length} of ${completions.length} writes completed, ${failed.length} failed; the first failure: ${failed[0]?.statusName}`);

  // The same CQ, PD and source memory serve a new connection.
  const target = pd.registerMemory(Buffer.alloc(source.length), remoteAccess);
  const [a, b] = [0, 1].map(() => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 4 }));
  a!.connect(b!.address());
  b!.connect(a!.address());
  a!.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
  assert.equal((await cq.take(1, TIMEOUT))[0]!.status, WcStatus.SUCCESS);
  assert.deepEqual(Buffer.from(target.bytes), Buffer.from(source.bytes));
});

test('a peer SIGKILLed during registration-cache-backed writes: they fail typed, and the cache\'s registrations serve a new connection as hits', async (t) => {
  using context = open();
  const pd = context.allocPd();
  const cq = context.createCq(256, { channel: true });
  const qp = pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 128 });
  using cache = pd.createRegistrationCache();
  const buffers = Array.from({ length: 8 }, () => {
    const buffer = allocate(16 << 10);
    buffer.bytes.set(random(buffer.bytes.length));
    return buffer;
  });
  const peer = await rcPeer(qp);
  // Each write holds its cached region while in flight, as a transfer through the cache does.
  const inFlight = new Map<number, MemoryRegion>();
  const write = (wrId: number): void => {
    const region = cache.register(buffers[wrId % buffers.length]!.bytes);
    inFlight.set(wrId, region);
    qp.postSend({ wrId, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: region }], remote: { ...peer.remote, length: region.length } });
  };
  const completions = await writeThroughDeath(cq, peer, write, (completion) => inFlight.get(Number(completion.wrId))!.close());
  const posted = completions.length;
  const failed = assertFailedByDeath(completions, qp);
  const before = cache.stats();
  t.diagnostic(`strategy ${cache.strategy}; ${posted - failed.length} of ${posted} writes completed, ${failed.length} failed; cache ${JSON.stringify(before)}`);
  assert.equal(before.misses, buffers.length, 'one registration per buffer, the other writes hits');

  // The cached registrations outlive the dead connection: a new one takes every buffer as a hit.
  const target = pd.registerMemory(Buffer.alloc(16 << 10), remoteAccess);
  const [a, b] = [0, 1].map(() => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 4 }));
  a!.connect(b!.address());
  b!.connect(a!.address());
  for (const buffer of buffers) {
    using region = cache.register(buffer.bytes);
    a!.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: region }], remote: target.remote() });
    assert.equal((await cq.take(1, TIMEOUT))[0]!.status, WcStatus.SUCCESS);
    assert.deepEqual(Buffer.from(target.bytes), Buffer.from(buffer.bytes));
  }
  assert.deepEqual(cache.stats(), { ...cache.stats(), hits: before.hits + buffers.length, misses: before.misses });
});
