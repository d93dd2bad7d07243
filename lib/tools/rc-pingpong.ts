/**
 * `rdma-node rc_pingpong`: rdma-core's ibv_rc_pingpong in TypeScript, on the same wire and out-of-band
 * protocol, so either side can be the C program. Each side keeps rx_depth receives posted; the client
 * sends first, and every receive answers with a send until both have done `iters` of each.
 */
import { Access, QpType, WrOpcode } from '../verbs/constants';
import {
  RECV_WRID, SEND_WRID, connectRc, describeDest, localDest, openPingpongDevice, pingpongSettings, runPingpong,
} from './pingpong-common';
import { exchangeAsClient, exchangeAsServer } from './pingpong-wire';
import { toInit } from '../verbs/qp/transitions';

export async function rcPingpong(argv: string[]): Promise<number> {
  const settings = pingpongSettings(argv, 4096);
  using context = openPingpongDevice(settings);
  const pd = context.allocPd();
  const mr = pd.registerMemory(Buffer.alloc(settings.size, 0x7b), Access.LOCAL_WRITE | (settings.odp ? Access.ON_DEMAND : 0));
  const cq = context.createCq(settings.rxDepth + 1, { channel: settings.events });
  const qp = pd.createQp({ sendCq: cq, qpType: QpType.RC, maxSendWr: 1, maxRecvWr: settings.rxDepth, maxSendSge: 1, maxRecvSge: 1 });
  const sendFlags = qp.query().initCap.maxInlineData >= settings.size ? { inline: true } : {};
  toInit(qp, QpType.RC, { portNum: settings.ibPort, accessFlags: 0 });

  const postRecv = (n: number): void => qp.postRecv(Array.from({ length: n }, () => ({ wrId: RECV_WRID, sgList: [{ mr }] })));
  const postSend = (): void => qp.postSend({ wrId: SEND_WRID, opcode: WrOpcode.SEND, sgList: [{ mr }], ...sendFlags });
  postRecv(settings.rxDepth);

  const me = localDest(context, settings, qp.qpNum);
  console.log(describeDest('local address: ', me));
  const [remote] = settings.server
    ? await exchangeAsClient(settings.server, settings.port, [me])
    : await exchangeAsServer(settings.port, [me], ([dest]) => connectRc(qp, settings, me.psn, dest!));
  console.log(describeDest('remote address:', remote!));
  if (settings.server) connectRc(qp, settings, me.psn, remote!);

  await runPingpong({ settings, cq, qpNums: [qp.qpNum], lowWater: 1, postRecv, postSend });
  return 0;
}
