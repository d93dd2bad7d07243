/**
 * XRC and flow steering on rxe, which has neither: every verb fails with a typed RdmaError naming it
 * (EOPNOTSUPP, as measured), the capability check says so before trying, misuse is a TypeError before any
 * verb, nothing is left behind in the kernel or in file descriptors, and what was made before keeps working.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { QpType, RdmaError, WcStatus, WrOpcode, type Context, type LoopbackPair } from '../../lib';
import { TIMEOUT, kernelObjects, openFds, pair, random } from '../support/fixture';

const unsupported = (verb: string) => (error: unknown): boolean => {
  assert.ok(error instanceof RdmaError, `an RdmaError, got ${String(error)}`);
  assert.equal(error.verb, verb);
  assert.equal(error.code, 'EOPNOTSUPP');
  return true;
};

/** Runs `attempts` against a connected pair, then checks that the pair still moves bytes and that the
 * attempts left no kernel object or descriptor behind. */
async function unaffected(attempts: (t: Pick<LoopbackPair, 'pd' | 'cqs' | 'qps'> & { context: Context }) => void): Promise<void> {
  using t = pair();
  const before = { objects: kernelObjects(), fds: openFds() };
  attempts({ context: t.context, pd: t.pair.pd, cqs: t.pair.cqs, qps: t.pair.qps });
  assert.deepEqual({ objects: kernelObjects(), fds: openFds() }, before, 'nothing left behind');
  const { pd, cqs, qps } = t.pair;
  const source = pd.registerMemory(random(4096));
  const target = pd.registerMemory(Buffer.alloc(4096));
  qps[1].postRecv({ wrId: 1, sgList: [{ mr: target }] });
  qps[0].postSend({ wrId: 2, opcode: WrOpcode.SEND, sgList: [{ mr: source }] });
  for (const cq of cqs) assert.equal((await cq.take(1, TIMEOUT))[0]!.status, WcStatus.SUCCESS);
  assert.deepEqual(target.bytes, source.bytes);
}

test('the capability check says what the verbs would: rxe has neither XRC nor flow steering', () => {
  using t = pair();
  const context: Context = t.context;
  assert.equal(context.supports('xrc'), false);
  assert.equal(context.supports('flow-steering'), false);
  assert.throws(() => context.requireFeature('xrc'), unsupported('ibv_query_device'));
  assert.throws(() => context.requireFeature('flow-steering'), unsupported('ibv_query_device'));
  assert.throws(() => context.supports('rdma-over-carrier-pigeon' as never), TypeError);
});

test('XRC domains: private, by file, by fd: EOPNOTSUPP from ibv_open_xrcd, the file made as xsrq_pingpong makes it', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'xrcd-')), 'domain');
  await unaffected(({ context }) => {
    assert.throws(() => context.openXrcd(), unsupported('ibv_open_xrcd'));
    assert.throws(() => context.openXrcd({ file, exclusive: true }), unsupported('ibv_open_xrcd'));
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o440);
    assert.throws(() => context.openXrcd({ fd: 0, create: false }), unsupported('ibv_open_xrcd'));
    // Misuse is refused before the verb.
    assert.throws(() => context.openXrcd({ file, fd: 0 }), TypeError);
    assert.throws(() => context.openXrcd({ create: false }), TypeError);
    assert.throws(() => context.openXrcd({ fd: -2 }), RangeError);
    assert.throws(() => context.openXrcd({ fd: 1.5 }), RangeError);
    assert.throws(() => context.handle.openXrcd(-1, 0x4000_0000), RangeError);
  });
});

test('XRC and raw packet QPs: EOPNOTSUPP from the verb; an XRC target only on a domain; no receive side on an initiator', async () => {
  await unaffected(({ pd, cqs }) => {
    assert.throws(() => pd.createQp({ qpType: QpType.XRC_SEND, sendCq: cqs[0] }), unsupported('ibv_create_qp_ex'));
    assert.throws(() => pd.createQp({ qpType: QpType.RAW_PACKET, sendCq: cqs[0] }), unsupported('ibv_create_qp'));
    assert.throws(() => pd.createQp({ qpType: QpType.XRC_RECV, sendCq: cqs[0] }), /made on an XRC domain: xrcd.createQp/);
    assert.throws(() => pd.createQp({ qpType: QpType.XRC_SEND, sendCq: cqs[0], recvCq: cqs[1] }), /no receive CQ or SRQ/);
  });
});

test('XRC SRQs: the domain and its CQ are checked before any verb; a basic SRQ has no number', async () => {
  await unaffected(({ pd, cqs }) => {
    assert.throws(() => pd.createSrq({ xrcd: {} as never, cq: cqs[0] }), /xrcd must be an XrcDomain/);
    assert.throws(() => pd.handle.createSrq({ xrcd: pd.handle as never, cq: cqs[0].handle }), TypeError);
    assert.throws(() => pd.handle.createSrq({ cq: cqs[0].handle }), /needs both xrcd and cq/);
    using srq = pd.createSrq({ maxWr: 4 });
    assert.throws(() => srq.srqNum, /only XRC SRQs have a number/);
  });
});

test('the remote SRQ number is only for XRC initiators, in both post APIs', async () => {
  await unaffected(({ pd, qps }) => {
    using mr = pd.registerMemory(random(64));
    const wr = { opcode: WrOpcode.SEND, sgList: [{ mr }], xrc: { remoteSrqn: 7 } };
    assert.throws(() => qps[0].postSend(wr), /remoteSrqn .* only for XRC_SEND QPs/);
    assert.throws(() => qps[0].prepareSend([wr]), /remoteSrqn .* only for XRC_SEND QPs/);
  });
  using extended = pair({ extended: true });
  const mr = extended.pair.pd.registerMemory(random(64));
  assert.throws(() => extended.pair.qps[0].postSend({ opcode: WrOpcode.SEND, sgList: [{ mr }], xrc: { remoteSrqn: 7 } }), /only for XRC_SEND QPs/);
});

test('flow steering: every rule is EOPNOTSUPP from ibv_create_flow; a malformed one is refused before it', async () => {
  await unaffected(({ qps }) => {
    const rule = {
      priority: 1,
      specs: [
        { type: 'eth' as const, value: { dstMac: '02:00:00:00:00:01', etherType: 0x0800 }, mask: { dstMac: 'ff:ff:ff:ff:ff:ff', etherType: 0xffff } },
        { type: 'ipv4' as const, value: { dstIp: '10.0.0.1' }, mask: { dstIp: '255.255.255.255' } },
        { type: 'udp' as const, value: { dstPort: 4791 }, mask: { dstPort: 0xffff } },
      ],
    };
    assert.throws(() => qps[0].createFlow(rule), unsupported('ibv_create_flow'));
    assert.throws(() => qps[1].createFlow({ specs: [{ type: 'drop' }] }), unsupported('ibv_create_flow'));
    assert.throws(() => qps[0].createFlow({ specs: [{ type: 'ipv4', value: { dstIp: '10.0.0.256' } }] }), /not a valid address/);
    assert.throws(() => qps[0].createFlow({ specs: [{ type: 'nope' } as never] }), /spec.type must be/);
  });
});

test('flow counters: EOPNOTSUPP from ibv_create_counters; a count spec must name counters', async () => {
  await unaffected(({ context, qps }) => {
    assert.throws(() => context.createFlowCounters(), unsupported('ibv_create_counters'));
    assert.throws(() => qps[0].createFlow({ specs: [{ type: 'count', counters: {} as never }] }), /count spec needs counters/);
    assert.throws(() => qps[0].handle.createFlow({ specs: [{ type: 'count', counters: qps[0].handle }] }), TypeError);
  });
});
