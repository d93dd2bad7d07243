/**
 * `rdma-node srq_pingpong`: rdma-core's ibv_srq_pingpong in TypeScript, wire-compatible with it: num_qp
 * RC QPs (up to 256) receive through one shared receive queue; the exchange always carries 256 addresses,
 * unused ones zero, as the C program's MAX_QP does.
 */
import { Access, QpType, WrOpcode } from '../verbs/constants';
import {
  RECV_WRID, SEND_WRID, connectRc, describeDest, localDest, openPingpongDevice, pingpongSettings, runPingpong, type PingpongSettings,
} from './pingpong-common';
import { exchangeAsClient, exchangeAsServer, type PingpongDest } from './pingpong-wire';
import type { QueuePair } from '../verbs/qp/qp';
import { toInit } from '../verbs/qp/transitions';

const MAX_QP = 256; // the C program always exchanges this many addresses

function connectQps(qps: QueuePair[], settings: PingpongSettings, mine: PingpongDest[], theirs: PingpongDest[]): void {
  qps.forEach((qp, i) => connectRc(qp, settings, mine[i]!.psn, theirs[i]!));
}

export async function srqPingpong(argv: string[]): Promise<number> {
  const settings = pingpongSettings(argv, 4096);
  if (settings.numQp < 1 || settings.numQp > MAX_QP) throw new Error(`num-qp must be 1..${MAX_QP}`);
  if (settings.numQp > settings.rxDepth) {
    throw new Error(`rx_depth ${settings.rxDepth} is too small for ${settings.numQp} QPs -- must have at least one receive per QP.`);
  }
  using context = openPingpongDevice(settings);
  const pd = context.allocPd();
  const mr = pd.registerMemory(Buffer.alloc(settings.size), Access.LOCAL_WRITE);
  const cq = context.createCq(settings.rxDepth + settings.numQp, { channel: settings.events });
  const srq = pd.createSrq({ maxWr: settings.rxDepth, maxSge: 1 });
  const qps = Array.from({ length: settings.numQp }, () => pd.createQp({ sendCq: cq, srq, qpType: QpType.RC, maxSendWr: 1, maxSendSge: 1 }));
  const inline = qps.every((qp) => qp.query().initCap.maxInlineData >= settings.size);
  for (const qp of qps) toInit(qp, QpType.RC, { portNum: settings.ibPort, accessFlags: 0 });

  const postRecv = (n: number): void => srq.postRecv(Array.from({ length: n }, () => ({ wrId: RECV_WRID, sgList: [{ mr }] })));
  const postSend = (i: number): void => qps[i]!.postSend({ wrId: SEND_WRID, opcode: WrOpcode.SEND, inline, sgList: [{ mr }] });
  postRecv(settings.rxDepth);

  const mine = Array.from({ length: MAX_QP }, (_, i) =>
    i < qps.length ? localDest(context, settings, qps[i]!.qpNum) : { lid: 0, qpn: 0, psn: 0, gid: new Uint8Array(16) });
  mine.slice(0, qps.length).forEach((dest) => console.log(describeDest('local address: ', dest)));
  const theirs = settings.server
    ? await exchangeAsClient(settings.server, settings.port, mine)
    : await exchangeAsServer(settings.port, mine, (remote) => connectQps(qps, settings, mine, remote));
  theirs.slice(0, qps.length).forEach((dest) => console.log(describeDest('remote address:', dest)));
  if (settings.server) connectQps(qps, settings, mine, theirs);

  await runPingpong({ settings, cq, qpNums: qps.map((qp) => qp.qpNum), lowWater: qps.length, postRecv, postSend });
  return 0;
}
