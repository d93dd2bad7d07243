/**
 * The rxe bugs kernel/patches fixes, checked on the rdma_rxe the VM loaded (RDMA_NODE_RXE: `npm test`
 * runs the device suite on the stock module, then this file and the ODP suite again with `--rxe patched`):
 * - ODP data placement (0001): on the patched module every byte of writes, reads and sends (RC and UD) at
 *   any page offset, across pages, beyond the MTU and into an ODP region that starts mid-page lands where
 *   it belongs; on the stock module the misplacement shows (and is what these checks count). Atomics on
 *   ODP (their own code path, which adds the page offset) are right on both, at every 8-byte slot.
 * - Invalidating a type-2 window that is not bound (0002): on the patched module the kernel refuses it (an
 *   error completion) and lives; on the stock module only the binding's own refusal is run, since the
 *   kernel would dereference a NULL pointer.
 * - QP1 after a connection management MAD failed to go out while the link was down (0003, 0004): on the
 *   patched module it is back in RTS and the device serves new connections; on the stock module it stays in
 *   ERR, and the binding refuses to listen or connect through it, saying why (shown on a device of the
 *   test's own: rxe0 stays whole). The same two bugs on a user's UD QP whose send cannot be routed.
 * - A transport retry count of 7 (0005): on the patched module a send to a responder that went silent (moved
 *   to ERR, or destroyed while the send waited at its RNR NAKs) ends in RETRY_EXC_ERR; on the stock module
 *   it is retried for ever (and a count of 6 ends as it should).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Access, MwType, QpState, RdmaError, UD_GRH_BYTES, WcStatus, WrOpcode, allocate, connect, gsiQpState, listen, odpMissing, openDevice, type CompletionQueue, type QueuePair } from '../../lib';
import { differingBytes } from '../support/memory';
import { QKEY, TIMEOUT, open, pair, random, remoteAccess, udQp } from '../support/fixture';
import { ScratchRxe, gsiState, rxeReady } from '../support/rxe';

const patched = process.env.RDMA_NODE_RXE === 'patched';
const PAGE = 4096;
/** [offset, length] in a three-page ODP region: page starts, mid-page, crossing pages, beyond the 1024-byte MTU. */
const cases: [number, number][] = [
  [0, 1], [1, 100], [100, 1024], [1023, 2], [1000, 3000], [4000, 200], [4095, 4098], [0, 8192], [2000, 9000], [12287, 1],
];

async function status(cq: CompletionQueue): Promise<WcStatus> {
  return (await cq.take(1, TIMEOUT))[0]!.status;
}

test(`ODP data placement on the ${patched ? 'patched' : 'stock'} rdma_rxe: writes, reads and sends at every kind of offset`, async (t) => {
  using context = open();
  if (odpMissing(context.queryDevice().odpCaps, 'rc', remoteAccess) !== undefined) {
    assert.equal(patched, false, 'the patched module is built for kernels with rxe ODP');
    return;
  }
  using p = pair();
  const { pd, qps, cqs } = p.pair;
  const buffer = allocate(3 * PAGE);
  const odp = pd.registerMemory(buffer.bytes, remoteAccess | Access.ON_DEMAND);
  const plain = pd.registerMemory(Buffer.alloc(3 * PAGE));
  const misplaced: Record<string, number> = {};
  const check = (what: string, actual: Uint8Array, expected: Uint8Array): void => {
    misplaced[what] = differingBytes(actual, expected);
  };
  for (const [offset, length] of cases) {
    // RDMA WRITE into the ODP region: the whole region compared, so bytes landing elsewhere count too.
    buffer.bytes.fill(0);
    plain.bytes.set(random(length));
    qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: plain, offset: 0, length }], remote: odp.remote(offset, length) });
    assert.equal(await status(cqs[0]), WcStatus.SUCCESS);
    const expected = Buffer.alloc(3 * PAGE);
    expected.set(plain.bytes.subarray(0, length), offset);
    check(`write ${offset}+${length}`, buffer.bytes, expected);
    // RDMA READ out of it.
    buffer.bytes.set(random(3 * PAGE));
    plain.bytes.fill(0);
    qps[0].postSend({ wrId: 2, opcode: WrOpcode.RDMA_READ, sgList: [{ mr: plain, offset: 0, length }], remote: odp.remote(offset, length) });
    assert.equal(await status(cqs[0]), WcStatus.SUCCESS);
    check(`read ${offset}+${length}`, plain.bytes.subarray(0, length), buffer.bytes.subarray(offset, offset + length));
    // SEND into an ODP receive buffer.
    buffer.bytes.fill(0);
    plain.bytes.set(random(length));
    qps[1].postRecv({ wrId: 3, sgList: [{ mr: odp, offset, length }] });
    qps[0].postSend({ wrId: 4, opcode: WrOpcode.SEND, sgList: [{ mr: plain, offset: 0, length }] });
    assert.equal(await status(cqs[0]), WcStatus.SUCCESS);
    assert.equal(await status(cqs[1]), WcStatus.SUCCESS);
    const sent = Buffer.alloc(3 * PAGE);
    sent.set(plain.bytes.subarray(0, length), offset);
    check(`send ${offset}+${length}`, buffer.bytes, sent);
  }
  // An ODP region starting mid-page: its first byte is byte 100 of the buffer.
  const unaligned = allocate(2 * PAGE);
  const inner = pd.registerMemory(unaligned.bytes, remoteAccess | Access.ON_DEMAND, { offset: 100, length: 4000 });
  plain.bytes.set(random(4000));
  qps[0].postSend({ wrId: 5, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: plain, offset: 0, length: 4000 }], remote: inner.remote() });
  assert.equal(await status(cqs[0]), WcStatus.SUCCESS);
  const around = Buffer.alloc(2 * PAGE);
  around.set(plain.bytes.subarray(0, 4000), 100);
  check('write into a region starting at byte 100', unaligned.bytes, around);

  const wrong = Object.entries(misplaced).filter(([, count]) => count > 0);
  t.diagnostic(`misplaced bytes: ${wrong.length === 0 ? 'none' : wrong.map(([what, count]) => `${what}: ${count}`).join(', ')}`);
  if (patched) assert.deepEqual(wrong, [], 'every byte in place');
  // The stock module puts each packet at the start of its page: everything not at a page start shows it.
  else assert.ok(misplaced['write 100+1024']! > 0 && misplaced['read 1000+3000']! > 0 && misplaced['send 4000+200']! > 0, 'the stock misplacement');
  assert.equal(misplaced['write 0+1'], 0, 'a one-byte write at a page start lands on either module');
});

function odpMissingHere(transport: 'rc' | 'ud', access: number): boolean {
  using context = open();
  const missing = odpMissing(context.queryDevice().odpCaps, transport, access);
  if (missing !== undefined) assert.equal(patched, false, 'the patched module is built for kernels with rxe ODP');
  return missing !== undefined;
}

test(`ODP atomics on the ${patched ? 'patched' : 'stock'} rdma_rxe: fetch-and-add at every 8-byte slot of three pages, compare-and-swap on one`, async () => {
  if (odpMissingHere('rc', remoteAccess)) return;
  using p = pair();
  const { pd, qps, cqs } = p.pair;
  const SLOTS = (3 * PAGE) / 8;
  const buffer = allocate(3 * PAGE);
  const odp = pd.registerMemory(buffer.bytes, remoteAccess | Access.ON_DEMAND);
  const words = new BigUint64Array(buffer.bytes.buffer, buffer.bytes.byteOffset, SLOTS);
  const initial = (slot: number): bigint => BigInt(slot) * 0x1_0000_0001n + 7n;
  for (let slot = 0; slot < SLOTS; slot++) words[slot] = initial(slot);
  const results = pd.registerMemory(Buffer.alloc(SLOTS * 8));
  const returned = new BigUint64Array(results.bytes.buffer, results.bytes.byteOffset, SLOTS);
  const run = async (opcode: WrOpcode, slots: number[], fields: (slot: number) => { compareAdd: bigint; swap?: bigint }): Promise<void> => {
    for (let first = 0; first < slots.length; first += 32) {
      const batch = slots.slice(first, first + 32);
      qps[0].postSend(batch.map((slot) => ({
        wrId: slot, opcode, ...fields(slot), sgList: [{ mr: results, offset: slot * 8, length: 8 }], remote: odp.remote(slot * 8, 8),
      })));
      const completions = await cqs[0].take(batch.length, TIMEOUT);
      assert.deepEqual(new Set(completions.map((c) => c.statusName)), new Set(['SUCCESS']));
    }
  };
  const every = Array.from({ length: SLOTS }, (_, slot) => slot);
  await run(WrOpcode.ATOMIC_FETCH_AND_ADD, every, (slot) => ({ compareAdd: BigInt(slot + 1) }));
  const wrongAdd = every.filter((slot) => returned[slot] !== initial(slot) || words[slot] !== initial(slot) + BigInt(slot + 1));
  assert.deepEqual(wrongAdd, [], 'each add returned its slot\'s value and changed that slot alone');
  // Compare-and-swap over the middle page: even slots compare equal and swap, odd ones do not.
  const middle = every.slice(PAGE / 8, (2 * PAGE) / 8);
  const before = words.slice();
  await run(WrOpcode.ATOMIC_CMP_AND_SWP, middle, (slot) => ({ compareAdd: slot % 2 === 0 ? before[slot]! : 1n, swap: ~BigInt(slot) & 0xffff_ffff_ffff_ffffn }));
  const wrongSwap = every.filter((slot) => {
    const swapped = middle.includes(slot) && slot % 2 === 0;
    return words[slot] !== (swapped ? ~BigInt(slot) & 0xffff_ffff_ffff_ffffn : before[slot]) || (middle.includes(slot) && returned[slot] !== before[slot]);
  });
  assert.deepEqual(wrongSwap, [], 'each compare-and-swap returned the old value and swapped only on a match');
});

test(`UD sends out of and into ODP buffers on the ${patched ? 'patched' : 'stock'} rdma_rxe, at every kind of offset`, async (t) => {
  if (odpMissingHere('ud', Access.LOCAL_WRITE)) return;
  using context = open();
  const pd = context.allocPd();
  const [a, b] = [udQp(context, pd), udQp(context, pd)];
  const gidIndex = context.defaultGidIndex();
  const gid = context.gidTable().find((e) => e.index === gidIndex && e.portNum === 1)!;
  const ah = pd.createAh({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gidIndex, hopLimit: 1 } });
  const sendBuffer = allocate(3 * PAGE);
  const receiveBuffer = allocate(3 * PAGE);
  const source = pd.registerMemory(sendBuffer.bytes, Access.LOCAL_WRITE | Access.ON_DEMAND);
  const target = pd.registerMemory(receiveBuffer.bytes, Access.LOCAL_WRITE | Access.ON_DEMAND);
  const misplaced: Record<string, number> = {};
  // [offset, payload length]: the GRH slot and the payload start at or off page starts, or straddle one.
  for (const [offset, length] of [[0, 1000], [100, 1024], [4056, 64], [4090, 500], [8000, 1024], [PAGE, 1]] as [number, number][]) {
    receiveBuffer.bytes.fill(0);
    const payload = random(length);
    sendBuffer.bytes.set(payload, offset);
    b.qp.postRecv({ wrId: 1, sgList: [{ mr: target, offset, length: UD_GRH_BYTES + length }] });
    a.qp.postSend({ wrId: 2, opcode: WrOpcode.SEND, sgList: [{ mr: source, offset, length }], ud: { ah, remoteQpn: b.qp.qpNum, remoteQkey: QKEY } });
    assert.equal((await a.cq.take(1, TIMEOUT))[0]!.status, WcStatus.SUCCESS);
    const [received] = await b.cq.take(1, TIMEOUT);
    assert.equal(received!.status, WcStatus.SUCCESS);
    assert.equal(received!.byteLen, UD_GRH_BYTES + length);
    const at = offset + UD_GRH_BYTES;
    misplaced[`UD ${offset}+${length}`] = differingBytes(receiveBuffer.bytes.subarray(at, at + length), payload) +
      // Nothing may land outside the receive's bytes.
      receiveBuffer.bytes.subarray(0, offset).reduce((n, byte) => n + Number(byte !== 0), 0) +
      receiveBuffer.bytes.subarray(at + length).reduce((n, byte) => n + Number(byte !== 0), 0);
  }
  const wrong = Object.entries(misplaced).filter(([, count]) => count > 0);
  t.diagnostic(`misplaced bytes: ${wrong.length === 0 ? 'none' : wrong.map(([what, count]) => `${what}: ${count}`).join(', ')}`);
  if (patched) assert.deepEqual(wrong, [], 'every byte in place');
  else assert.ok(misplaced['UD 100+1024']! > 0, 'the stock misplacement');
});

/** Closes the pair's QPs in error and checks that a fresh pair still moves bytes: the kernel lived. */
async function kernelLives(): Promise<void> {
  using fresh = pair();
  const { pd, qps, cqs } = fresh.pair;
  const source = pd.registerMemory(random(256));
  const target = pd.registerMemory(Buffer.alloc(256));
  qps[1].postRecv({ sgList: [{ mr: target }] });
  qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: source }] });
  assert.equal(await status(cqs[0]), WcStatus.SUCCESS);
  assert.equal(await status(cqs[1]), WcStatus.SUCCESS);
  assert.deepEqual(target.bytes, source.bytes);
}

test(`invalidating a type-2 window that is not bound, on the ${patched ? 'patched' : 'stock'} rdma_rxe`, async () => {
  using p = pair();
  const { pd, qps, cqs } = p.pair;
  const own = pd.allocMw(MwType.TYPE_2);
  // A window of this context: the binding knows it is not bound and refuses before the kernel sees it.
  assert.throws(() => qps[0].postSend({ opcode: WrOpcode.LOCAL_INV, invalidateRkey: own.rkey }), (e: RdmaError) => e.code === 'EINVAL' && e.verb === 'ibv_post_send');
  if (!patched) return; // the stock kernel would oops on what follows
  // A window of another context of the device: the binding cannot know it; the patched kernel refuses it.
  using other = open();
  const foreign = other.allocPd().allocMw(MwType.TYPE_2);
  qps[0].postSend({ wrId: 1, opcode: WrOpcode.LOCAL_INV, invalidateRkey: foreign.rkey });
  assert.notEqual(await status(cqs[0]), WcStatus.SUCCESS, 'LOCAL_INV of an unbound window completes in error');
  await kernelLives();
  // A peer's SEND_WITH_INV naming it: the responder refuses the invalidation and completes the receive
  // with REM_INV_REQ_ERR (class J; rxe has acknowledged the send by then, so the sender's completes).
  using q = pair();
  const source = q.pair.pd.registerMemory(random(64));
  const target = q.pair.pd.registerMemory(Buffer.alloc(64));
  q.pair.qps[1].postRecv({ sgList: [{ mr: target }] });
  q.pair.qps[0].postSend({ opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: foreign.rkey, sgList: [{ mr: source }] });
  assert.equal(await status(q.pair.cqs[1]), WcStatus.REM_INV_REQ_ERR, 'the receive names the refused invalidation');
  await q.pair.cqs[0].take(1, TIMEOUT);
  await kernelLives();
});

test(`QP1 after a connection's DREQ could not go out with the link down, on the ${patched ? 'patched' : 'stock'} rdma_rxe: ${patched ? 'back in RTS, new connections get through' : 'left in ERR, listen and connect refused with EIO'}`, { timeout: 180_000 }, async (t) => {
  const scratch = await ScratchRxe.create('rxe_fix', '10.78.0.1');
  const { name, address } = scratch;
  try {
    const listener = await listen(address, 7600, { keepaliveMs: 0 });
    const [client, server] = await Promise.all([connect(address, 7600, { keepaliveMs: 0 }), listener.accept()]);
    listener.close();
    scratch.setLink('down');
    // Each close sends a DREQ through QP1, which rxe cannot route now: the send fails in the requester.
    await Promise.all([client.close(), server.close()]);
    scratch.setLink('up');
    await rxeReady(name, address);
    const state = gsiState(name);
    t.diagnostic(`QP1 ${state}`);
    assert.equal(state, patched ? 'RTS' : 'ERR');
    assert.equal(QpState[gsiQpState(name)], state);
    if (!patched) {
      // Through that port no request can come in nor a connect go out: the binding says so at once.
      const dead = (verb: string) => (error: RdmaError) => error.code === 'EIO' && error.verb === verb && /QP1 of rxe_fix port 1/.test(error.message);
      await assert.rejects(listen(address, 7601), dead('rdma_listen'));
      await assert.rejects(connect(address, 7601, { timeoutMs: 15_000 }), dead('rdma_connect'));
      return;
    }
    const again = await listen(address, 7601);
    try {
      const [newClient, newServer] = await Promise.all([connect(address, 7601, { timeoutMs: 15_000 }), again.accept()]);
      await newClient.send(Buffer.from('after the link came back'));
      assert.equal((await newServer.receive(TIMEOUT)).toString(), 'after the link came back');
      await Promise.all([newClient.close(), newServer.close()]);
    } finally {
      again.close();
    }
  } finally {
    await scratch.close();
  }
});

test(`a UD send that cannot be routed, on the ${patched ? 'patched' : 'stock'} rdma_rxe: ${patched ? 'its own error, the QP in SQE with its receives kept, sending again once back in RTS' : 'reported as flushed, the QP in ERR with its receives flushed'}`, { timeout: 120_000 }, async () => {
  const scratch = await ScratchRxe.create('rxe_ud', '10.78.1.1');
  try {
    using context = openDevice(scratch.name);
    const pd = context.allocPd();
    const [a, b] = [udQp(context, pd), udQp(context, pd)];
    const gid = context.gidTable().find((entry) => entry.ipv4 === scratch.address)!;
    const ah = pd.createAh({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gid.index, hopLimit: 1 } });
    const source = pd.registerMemory(random(64));
    const [intoA, intoB] = [pd.registerMemory(Buffer.alloc(UD_GRH_BYTES + 64)), pd.registerMemory(Buffer.alloc(UD_GRH_BYTES + 64))];
    const send = (from: typeof a, to: typeof b, wrId: number) =>
      from.qp.postSend({ wrId, opcode: WrOpcode.SEND, sgList: [{ mr: source }], ud: { ah, remoteQpn: to.qp.qpNum, remoteQkey: QKEY } });
    a.qp.postRecv({ wrId: 10, sgList: [{ mr: intoA }] });
    scratch.setLink('down');
    send(a, b, 1);
    const [failed] = await a.cq.take(1, TIMEOUT);
    assert.equal(failed!.wrId, 1n);
    if (!patched) {
      assert.equal(failed!.status, WcStatus.WR_FLUSH_ERR, 'the failed send is reported as flushed');
      assert.equal(a.qp.state, QpState.ERR);
      const [flushed] = await a.cq.take(1, TIMEOUT);
      assert.deepEqual([flushed!.wrId, flushed!.status], [10n, WcStatus.WR_FLUSH_ERR], 'the receive queue went with it');
      return;
    }
    assert.equal(failed!.status, WcStatus.LOC_QP_OP_ERR, 'the send reports its own error');
    assert.equal(a.qp.state, QpState.SQE);
    assert.equal(a.cq.poll().count, 0, 'the receive is still posted');
    scratch.setLink('up');
    await rxeReady(scratch.name, scratch.address);
    a.qp.modify({ qpState: QpState.RTS, curQpState: QpState.SQE });
    b.qp.postRecv({ wrId: 20, sgList: [{ mr: intoB }] });
    send(a, b, 2);
    send(b, a, 3);
    for (const [side, into] of [[a, intoA], [b, intoB]] as const) {
      const completions = await side.cq.take(2, TIMEOUT);
      assert.deepEqual(completions.map((wc) => wc.status), [WcStatus.SUCCESS, WcStatus.SUCCESS]);
      assert.deepEqual(into.bytes.subarray(UD_GRH_BYTES), source.bytes, 'the datagram arrived');
    }
  } finally {
    await scratch.close();
  }
});

/** How a responder goes silent: moved to ERR (rxe drops what reaches it), or destroyed while the send waits at its RNR. */
const silences = {
  'moved to ERR': async (responder: QueuePair) => responder.modify({ qpState: QpState.ERR }),
  'destroyed while the send waits at RNR': async (responder: QueuePair) => {
    await sleep(500); // RNR NAKs go back and forth meanwhile
    responder.close();
  },
};

for (const [silence, silenceResponder] of Object.entries(silences)) {
  test(`an RC send whose responder is ${silence}, on the ${patched ? 'patched' : 'stock'} rdma_rxe: ${patched ? 'RETRY_EXC_ERR after 7 retries' : 'retry count 7 retries for ever, 6 ends in RETRY_EXC_ERR'}`, async () => {
    using context = open();
    const pd = context.allocPd();
    const source = pd.registerMemory(random(64));
    /** A loopback RC pair (timeout 12: 16 ms; RNR retried for ever), a SEND posted, its responder silenced. */
    const sendToSilentResponder = async (retryCnt: number) => {
      const cq = context.createCq(16, { channel: true });
      const [requester, responder] = [0, 1].map(() => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 4, maxRecvWr: 4 })) as [QueuePair, QueuePair];
      requester.connect(responder.address(), { timeout: 12, retryCnt, rnrRetry: 7 });
      responder.connect(requester.address(), { timeout: 12, retryCnt, rnrRetry: 7 });
      requester.postSend({ wrId: 1, opcode: WrOpcode.SEND, sgList: [{ mr: source }] });
      await silenceResponder(responder);
      return { cq, requester };
    };
    const exhausted = async (retryCnt: number) => {
      const { cq, requester } = await sendToSilentResponder(retryCnt);
      assert.equal(await status(cq), WcStatus.RETRY_EXC_ERR, `retry count ${retryCnt}: the retries run out`);
      assert.equal(requester.state, QpState.ERR);
    };
    if (patched) {
      await exhausted(7); // awaited here: the context is disposed when this function returns
      return;
    }
    await exhausted(6);
    // 7 is a count like any other (only the RNR retry count's 7 means "for ever"), but stock rxe never
    // stops: 5 s is over 300 timeouts, and the send is still outstanding, the QP still in RTS.
    const { cq, requester } = await sendToSilentResponder(7);
    await assert.rejects(cq.take(1, { timeoutMs: 5_000 }), (error: RdmaError) => error.code === 'ETIMEDOUT');
    assert.equal(requester.state, QpState.RTS);
    requester.modify({ qpState: QpState.ERR });
    assert.equal(await status(cq), WcStatus.WR_FLUSH_ERR, 'only moving the QP to ERR ends the send');
  });
}
