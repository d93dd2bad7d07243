/**
 * `rdma-node ud_pingpong`: rdma-core's ibv_ud_pingpong in TypeScript, wire-compatible with it. Datagrams
 * go through an address handle made from the peer's LID/GID; every receive buffer starts with the 40
 * bytes the GRH may fill, and sends come from just after them, as in the C program.
 */
import { Access, QpType, UD_GRH_BYTES, WrOpcode, mtuBytes } from '../verbs/constants';
import type { AddressHandle } from '../verbs/ah';
import { RECV_WRID, SEND_WRID, describeDest, hasGid, localDest, openPingpongDevice, pingpongSettings, runPingpong } from './pingpong-common';
import { exchangeAsClient, exchangeAsServer, type PingpongDest } from './pingpong-wire';
import { toInit, toRtr, toRts } from '../verbs/qp/transitions';

const QKEY = 0x11111111;

export async function udPingpong(argv: string[]): Promise<number> {
  const settings = pingpongSettings(argv, 2048);
  using context = openPingpongDevice(settings);
  const mtu = mtuBytes(context.queryPort(settings.ibPort).activeMtu);
  if (settings.size > mtu) throw new Error(`Requested size larger than port MTU (${mtu})`);
  const pd = context.allocPd();
  const mr = pd.registerMemory(Buffer.alloc(settings.size + UD_GRH_BYTES, 0x7b), Access.LOCAL_WRITE);
  const cq = context.createCq(settings.rxDepth + 1, { channel: settings.events });
  const qp = pd.createQp({ sendCq: cq, qpType: QpType.UD, maxSendWr: 1, maxRecvWr: settings.rxDepth, maxSendSge: 1, maxRecvSge: 1 });
  const inline = qp.query().initCap.maxInlineData >= settings.size;
  toInit(qp, QpType.UD, { portNum: settings.ibPort, qkey: QKEY });

  let ah: AddressHandle | undefined;
  const connect = (me: PingpongDest, dest: PingpongDest): void => {
    toRtr(qp, QpType.UD);
    toRts(qp, QpType.UD, me.psn);
    ah = pd.createAh({ dlid: dest.lid, sl: settings.sl, srcPathBits: 0, portNum: settings.ibPort,
      ...(hasGid(dest) ? { grh: { dgid: dest.gid, hopLimit: 1, sgidIndex: Math.max(0, settings.gidIndex) } } : {}) });
  };

  const postRecv = (n: number): void => qp.postRecv(Array.from({ length: n }, () => ({ wrId: RECV_WRID, sgList: [{ mr }] })));
  postRecv(settings.rxDepth);

  const me = localDest(context, settings, qp.qpNum);
  console.log(describeDest('local address: ', me, ':'));
  const [remote] = settings.server
    ? await exchangeAsClient(settings.server, settings.port, [me])
    : await exchangeAsServer(settings.port, [me], ([dest]) => connect(me, dest!));
  console.log(describeDest('remote address:', remote!));
  if (settings.server) connect(me, remote!);

  const postSend = (): void => qp.postSend({
    wrId: SEND_WRID, opcode: WrOpcode.SEND, inline, sgList: [{ mr, offset: UD_GRH_BYTES, length: settings.size }],
    ud: { ah: ah!, remoteQpn: remote!.qpn, remoteQkey: QKEY },
  });
  await runPingpong({ settings, cq, qpNums: [qp.qpNum], lowWater: 1, postRecv, postSend });
  return 0;
}
