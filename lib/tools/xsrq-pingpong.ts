/**
 * `rdma-node xsrq_pingpong`: rdma-core's ibv_xsrq_pingpong in TypeScript, with its flags, messages and
 * out-of-band protocol (pingpong-wire's XRC messages and END handshake), so either side can be the C
 * program. Each side opens the XRC domain of /tmp/xrc_domain, one XRC SRQ on it, and per client one XRC
 * target QP (receives) and one XRC initiator (sends); the server ping-pongs num_tests messages with each
 * client, the client answers. XRC needs hardware: on rxe the domain fails, and the program says so as the C
 * one does ("Couldn't Open the XRC Domain 95", exit 1) before any socket.
 */
import type { Socket } from 'node:net';

import { flag, intOption, parseOptions, stringOption, type OptionSpec } from '../core/argv';
import { RdmaError } from '../core/errors';
import { formatIpv6 } from '../core/gid';
import { CompletionBatch } from '../verbs/completion';
import { Access, LinkLayer, OdpCaps, OdpTransportCaps, QpState, QpType, WcStatus, WrOpcode, mtuFromBytes } from '../verbs/constants';
import type { Context } from '../verbs/context';
import type { QpAttributes } from '../verbs/qp/qp';
import { toInit } from '../verbs/qp/transitions';
import type { XrcDomain } from '../verbs/xrcd';
import { localDest, openPingpongDevice, type PingpongSettings } from './pingpong-common';
import { acceptXrcClients, connectXrcServer, readXrcDest, sendXrcDest, xrcTermination, type XrcPingpongDest } from './pingpong-wire';

const ARGV0 = 'rdma-node xsrq_pingpong';
export const XRC_DOMAIN_FILE = '/tmp/xrc_domain';

/** The C program's getopt_long: its option string and its long names. */
const longNames: Record<string, string> = {
  p: 'port', d: 'ib-dev', i: 'ib-port', s: 'size', m: 'mtu', n: 'num_tests', l: 'sl', e: 'events', o: 'odp', g: 'gid-idx', c: 'clients',
};
const specs: OptionSpec[] = [...'p:d:i:s:m:n:l:eog:c:'.matchAll(/(\w)(:?)/g)].map(([, short, colon]) => ({ short, long: longNames[short!], value: colon === ':' }));

/** The C program's usage text, word for word (its "default 2048" for -m included: the default is 1024). */
export function xsrqUsage(argv0 = ARGV0): string {
  return [
    'Usage:',
    `  ${argv0}            start a server and wait for connection`,
    `  ${argv0} <host>     connect to server at <host>`,
    '',
    'Options:',
    '  -p, --port=<port>      listen on/connect to port <port> (default 18515)',
    '  -d, --ib-dev=<dev>     use IB device <dev> (default first device found)',
    '  -i, --ib-port=<port>   use port <port> of IB device (default 1)',
    '  -s, --size=<size>      size of message to exchange (default 4096)',
    '  -m, --mtu=<size>       path MTU (default 2048)',
    '  -c, --clients=<n>      number of clients (on server only, default 1)',
    '  -n, --num_tests=<n>    number of tests per client (default 5)',
    '  -l, --sl=<sl>          service level value',
    '  -e, --events           sleep on CQ events (default poll)',
    '  -o, --odp\t\t    use on demand paging',
    '  -g, --gid-idx=<gid index> local port gid index',
    '',
  ].join('\n');
}

/** Where the C program prints its usage and exits 1; `message` is getopt's complaint, if any. */
class UsageError extends Error {}

/**
 * The flags as the C program takes them, in the shared pingpong settings: `numQp` is the number of clients
 * (-c; 1 for a client), each with its own pair of QPs, `iters` the tests per client (-n), and `rxDepth`
 * the SRQ's depth, one receive per client as the C program posts.
 */
export function xsrqSettings(argv: string[]): PingpongSettings {
  const parsed = parseOptions(argv, specs);
  const server = parsed.positionals[0];
  const port = intOption(parsed, 'p', 18515);
  const ibPort = intOption(parsed, 'i', 1);
  const mtuSize = intOption(parsed, 'm', 1024);
  const mtu = mtuFromBytes(mtuSize);
  if (parsed.positionals.length > 1 || port < 0 || port > 65535 || ibPort < 0 || mtu === undefined || 128 << mtu !== mtuSize) throw new UsageError('');
  const clients = server === undefined ? intOption(parsed, 'c', 1) : 1;
  return {
    server, port, device: stringOption(parsed, 'd'), ibPort, size: intOption(parsed, 's', 4096), mtu,
    numQp: clients, rxDepth: clients, iters: intOption(parsed, 'n', 5), sl: intOption(parsed, 'l', 0),
    events: flag(parsed, 'e'), odp: flag(parsed, 'o'), gidIndex: intOption(parsed, 'g', -1),
  };
}

const hex = (value: number, width: number): string => value.toString(16).padStart(width, '0');

/** The C program's ADDR_FORMAT line (without its newline). */
export function describeXrcDest(side: 'local' | 'remote', dest: XrcPingpongDest): string {
  return `${side.padStart(8)}: LID ${hex(dest.lid, 4)}, QPN RECV ${hex(dest.recvQpn, 6)} SEND ${hex(dest.sendQpn, 6)}, ` +
    `PSN ${hex(dest.psn, 6)}, SRQN ${hex(dest.srqn, 6)}, GID ${formatIpv6(dest.gid)}`;
}

/** The domain of /tmp/xrc_domain; without the file, a private one, as the C program goes on without it. */
function openDomain(context: Context): XrcDomain {
  try {
    try {
      return context.openXrcd({ file: XRC_DOMAIN_FILE });
    } catch (error) {
      if (error instanceof RdmaError) throw error;
      console.error(`Couldn't create the file for the XRC Domain but not stopping ${Math.abs((error as NodeJS.ErrnoException).errno ?? 0)}`);
      return context.openXrcd();
    }
  } catch (error) {
    if (error instanceof RdmaError) throw new Error(`Couldn't Open the XRC Domain ${error.errno}`);
    throw error;
  }
}

/** The C program's connect_qps: its attributes exactly (the target goes to RTS too, with its PSN). */
function connectAttributes(settings: PingpongSettings, remote: XrcPingpongDest, destQpNum: number): QpAttributes {
  const global = remote.gid.subarray(8).some((b) => b !== 0); // gid.global.interface_id
  return {
    qpState: QpState.RTR, destQpNum, pathMtu: settings.mtu, rqPsn: remote.psn,
    // sgid_index is a u8 in C: -1 (no -g) becomes 255 there too.
    ahAttr: { dlid: remote.lid, sl: settings.sl, portNum: settings.ibPort, ...(global ? { grh: { dgid: remote.gid, hopLimit: 5, sgidIndex: settings.gidIndex & 0xff } } : {}) },
  };
}

async function run(settings: PingpongSettings): Promise<void> {
  const clients = settings.numQp;
  let context: Context;
  try {
    context = openPingpongDevice(settings);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nFailed to open device`);
  }
  using _context = context;
  let access = Access.LOCAL_WRITE;
  if (settings.odp) {
    const attributes = context.queryDevice();
    const xrcCaps = OdpTransportCaps.SEND | OdpTransportCaps.SRQ_RECV;
    if (!(attributes.odpCaps.generalCaps & BigInt(OdpCaps.SUPPORT)) || (attributes.xrcOdpCaps & xrcCaps) !== xrcCaps) {
      throw new Error("The device isn't ODP capable or does not support XRC send, receive and srq with ODP");
    }
    access |= Access.ON_DEMAND;
  }
  const port = context.queryPort(settings.ibPort);
  if (port.linkLayer !== LinkLayer.ETHERNET && port.lid === 0) throw new Error("Couldn't get local LID");
  const pd = context.allocPd();
  const mr = pd.registerMemory(Buffer.alloc(settings.size), access);
  const xrcd = openDomain(context);
  const recvCq = context.createCq(clients, { channel: settings.events });
  const sendCq = context.createCq(clients);
  const srq = pd.createSrq({ xrcd, cq: recvCq, maxWr: clients, maxSge: 1 });
  const qps = Array.from({ length: clients }, () => {
    const recv = xrcd.createQp();
    toInit(recv, QpType.XRC_RECV, { portNum: settings.ibPort, accessFlags: Access.REMOTE_WRITE | Access.REMOTE_READ });
    const send = pd.createQp({ qpType: QpType.XRC_SEND, sendCq, maxSendWr: clients * settings.iters, maxSendSge: 1 });
    toInit(send, QpType.XRC_SEND, { portNum: settings.ibPort, accessFlags: 0 });
    return { recv, send };
  });
  const postRecv = (count: number): void => srq.postRecv(Array.from({ length: count }, () => ({ wrId: 0, sgList: [{ mr }] })));
  postRecv(clients);

  // The out-of-band exchange: each side's PSN is drawn when it sends its address.
  const remote: XrcPingpongDest[] = [];
  const psns: number[] = [];
  const sendLocal = (socket: Socket, i: number): void => {
    const { lid, psn, gid } = localDest(context, settings, qps[i]!.recv.qpNum);
    const dest = { lid, recvQpn: qps[i]!.recv.qpNum, sendQpn: qps[i]!.send.qpNum, psn, srqn: srq.srqNum, gid };
    psns[i] = psn;
    console.log(describeXrcDest('local', dest));
    sendXrcDest(socket, dest);
  };
  const readRemote = async (socket: Socket, i: number): Promise<void> => {
    remote[i] = await readXrcDest(socket, i);
    console.log(describeXrcDest('remote', remote[i]!));
  };
  const connect = (i: number): void => {
    const { recv, send } = qps[i]!;
    recv.modify({ ...connectAttributes(settings, remote[i]!, remote[i]!.sendQpn), minRnrTimer: 12, maxDestRdAtomic: 0 });
    recv.modify({ qpState: QpState.RTS, timeout: 14, sqPsn: psns[i]! });
    send.modify(connectAttributes(settings, remote[i]!, remote[i]!.recvQpn));
    send.modify({ qpState: QpState.RTS, timeout: 14, retryCnt: 7, rnrRetry: 7, sqPsn: psns[i]!, maxRdAtomic: 0 });
  };

  // Sends to client `index` go round robin over the initiators; only each client's last one is signaled.
  const sent = new Array<number>(clients).fill(0);
  const postSend = (index: number): void => {
    const qpi = (index + sent[index]!) % clients;
    const signaled = ++sent[index]! >= settings.iters;
    qps[qpi]!.send.postSend({ wrId: index, opcode: WrOpcode.SEND, sgList: [{ mr }], signaled, xrc: { remoteSrqn: remote[index]!.srqn } });
  };
  const findQp = (qpNum: number): number => {
    if (clients === 1) return 0;
    const i = qps.findIndex((qp) => qp.recv.qpNum === qpNum);
    if (i < 0) console.error(`Unable to find qp ${qpNum.toString(16)}`);
    return Math.max(i, 0);
  };

  let sockets: Socket[];
  if (settings.server !== undefined) {
    const socket = await connectXrcServer(settings.server, settings.port);
    sockets = [socket];
    sendLocal(socket, 0);
    await readRemote(socket, 0);
    connect(0);
  } else {
    sockets = await acceptXrcClients(settings.port, clients, async (socket, i) => {
      await readRemote(socket, i);
      sendLocal(socket, i);
      connect(i);
    });
    for (let i = 0; i < clients; i++) postSend(i);
  }

  const batch = new CompletionBatch(16);
  for (let count = 0; count < clients * settings.iters;) {
    if (settings.events) await recvCq.wait({}, batch);
    else recvCq.poll(batch);
    for (let i = 0; i < batch.count; i++, count++) {
      if (batch.status(i) !== WcStatus.SUCCESS) throw new Error(`Work completion error ${batch.status(i)}`);
      postRecv(1);
      const qpi = findQp(batch.get(i).qpNum);
      if (sent[qpi]! < settings.iters) postSend(qpi);
    }
  }
  // The signaled last sends, one per client; as in the C program, their status is not looked at.
  for (let done = 0; done < clients;) done += sendCq.poll(batch).count;

  await xrcTermination(sockets, settings.server !== undefined ? 'client' : 'server');
}

export async function xsrqPingpong(argv: string[]): Promise<number> {
  let settings: PingpongSettings;
  try {
    settings = xsrqSettings(argv);
  } catch (error) {
    if ((error as Error).message) console.error(`${ARGV0}: ${(error as Error).message}`);
    process.stdout.write(xsrqUsage());
    return 1;
  }
  try {
    await run(settings);
  } catch (error) {
    // The C program's messages, alone on stderr, and its exit status.
    console.error(error instanceof Error ? error.message : String(error));
    return 1;
  }
  console.log('success');
  return 0;
}
