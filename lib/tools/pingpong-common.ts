/** What rdma-core's ibv_rc/ud/srq_pingpong share: flags, addresses, the completion loop, the report. */
import { randomInt } from 'node:crypto';

import { CompletionBatch } from '../verbs/completion';
import { LinkLayer, Mtu, QpType, WcStatus, enumName, mtuFromBytes } from '../verbs/constants';
import type { Context } from '../verbs/context';
import type { CompletionQueue } from '../verbs/cq';
import { openDevice } from '../verbs/device';
import { formatIpv6 } from '../core/gid';
import type { QueuePair } from '../verbs/qp/qp';
import { toRtr, toRts } from '../verbs/qp/transitions';
import { flag, intOption, parseOptions, stringOption, type OptionSpec } from '../core/argv';
import type { PingpongDest } from './pingpong-wire';

export const RECV_WRID = 1;
export const SEND_WRID = 2;

const specs: OptionSpec[] = [
  { short: 'p', long: 'port', value: true },
  { short: 'd', long: 'ib-dev', value: true },
  { short: 'i', long: 'ib-port', value: true },
  { short: 's', long: 'size', value: true },
  { short: 'm', long: 'mtu', value: true },
  { short: 'r', long: 'rx-depth', value: true },
  { short: 'n', long: 'iters', value: true },
  { short: 'l', long: 'sl', value: true },
  { short: 'e', long: 'events' },
  { short: 'g', long: 'gid-idx', value: true },
  { short: 'o', long: 'odp' },
  { short: 'q', long: 'num-qp', value: true },
];

export interface PingpongSettings {
  /** The server to connect to; undefined: be the server. */
  server?: string;
  port: number;
  device?: string;
  ibPort: number;
  size: number;
  mtu: Mtu;
  rxDepth: number;
  iters: number;
  sl: number;
  events: boolean;
  /** -1: no GID (InfiniBand without GRH), as the C programs do without -g. */
  gidIndex: number;
  odp: boolean;
  numQp: number;
}

export function pingpongSettings(argv: string[], sizeDefault: number): PingpongSettings {
  const parsed = parseOptions(argv, specs);
  if (parsed.positionals.length > 1) throw new Error('usage: [options] [server]');
  const mtu = mtuFromBytes(intOption(parsed, 'm', 1024));
  if (mtu === undefined || 128 << mtu !== intOption(parsed, 'm', 1024)) throw new Error('-m: MTU must be 256, 512, 1024, 2048 or 4096');
  const settings: PingpongSettings = {
    server: parsed.positionals[0],
    port: intOption(parsed, 'p', 18515),
    device: stringOption(parsed, 'd'),
    ibPort: intOption(parsed, 'i', 1),
    size: intOption(parsed, 's', sizeDefault),
    mtu,
    rxDepth: intOption(parsed, 'r', 500),
    iters: intOption(parsed, 'n', 1000),
    sl: intOption(parsed, 'l', 0),
    events: flag(parsed, 'e'),
    gidIndex: intOption(parsed, 'g', -1),
    odp: flag(parsed, 'o'),
    numQp: intOption(parsed, 'q', 16),
  };
  if (settings.port < 0 || settings.port > 65535 || settings.ibPort < 1 || settings.size < 1 || settings.rxDepth < 1 || settings.iters < 1) {
    throw new Error('invalid option value');
  }
  return settings;
}

export function openPingpongDevice(settings: PingpongSettings): Context {
  return openDevice(settings.device);
}

/** This side's address for QP `qpn`, with a random PSN, like the C programs. */
export function localDest(context: Context, settings: PingpongSettings, qpn: number): PingpongDest {
  const port = context.queryPort(settings.ibPort);
  if (port.linkLayer !== LinkLayer.ETHERNET && port.lid === 0) throw new Error("Couldn't get local LID");
  let gid: Uint8Array = new Uint8Array(16);
  if (settings.gidIndex >= 0) {
    const entry = context.gidTable().find((e) => e.portNum === settings.ibPort && e.index === settings.gidIndex);
    if (!entry) throw new Error(`can't read sgid of index ${settings.gidIndex}`);
    gid = entry.raw;
  }
  return { lid: port.lid, qpn, psn: randomInt(0, 1 << 24), gid };
}

const hex = (value: number, width: number): string => value.toString(16).padStart(width, '0');

export function describeDest(label: 'local address: ' | 'remote address:', dest: PingpongDest, separator = ','): string {
  return `  ${label} LID 0x${hex(dest.lid, 4)}, QPN 0x${hex(dest.qpn, 6)}, PSN 0x${hex(dest.psn, 6)}${separator} GID ${formatIpv6(dest.gid)}`;
}

/** RTR then RTS towards `dest`, with the attributes the C programs use. */
export function connectRc(qp: QueuePair, settings: PingpongSettings, myPsn: number, dest: PingpongDest): void {
  const ahAttr = { dlid: dest.lid, sl: settings.sl, srcPathBits: 0, portNum: settings.ibPort,
    ...(hasGid(dest) ? { grh: { dgid: dest.gid, hopLimit: 1, sgidIndex: Math.max(0, settings.gidIndex) } } : {}) };
  // ibv_rc_pingpong's timers and limits are the transitions' defaults.
  toRtr(qp, QpType.RC, { destQpNum: dest.qpn, rqPsn: dest.psn, pathMtu: settings.mtu, ahAttr });
  toRts(qp, QpType.RC, myPsn);
}

/** The C programs use the GID (a GRH) only when the peer sent one. */
export function hasGid(dest: PingpongDest): boolean {
  return dest.gid.subarray(8).some((b) => b !== 0);
}

/**
 * Polls (or, with -e, sleeps on the channel) until `done()`, handing every successful completion to
 * `handle`. A failed completion ends the run with the C programs' message.
 */
async function completionLoop(cq: CompletionQueue, events: boolean, done: () => boolean, handle: (wrId: number, qpNum: number, byteLen: number) => void): Promise<void> {
  const batch = new CompletionBatch(64);
  while (!done()) {
    if (events) await cq.wait({}, batch);
    else cq.poll(batch);
    for (let i = 0; i < batch.count; i++) {
      const status = batch.status(i);
      if (status !== WcStatus.SUCCESS) {
        throw new Error(`Failed status ${enumName(WcStatus, status)} (${status}) for wr_id ${batch.wrId(i)}`);
      }
      const completion = batch.get(i);
      handle(Number(completion.wrId), completion.qpNum, completion.byteLen);
    }
  }
}

export interface PingpongRun {
  settings: PingpongSettings;
  cq: CompletionQueue;
  /** QPs taking part; a completion names its QP by number. */
  qpNums: number[];
  /** Receives are reposted (up to rx_depth) once this few remain posted. */
  lowWater: number;
  postRecv(count: number): void;
  postSend(qp: number): void;
}

/**
 * The ping-pong as the C programs run it: each QP has one send and one receive pending at a time and
 * sends again when both completed; the client starts. Prints the C programs' report at the end.
 */
export async function runPingpong(run: PingpongRun): Promise<void> {
  const { settings } = run;
  const pending = run.qpNums.map(() => RECV_WRID);
  if (settings.server) {
    run.qpNums.forEach((_, i) => {
      run.postSend(i);
      pending[i] = RECV_WRID | SEND_WRID;
    });
  }
  let routs = settings.rxDepth;
  let rcnt = 0;
  let scnt = 0;
  const started = process.hrtime.bigint();
  await completionLoop(run.cq, settings.events, () => rcnt >= settings.iters && scnt >= settings.iters, (wrId, qpNum) => {
    const i = run.qpNums.length === 1 ? 0 : run.qpNums.indexOf(qpNum);
    if (i < 0) throw new Error(`Couldn't find QPN ${qpNum.toString(16).padStart(6, '0')}`);
    if (wrId === SEND_WRID) scnt++;
    else {
      if (--routs <= run.lowWater) {
        run.postRecv(settings.rxDepth - routs);
        routs = settings.rxDepth;
      }
      rcnt++;
    }
    pending[i]! &= ~wrId;
    if (scnt < settings.iters && pending[i] === 0) {
      run.postSend(i);
      pending[i] = RECV_WRID | SEND_WRID;
    }
  });
  console.log(report(settings.size, settings.iters, started));
}

function report(size: number, iters: number, started: bigint): string {
  const usec = Number(process.hrtime.bigint() - started) / 1000;
  const bytes = size * iters * 2;
  return `${bytes} bytes in ${(usec / 1e6).toFixed(2)} seconds = ${((bytes * 8) / usec).toFixed(2)} Mbit/sec\n` +
    `${iters} iters in ${(usec / 1e6).toFixed(2)} seconds = ${(usec / iters).toFixed(2)} usec/iter`;
}
