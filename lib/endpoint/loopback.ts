/**
 * Two RC queue pairs on one device connected to each other: the smallest complete RDMA setup, for
 * trying things out, self-tests and the demo (Soft-RoCE loops traffic back through its netdev).
 */
import { Access, QpType } from '../verbs/constants';
import type { Context } from '../verbs/context';
import type { CompletionQueue } from '../verbs/cq';
import type { ProtectionDomain } from '../verbs/pd';
import type { QpCaps, QueuePair } from '../verbs/qp/qp';

export interface LoopbackPair extends Disposable {
  pd: ProtectionDomain;
  /** One CQ per side, each with its own completion channel, shared by that side's send and receive. */
  cqs: [CompletionQueue, CompletionQueue];
  qps: [QueuePair, QueuePair];
  close(): void;
}

export interface LoopbackOptions extends Partial<QpCaps> {
  cqe?: number;
  qpType?: QpType.RC | QpType.UC;
  portNum?: number;
  gidIndex?: number;
  sqSigAll?: boolean;
  /** Use the extended post API (ibv_wr_*). */
  extended?: boolean;
}

export function createLoopbackPair(context: Context, options: LoopbackOptions = {}): LoopbackPair {
  const { cqe = 256, qpType = QpType.RC, portNum, gidIndex, sqSigAll, ...caps } = options;
  const pd = context.allocPd();
  try {
    const cqs = [context.createCq(cqe, { channel: true }), context.createCq(cqe, { channel: true })] as [CompletionQueue, CompletionQueue];
    const qps = cqs.map((cq) => pd.createQp({ sendCq: cq, recvCq: cq, qpType, sqSigAll, ...caps })) as [QueuePair, QueuePair];
    const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | (qpType === QpType.RC ? Access.REMOTE_READ | Access.REMOTE_ATOMIC : 0);
    const [a, b] = qps.map((qp) => qp.address({ portNum, gidIndex }));
    qps[0].connect(b!, { portNum, gidIndex, accessFlags: access });
    qps[1].connect(a!, { portNum, gidIndex, accessFlags: access });
    const close = (): void => {
      pd.close();
      for (const cq of cqs) cq.close();
    };
    return { pd, cqs, qps, close, [Symbol.dispose]: close };
  } catch (error) {
    pd.close();
    throw error;
  }
}
