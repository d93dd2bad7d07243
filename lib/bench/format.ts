/**
 * Text output in perftest's layout: the settings block, the address lines and the result columns, with
 * perftest's own printf formats, so scripts that parse ib_*_lat/bw output parse this too.
 */
import { sprintf } from './printf';
import type { BandwidthStats, LatencyDurationStats, LatencyStats } from './stats';

export const RESULT_LINE = '-'.repeat(87);

export const BW_HEADING = ' #bytes     #iterations    BW peak[MB/sec]    BW average[MB/sec]   MsgRate[Mpps]';
export const LAT_HEADING =
  ' #bytes #iterations    t_min[usec]    t_max[usec]  t_typical[usec]    t_avg[usec]    t_stdev[usec]   99% percentile[usec]   99.9% percentile[usec] ';
export const LAT_DURATION_HEADING = ' #bytes        #iterations       t_avg[usec]    tps average';

export function bandwidthLine(s: BandwidthStats): string {
  return sprintf(' %-7lu    %-10lu       %-7.2lf            %-7.2lf\t\t   %-7.6lf', s.bytes, s.iterations, s.peak, s.average, s.msgRate);
}

export function latencyLine(s: LatencyStats): string {
  return sprintf(
    ' %-7lu %d          %-7.2f        %-7.2f      %-7.2f  \t       %-7.2f     \t%-7.2f\t\t%-7.2f \t\t%-7.2f',
    s.bytes, s.iterations, s.min, s.max, s.typical, s.average, s.stdev, s.p99, s.p999,
  );
}

export function latencyDurationLine(s: LatencyDurationStats): string {
  return sprintf(' %-7lu       %d            %-7.2f        %-7.2f', s.bytes, s.iterations, s.average, s.tps);
}

export interface SettingsBlock {
  title: string;
  device: string;
  connection: string;
  /** Lines only one side or some tests print (perftest's conditions, decided by the caller). */
  txDepth?: number;
  rxDepth?: number;
  postList?: number;
  cqMod?: number;
  mtu: number;
  linkLayer: string;
  gidIndex?: number;
  /** Inline size (send/write) or outstanding reads (read/atomic). */
  inlineSize?: number;
  outReads?: number;
  rdmaCm: boolean;
  events: boolean;
  driver: string;
}

export function settingsBlock(s: SettingsBlock): string[] {
  const lines = [RESULT_LINE, `                    ${s.title}`];
  if (s.events) lines.push(' Test with events.');
  lines.push(
    ` Dual-port       : OFF\t\tDevice         : ${s.device}`,
    ` Number of qps   : 1\t\tTransport type : IB`,
    ` Connection type : ${s.connection}\t\tUsing SRQ      : OFF`,
  );
  if (s.txDepth !== undefined) lines.push(` TX depth        : ${s.txDepth}`);
  if (s.postList !== undefined && s.postList > 1) lines.push(` Post List       : ${s.postList}`);
  if (s.rxDepth !== undefined) lines.push(` RX depth        : ${s.rxDepth}`);
  if (s.cqMod !== undefined) lines.push(` CQ Moderation   : ${s.cqMod}`);
  lines.push(` Mtu             : ${s.mtu}[B]`, ` Link type       : ${s.linkLayer}`);
  if (s.gidIndex !== undefined) lines.push(` GID index       : ${s.gidIndex}`);
  if (s.outReads !== undefined) lines.push(` Outstand reads  : ${s.outReads}`);
  else lines.push(` Max inline data : ${s.inlineSize ?? 0}[B]`);
  lines.push(
    ` rdma_cm QPs\t : ${s.rdmaCm ? 'ON' : 'OFF'}`,
    ` Data ex. method : ${s.rdmaCm ? 'rdma_cm' : 'Ethernet'}`,
    ` Driver          : ${s.driver}`,
    RESULT_LINE,
  );
  return lines;
}

export interface AddressLine {
  lid: number;
  qpNum: number;
  psn: number;
  /** Read and atomic tests: outstanding reads. */
  outReads?: number;
  /** RDMA tests: the buffer the peer reaches. */
  rkey?: number;
  vaddr?: bigint;
  gid: Uint8Array;
}

/** ' local address: LID 0000 QPN 0x0011 PSN 0x539eb1 ...' and its GID line, bytes in decimal as perftest. */
export function addressLines(side: 'local' | 'remote', a: AddressLine): string[] {
  let line = sprintf(` ${side} address: LID %04x QPN 0x%04x PSN 0x%06x`, a.lid, a.qpNum, a.psn);
  if (a.outReads !== undefined) line += sprintf(' OUT 0x%02x', a.outReads);
  if (a.rkey !== undefined && a.vaddr !== undefined) line += sprintf(' RKey 0x%06x VAddr 0x%014x', a.rkey, a.vaddr);
  const gid = Array.from(a.gid, (b) => sprintf('%02d', b)).join(':');
  return [line, ` GID: ${gid}`];
}
