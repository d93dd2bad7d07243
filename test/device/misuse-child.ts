/**
 * One misuse case per process (argv[2] names it), so a crash is caught and attributed by misuse.test.ts.
 * Prints one JSON line: the error's class and code, or "none".
 */
import { Access, MwType, QpState, QpType, WrOpcode, allocate, type Completion } from '../../lib';
import { pollCompletions } from '../support/memory';
import { pair, random, remoteAccess } from '../support/fixture';

/** An object whose `key` getter runs `sideEffect` first: JS running in the middle of argument reading. */
function getterThat<T extends object>(base: T, key: string, value: unknown, sideEffect: () => void): T {
  return Object.defineProperty({ ...base }, key, {
    enumerable: true,
    get() {
      sideEffect();
      return value;
    },
  });
}

type Case = (t: ReturnType<typeof pair>) => unknown;

/** Cases whose right outcome is not a misuse error: they must simply work, promptly. */
const succeeding = new Set(['context.close() after a type-2 bind', 'pd.close() with a type-1 window older than its MR']);

const cases: Record<string, Case> = {
  'qp.modify closes its QP': ({ pair: p }) =>
    p.qps[0].modify(getterThat({ qpState: QpState.SQD }, 'qpAccessFlags', 0, () => p.qps[0].close())),
  'qp.modify closes the PD': ({ pair: p }) => p.qps[0].modify(getterThat({ qpState: QpState.SQD }, 'qpAccessFlags', 0, () => p.pd.close())),
  'postSend: a raw sge closes the QP': ({ pair: p }) =>
    p.qps[0].postSend([{ opcode: WrOpcode.SEND, sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => p.qps[0].close())] }]),
  'postSend: a raw sge closes the context': ({ context, pair: p }) =>
    p.qps[0].postSend([{ opcode: WrOpcode.SEND, sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => context.close())] }]),
  'postRecv: a raw sge closes the QP': ({ pair: p }) =>
    p.qps[1].postRecv([{ sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => p.qps[1].close())] }]),
  'srq.postRecv: a raw sge closes the SRQ': ({ pair: p }) => {
    const srq = p.pd.createSrq({ maxWr: 4, maxSge: 1 });
    return srq.postRecv([{ sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => srq.close())] }]);
  },
  'prepareSend: a raw sge closes the QP, then post': ({ pair: p }) => {
    const prepared = p.qps[0].prepareSend([{ opcode: WrOpcode.SEND, sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => p.qps[0].close())] }]);
    prepared.post();
  },
  'postSend: a later sge closes the MR of an earlier one': ({ pair: p }) => {
    const mr = p.pd.registerMemory(random(64), Access.LOCAL_WRITE);
    p.qps[0].postSend([
      { opcode: WrOpcode.SEND, sgList: [{ mr }] },
      { opcode: WrOpcode.SEND, sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => mr.close())] },
    ]);
  },
  'inline postSend: a later request frees the buffer of an earlier one': ({ pair: p }) => {
    const buffer = allocate(4096);
    p.qps[0].postSend([
      { opcode: WrOpcode.SEND, inline: true, sgList: [{ buffer: buffer.bytes.subarray(0, 64) }] },
      { opcode: WrOpcode.SEND, sgList: [getterThat({ addr: 0n, length: 0, lkey: 0 }, 'lkey', 0, () => buffer.close())] },
    ]);
  },
  'prepared inline send from an MR over a mapped buffer freed afterwards': ({ pair: p }) => {
    const buffer = allocate(4096);
    const mr = p.pd.registerMemory(buffer.bytes, Access.LOCAL_WRITE);
    const prepared = p.qps[0].prepareSend([{ opcode: WrOpcode.SEND, inline: true, sgList: [{ mr, length: 64 }] }]);
    buffer.close();
    prepared.post();
  },
  'pd.createAh closes the PD': ({ context, pair: p }) => {
    const gid = context.gidTable()[0]!;
    p.pd.createAh(getterThat({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gid.index } }, 'sl', 0, () => p.pd.close()));
  },
  'pd.createAhFromCompletion closes the PD': ({ pair: p }) => {
    const completion = getterThat({ status: 0, opcode: 128, wcFlags: 0, qpNum: 1, srcQp: 1, pkeyIndex: 0, slid: 0, sl: 0, dlidPathBits: 0 }, 'srcQp', 1, () => p.pd.close());
    p.pd.createAhFromCompletion(completion as unknown as Completion, new Uint8Array(40));
  },
  'pd.createSrq closes the PD': ({ pair: p }) => p.pd.createSrq(getterThat({ maxSge: 1 }, 'maxWr', 4, () => p.pd.close())),
  'srq.modify closes the SRQ': ({ pair: p }) => {
    const srq = p.pd.createSrq({ maxWr: 4, maxSge: 1 });
    srq.modify(getterThat({}, 'srqLimit', 1, () => srq.close()));
  },
  'pd.createQp closes the send CQ': ({ pair: p }) =>
    p.pd.createQp(getterThat({ sendCq: p.cqs[0], recvCq: p.cqs[0] }, 'caps', { maxSendWr: 4 }, () => p.cqs[0].close())),
  // rxe dereferences a window's missing MR on these (a kernel oops): the binding knows the window is not bound.
  'LOCAL_INV of a type-2 window never bound': ({ pair: p }) => {
    const mw = p.pd.allocMw(MwType.TYPE_2);
    p.qps[0].postSend([{ opcode: WrOpcode.LOCAL_INV, invalidateRkey: mw.rkey }]);
  },
  'LOCAL_INV of a type-2 window already invalidated': ({ pair: p }) => {
    const mw = p.pd.allocMw(MwType.TYPE_2);
    const mr = p.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE | Access.MW_BIND | Access.REMOTE_WRITE);
    const rkey = mw.nextRkey();
    p.qps[0].postSend([{ wrId: 1, opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr, access: Access.REMOTE_WRITE } }]);
    p.qps[0].postSend([{ wrId: 2, opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }]);
    if (pollCompletions(p, 2).some((status) => status !== 'SUCCESS')) throw new Error('bind and invalidate did not both succeed');
    p.qps[0].postSend([{ opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }]);
  },
  "LOCAL_INV of a type-2 window the peer's SEND_WITH_INV invalidated": ({ pair: p }) => {
    const mw = p.pd.allocMw(MwType.TYPE_2);
    const mr = p.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE | Access.MW_BIND | Access.REMOTE_WRITE);
    const rkey = mw.nextRkey();
    p.qps[1].postSend([{ wrId: 1, opcode: WrOpcode.BIND_MW, bind: { mw, rkey, mr, access: Access.REMOTE_WRITE } }]);
    p.qps[1].postRecv([{ wrId: 2, sgList: [] }]);
    if (pollCompletions({ ...p, cqs: [p.cqs[1], p.cqs[0]] }, 1)[1] !== 'SUCCESS') throw new Error('the bind failed');
    p.qps[0].postSend([{ wrId: 3, opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: rkey, sgList: [] }]);
    if (pollCompletions(p, 1)[3] !== 'SUCCESS') throw new Error('the SEND_WITH_INV failed');
    p.qps[1].postSend([{ opcode: WrOpcode.LOCAL_INV, invalidateRkey: rkey }]);
  },
  'SEND_WITH_INV naming an unbound window of the receiver': ({ pair: p }) => {
    const mw = p.pd.allocMw(MwType.TYPE_2);
    p.qps[0].postSend([{ opcode: WrOpcode.SEND_WITH_INV, invalidateRkey: mw.rkey, sgList: [] }]);
  },
  'an extended UD QP posting RDMA_WRITE': ({ context, pair: p }) => {
    const qp = p.pd.createQp({ qpType: QpType.UD, sendCq: p.cqs[0], extended: true });
    const target = p.pd.registerMemory(Buffer.alloc(64), remoteAccess).remote();
    const gid = context.gidTable()[0]!;
    const ah = p.pd.createAh({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gid.index } });
    qp.postSend([{ opcode: WrOpcode.RDMA_WRITE, remote: target, ud: { ah, remoteQpn: 1, remoteQkey: 1 } }]);
  },
  'registering a resizable ArrayBuffer': ({ pair: p }) => {
    const buffer = new (ArrayBuffer as unknown as new (size: number, options: object) => ArrayBuffer)(4096, { maxByteLength: 8192 });
    p.pd.registerMemory(buffer);
  },
  'a holey list of 30 million requests': ({ pair: p }) => p.qps[0].postSend(new Array(3e7)),
  'an extended inline gather of 256 x 16 MiB': ({ pair: p }) => {
    const qp = p.pd.createQp({ sendCq: p.cqs[0], extended: true, maxSendSge: 4, maxInlineData: 64 });
    const big = Buffer.alloc(16 << 20);
    qp.postSend([{ opcode: WrOpcode.SEND, inline: true, sgList: Array.from({ length: 256 }, () => ({ buffer: big })) }]);
  },
  'an extended inline gather of 4 x 16 MiB, beyond maxInlineData': ({ pair: p }) => {
    const qp = p.pd.createQp({ sendCq: p.cqs[0], extended: true, maxSendSge: 4, maxInlineData: 64 });
    const big = Buffer.alloc(16 << 20);
    qp.postSend([{ opcode: WrOpcode.SEND, inline: true, sgList: Array.from({ length: 4 }, () => ({ buffer: big })) }]);
  },
  'context.close() after a type-2 bind': ({ context, pair: p }) => {
    const mw = p.pd.allocMw(MwType.TYPE_2);
    const mr = p.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE | Access.MW_BIND | Access.REMOTE_WRITE);
    p.qps[0].postSend([{ opcode: WrOpcode.BIND_MW, bind: { mw, rkey: mw.nextRkey(), mr, access: Access.REMOTE_WRITE } }]);
    pollCompletions(p, 1);
    context.close();
  },
  'pd.close() with a type-1 window older than its MR': ({ pair: p }) => {
    const mw = p.pd.allocMw(MwType.TYPE_1);
    const mr = p.pd.registerMemory(Buffer.alloc(4096), Access.LOCAL_WRITE | Access.MW_BIND | Access.REMOTE_WRITE);
    p.qps[0].bindMw(mw, { mr, access: Access.REMOTE_WRITE });
    pollCompletions(p, 1);
    p.pd.close();
  },
};

const name = process.argv[2]!;
const run = cases[name];
if (run === undefined) {
  console.log(JSON.stringify({ cases: Object.keys(cases), succeeding: [...succeeding] }));
} else {
  using t = pair();
  let outcome: { error: string; code?: string; message?: string } = { error: 'none' };
  try {
    run(t);
  } catch (error) {
    const e = error as Error & { code?: string };
    outcome = { error: e.constructor.name, code: e.code, message: e.message };
  }
  console.log(JSON.stringify(outcome));
}
