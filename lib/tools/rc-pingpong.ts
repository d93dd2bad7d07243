/**
 * `rdma-node rc_pingpong`: rdma-core's ibv_rc_pingpong in TypeScript, on the same wire and out-of-band
 * protocol, so either side can be the C program. Each side keeps rx_depth receives posted; the client
 * sends first, and every receive answers with a send until both have done `iters` of each.
 */
import { Access, QpState, QpType, WrOpcode } from '../constants';
import {
  PINGPONG_RECV_WRID, PINGPONG_SEND_WRID, completionLoop, describeDest, hasGid, localDest, openPingpongDevice,
  pingpongSettings, report, type PingpongSettings,
} from './pingpong-common';
import { exchangeAsClient, exchangeAsServer, type PingpongDest } from './pingpong-wire';
import type { QueuePair } from '../qp';

function connectQp(qp: QueuePair, settings: PingpongSettings, myPsn: number, dest: PingpongDest): void {
  qp.modify({
    qpState: QpState.RTR, pathMtu: settings.mtu, destQpNum: dest.qpn, rqPsn: dest.psn, maxDestRdAtomic: 1, minRnrTimer: 12,
    ahAttr: { dlid: dest.lid, sl: settings.sl, srcPathBits: 0, portNum: settings.ibPort,
      ...(hasGid(dest) ? { grh: { dgid: dest.gid, hopLimit: 1, sgidIndex: Math.max(0, settings.gidIndex) } } : {}) },
  });
  qp.modify({ qpState: QpState.RTS, timeout: 14, retryCnt: 7, rnrRetry: 7, sqPsn: myPsn, maxRdAtomic: 1 });
}

export async function rcPingpong(argv: string[]): Promise<number> {
  const settings = pingpongSettings(argv, 4096);
  using context = openPingpongDevice(settings);
  const pd = context.allocPd();
  const mr = pd.registerMemory(Buffer.alloc(settings.size, 0x7b), Access.LOCAL_WRITE | (settings.odp ? Access.ON_DEMAND : 0));
  const cq = context.createCq(settings.rxDepth + 1, { channel: settings.events });
  const qp = pd.createQp({ sendCq: cq, qpType: QpType.RC, maxSendWr: 1, maxRecvWr: settings.rxDepth, maxSendSge: 1, maxRecvSge: 1 });
  const sendFlags = qp.query().initCap.maxInlineData >= settings.size ? { inline: true } : {};
  qp.modify({ qpState: QpState.INIT, pkeyIndex: 0, portNum: settings.ibPort, qpAccessFlags: 0 });

  const postRecv = (n: number): void => qp.postRecv(Array.from({ length: n }, () => ({ wrId: PINGPONG_RECV_WRID, sgList: [{ mr }] })));
  const postSend = (): void => qp.postSend({ wrId: PINGPONG_SEND_WRID, opcode: WrOpcode.SEND, sgList: [{ mr }], ...sendFlags });
  postRecv(settings.rxDepth);
  let routs = settings.rxDepth;

  const me = localDest(context, settings, qp.qpNum);
  console.log(describeDest('local address: ', me));
  const [remote] = settings.server
    ? await exchangeAsClient(settings.server, settings.port, [me])
    : await exchangeAsServer(settings.port, [me], ([dest]) => connectQp(qp, settings, me.psn, dest!));
  console.log(describeDest('remote address:', remote!));
  if (settings.server) connectQp(qp, settings, me.psn, remote!);

  let pending = PINGPONG_RECV_WRID;
  if (settings.server) {
    postSend();
    pending |= PINGPONG_SEND_WRID;
  }
  let rcnt = 0;
  let scnt = 0;
  const started = process.hrtime.bigint();
  await completionLoop(cq, settings.events, () => rcnt >= settings.iters && scnt >= settings.iters, (wrId) => {
    if (wrId === PINGPONG_SEND_WRID) scnt++;
    else {
      if (--routs <= 1) {
        postRecv(settings.rxDepth - routs);
        routs = settings.rxDepth;
      }
      rcnt++;
    }
    pending &= ~wrId;
    if (scnt < settings.iters && pending === 0) {
      postSend();
      pending = PINGPONG_RECV_WRID | PINGPONG_SEND_WRID;
    }
  });
  console.log(report(settings.size, settings.iters, started));
  return 0;
}
