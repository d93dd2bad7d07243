/**
 * The verbs objects of one side of a benchmark, as perftest sets them up: a buffer of two regions (what
 * this side sends from, and what the peer writes to, reads from or sends into), a send and a receive CQ
 * (each with its own completion channel for -e), one QP, and for UD an address handle to the peer.
 */
import { once } from 'node:events';

import type { AddressHandle } from '../verbs/ah';
import { CmId } from '../cm/id';
import { Access, LinkLayer, OdpCaps, OdpTransportCaps, PortSpace, QpType, UD_GRH_BYTES, mtuBytes } from '../verbs/constants';
import type { Context } from '../verbs/context';
import type { CompletionQueue } from '../verbs/cq';
import { isZeroGid, parseGid } from '../core/gid';
import type { MemoryRegion } from '../verbs/mr';
import type { ProtectionDomain } from '../verbs/pd';
import type { QpInitAttributes, QueuePair } from '../verbs/qp/qp';
import type { ReceiveRing } from '../verbs/qp/prepared';
import type { BenchOptions } from './options';
import { testInfo } from './tests';
import { bringUp } from '../verbs/qp/transitions';

/** What each side tells the other (perftest's pingpong_dest), JSON-safe. */
export interface PeerInfo {
  lid: number;
  qpNum: number;
  psn: number;
  gid: string;
  mtu: number;
  rkey: number;
  /** Address of the region the peer targets, as a decimal string (a 64-bit value). */
  addr: string;
  outReads: number;
}

export const QKEY = 0x11111111;

export interface Resources extends Disposable {
  context: Context;
  pd: ProtectionDomain;
  mr: MemoryRegion;
  /** Bytes per region; the buffer is [send region | receive region]. */
  region: number;
  sendCq: CompletionQueue;
  recvCq: CompletionQueue;
  qp: QueuePair;
  /** The TypeScript driver's receives for the current size (run.ts makes it). */
  ring?: ReceiveRing;
  cmId?: CmId;
  ah?: AddressHandle;
  portNum: number;
  gidIndex: number;
  linkLayer: string;
  /** Read and atomic requests the QP keeps in flight (the device's max_qp_rd_atom, as perftest). */
  outReads: number;
  local: PeerInfo;
  /** Path MTU in bytes once connected. */
  mtu: number;
  close(): void;
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;
const PAGE = 4096;

/** The ODP capability bits a test needs on its transport. */
function checkOdp(context: Context, options: BenchOptions): void {
  const caps = context.queryDevice().odpCaps;
  const verb = testInfo(options.test).verb;
  const transport = options.connection === 'UD' ? caps.udOdpCaps : options.connection === 'UC' ? caps.ucOdpCaps : caps.rcOdpCaps;
  const need = verb === 'send' ? OdpTransportCaps.SEND | OdpTransportCaps.RECV : verb === 'write' ? OdpTransportCaps.WRITE : OdpTransportCaps.READ;
  if ((caps.generalCaps & BigInt(OdpCaps.SUPPORT)) === 0n || (transport & need) !== need) {
    throw new Error(`--odp: ${context.name} has no on-demand paging for ${options.test} over ${options.connection}`);
  }
}

/**
 * Creates this side's objects on `context` for messages up to `maxSize`. With `cmId` the QP is the CM
 * ID's (rdma_cm moves it through its states).
 */
export function createResources(context: Context, options: BenchOptions, maxSize: number, cmId?: CmId): Resources {
  const info = testInfo(options.test);
  const portNum = options.ibPort;
  const port = context.queryPort(portNum);
  const gidIndex = options.gidIndex ?? context.defaultGidIndex(portNum);
  if (options.odp) checkOdp(context, options);
  const device = context.queryDevice();
  const outReads = info.verb === 'read' || info.verb === 'atomic' ? Math.min(device.maxQpRdAtom, 255) : 1;
  // Page-aligned regions of whole pages, as perftest allocates them (memalign): a region never shares a
  // page with the other region or with unrelated heap data.
  const region = roundUp(maxSize + (options.connection === 'UD' ? UD_GRH_BYTES : 0), PAGE);
  const rc = options.connection === 'RC';
  const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | (rc ? Access.REMOTE_ATOMIC : 0) | (options.odp ? Access.ON_DEMAND : 0);

  const pd = context.allocPd();
  const cqs: CompletionQueue[] = [];
  try {
    const memory = Buffer.alloc(2 * region + PAGE);
    const probe = pd.registerMemory(memory, Access.LOCAL_WRITE);
    const skew = Number((BigInt(PAGE) - (probe.addr % BigInt(PAGE))) % BigInt(PAGE));
    probe.close();
    const mr = pd.registerMemory(memory, access, { offset: skew, length: 2 * region });
    // One more send entry than the depth: a timed run's drain request (native/bench/bench_loops.cc).
    const sendCq = context.createCq(options.txDepth + 1, { channel: options.events });
    cqs.push(sendCq);
    const recvCq = context.createCq(options.rxDepth + 1, { channel: options.events });
    cqs.push(recvCq);
    const attributes: QpInitAttributes = {
      sendCq,
      recvCq,
      qpType: QpType[options.connection],
      maxSendWr: options.txDepth + 1,
      maxRecvWr: options.rxDepth,
      maxSendSge: 1,
      maxRecvSge: 1,
      maxInlineData: options.inlineSize,
    };
    const qp = cmId ? cmId.createQp(pd, attributes) : pd.createQp(attributes);
    const endpoint = qp.address({ portNum, gidIndex });
    const local: PeerInfo = {
      lid: endpoint.lid,
      qpNum: endpoint.qpNum,
      psn: endpoint.psn,
      gid: endpoint.gid,
      mtu: endpoint.mtu,
      rkey: mr.rkey,
      addr: String(mr.addr + BigInt(region)),
      outReads,
    };
    const close = (): void => {
      cmId?.close();
      pd.close();
      for (const cq of cqs) cq.close();
    };
    return {
      context, pd, mr, region, sendCq, recvCq, qp, cmId, portNum, gidIndex, outReads, local,
      linkLayer: port.linkLayer === LinkLayer.ETHERNET ? 'Ethernet' : port.linkLayer === LinkLayer.INFINIBAND ? 'IB' : 'Unknown',
      mtu: Math.min(mtuBytes(port.activeMtu), options.mtu ?? Infinity),
      close,
      [Symbol.dispose]: close,
    };
  } catch (error) {
    pd.close();
    for (const cq of cqs) cq.close();
    throw error;
  }
}

/** Brings the QP to RTS towards `remote` (not needed with rdma_cm, which did it). */
export function connectQp(res: Resources, options: BenchOptions, remote: PeerInfo): void {
  res.mtu = Math.min(res.mtu, remote.mtu);
  if (res.cmId) return;
  if (options.connection === 'UD') {
    bringUp(res.qp, QpType.UD, { portNum: res.portNum, qkey: QKEY }, res.local.psn);
    const dgid = parseGid(remote.gid);
    const global = res.linkLayer === 'Ethernet' || !isZeroGid(dgid);
    res.ah = res.pd.createAh({
      dlid: remote.lid,
      portNum: res.portNum,
      ...(global ? { grh: { dgid, sgidIndex: res.gidIndex, hopLimit: 1 } } : {}),
    });
    return;
  }
  res.qp.connect(
    { qpNum: remote.qpNum, psn: remote.psn, lid: remote.lid, gid: remote.gid, mtu: remote.mtu },
    {
      portNum: res.portNum,
      gidIndex: res.gidIndex,
      mtu: res.mtu,
      maxRdAtomic: Math.min(res.outReads, remote.outReads),
      maxDestRdAtomic: res.outReads,
    },
  );
}

/** rdma_cm, client side: resolve the server's address and route, set up on the device the CM chose, connect. */
export async function cmConnect(options: BenchOptions, maxSize: number, host: string): Promise<Resources> {
  const id = CmId.create(PortSpace.TCP);
  try {
    await id.resolveAddr(host, options.port, { timeoutMs: 5000 });
    await id.resolveRoute({ timeoutMs: 5000 });
    const context = id.context;
    if (!context) throw new Error('rdma_cm resolved no device');
    const res = createResources(context, options, maxSize, id);
    await id.connect({ responderResources: res.outReads, initiatorDepth: res.outReads, retryCount: 7, rnrRetryCount: 7 });
    return res;
  } catch (error) {
    id.close();
    throw error;
  }
}

/** rdma_cm, server side: listen on every address; `ready` runs once listening (the client may then connect). */
export async function cmAccept(options: BenchOptions, maxSize: number, ready: () => void): Promise<Resources> {
  const listener = CmId.create(PortSpace.TCP);
  try {
    await listener.bind('0.0.0.0', options.port);
    listener.listen(1);
    ready();
    const [id] = (await once(listener, 'connection')) as [CmId];
    const context = id.context;
    if (!context) throw new Error('the incoming rdma_cm connection has no device');
    const res = createResources(context, options, maxSize, id);
    await id.accept({ responderResources: res.outReads, initiatorDepth: res.outReads, retryCount: 7, rnrRetryCount: 7 });
    return res;
  } finally {
    listener.close();
  }
}

/** The remote region as this side targets it. */
export function remoteRegion(remote: PeerInfo): { addr: bigint; rkey: number } {
  return { addr: BigInt(remote.addr), rkey: remote.rkey };
}
