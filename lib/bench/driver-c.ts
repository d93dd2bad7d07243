/** The C-core driver: the planned loop runs in native/bench/bench_loops.cc, as perftest's loops run in C. */
import { SendFlags } from '../verbs/constants';
import { native, type NativeBenchSpec } from '../native';
import type { LoopDriver } from './loops';

export const runInC: LoopDriver = async (res, plan, progress) => {
  const { mr } = res;
  const send = plan.send;
  const spec: NativeBenchSpec = {
    loop: plan.loop,
    initiator: plan.initiator,
    qps: [res.qp.handle],
    sendCq: res.sendCq.handle,
    recvCq: res.recvCq.handle,
    iters: plan.iters,
    durationMs: plan.durationMs,
    marginMs: plan.marginMs,
    txDepth: plan.txDepth,
    rxDepth: plan.rxDepth,
    cqMod: plan.cqMod,
    postList: plan.postList,
    rxPosted: plan.prepost,
    events: plan.events,
    record: plan.record,
    stallMs: plan.stallMs,
    idleMs: plan.idleMs,
  };
  if (send) {
    spec.send = {
      opcode: send.opcode,
      local: { mr: mr.handle, offset: 0, length: send.length },
      sendFlags: send.inline ? SendFlags.INLINE : 0,
      remotes: send.remote ? [send.remote] : undefined,
      compareAdd: send.compareAdd,
      swap: send.swap,
      ah: res.ah?.handle,
      remoteQpn: send.ud?.remoteQpn,
      remoteQkey: send.ud?.remoteQkey,
    };
  }
  if (plan.recv) spec.recv = { mr: mr.handle, offset: plan.recv.offset, length: plan.recv.length };
  if (plan.postByte !== undefined && plan.pollByte !== undefined) {
    spec.postByte = { mr: mr.handle, offset: plan.postByte };
    spec.pollByte = { mr: mr.handle, offset: plan.pollByte };
  }
  return native.benchRun(spec, progress);
};
