/**
 * One `rdma-node bench` run, server or client: the out-of-band handshake, the verbs objects, the
 * address exchange, then for each message size a barrier, the measurement loop and the report line,
 * in perftest's output format (or JSON, or an SVG plot of the sizes).
 */
import { writeFileSync } from 'node:fs';

import { mtuBytes } from '../verbs/constants';
import type { Context } from '../verbs/context';
import { openDevice } from '../verbs/device';
import { parseGid } from '../core/gid';
import { Control, type Message } from './control';
import { runInC } from './driver-c';
import { runInTs } from './driver-ts';
import {
  BW_HEADING, LAT_DURATION_HEADING, LAT_HEADING, RESULT_LINE, addressLines, bandwidthLine, latencyDurationLine, latencyLine, settingsBlock,
} from './format';
import { planLoop, type LoopDriver } from './loops';
import { MAX_SIZE, adoptShape, runSizes, shapeOf, type BenchOptions, type Shape } from './options';
import { Progress } from './progress';
import { cmAccept, cmConnect, connectQp, createResources, type PeerInfo, type Resources } from './session';
import { bandwidthStats, latencyDurationStats, latencyStats, type BandwidthStats, type LatencyDurationStats, type LatencyStats, type RawRun } from './stats';
import { plotSvg, type Series } from './svg';
import { testInfo, testTitle } from './tests';

const PROTOCOL = 1;

export type SizeResult = (
  | ({ kind: 'latency' } & LatencyStats)
  | ({ kind: 'latency-duration' } & LatencyDurationStats)
  | ({ kind: 'bandwidth' } & BandwidthStats)
) & {
  /** --count-calls: calls into the addon and usec of GC per operation (iteration, message sent or received). */
  callsPerOp?: number;
  gcUsecPerOp?: number;
};

export interface BenchReport {
  tool: 'rdma-node bench';
  test: string;
  side: 'server' | 'client';
  driver: 'c' | 'ts';
  device: string;
  ibPort: number;
  gidIndex: number;
  connection: string;
  mtu: number;
  linkLayer: string;
  settings: Omit<Shape, 'driver'> & { noPeak: boolean; outReads: number };
  local: PeerInfo;
  remote: PeerInfo;
  /** Latency in usec, bandwidth in MB/sec (2^20 bytes), message rate in Mpps, as perftest. */
  results: SizeResult[];
}

export interface BenchIo {
  /** A line of the text report (stdout). */
  out: (line: string) => void;
  progress: Progress;
}

const defaultIo: BenchIo = { out: (line) => process.stdout.write(`${line}\n`), progress: new Progress() };

const drivers: Record<'c' | 'ts', LoopDriver> = { c: runInC, ts: runInTs };
const driverNames = { c: 'C core', ts: 'TypeScript (each post and poll through the binding)' };

export async function runBench(given: BenchOptions, io: BenchIo = defaultIo): Promise<BenchReport> {
  const server = given.host === undefined;
  const text = !given.json;
  let control: Control | undefined;
  let res: Resources | undefined;
  let context: Context | undefined;
  try {
    let options = given;
    if (server) {
      if (text) io.out('\n************************************\n* Waiting for client to connect... *\n************************************');
      control = await Control.accept(options.port);
      const hello = await control.expect<Message & { version: number; test: string; shape: Shape }>('hello');
      if (hello.version !== PROTOCOL) throw new Error(`the client speaks bench protocol ${hello.version}, this server ${PROTOCOL}`);
      if (hello.test !== options.test) throw new Error(`the client runs ${hello.test}, this server ${options.test}`);
      options = adoptShape(options, hello.shape);
    } else {
      control = await Control.connect(options.host!, options.port);
      control.send({ type: 'hello', version: PROTOCOL, test: options.test, shape: shapeOf(options) });
    }
    const ctl = control;
    const sizes = (mtu: number): number[] => runSizes(options, options.connection === 'UD' ? mtu : MAX_SIZE);

    if (options.rdmaCm) {
      if (server) res = await cmAccept(options, Math.max(...sizes(MAX_SIZE)), () => ctl.send({ type: 'hello' }));
      else {
        await ctl.expect('hello');
        res = await cmConnect(options, Math.max(...sizes(MAX_SIZE)), options.host!);
      }
    } else {
      context = openDevice(options.device ?? process.env.RDMA_NODE_DEVICE);
      const portMtu = mtuBytes(context.queryPort(options.ibPort).activeMtu);
      res = createResources(context, options, Math.max(...sizes(Math.min(portMtu, options.mtu ?? Infinity))));
      if (server) ctl.send({ type: 'hello' });
      else await ctl.expect('hello');
    }
    ctl.send({ type: 'endpoint', ...res.local });
    const remote = (await ctl.expect<Message & PeerInfo>('endpoint')) as PeerInfo;
    connectQp(res, options, remote);

    const report = newReport(options, server, res, remote);
    if (text) for (const line of header(options, server, res, remote)) io.out(line);

    for (const size of sizes(res.mtu)) {
      const result = await runSize(options, server, res, remote, size, ctl, io);
      report.results.push(result);
      if (text) io.out(resultLine(result));
    }
    if (text) io.out(RESULT_LINE);
    if (options.plot) writeFileSync(options.plot, plot(report, options));
    if (!text) io.out(JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    return report;
  } catch (error) {
    control?.fail(error as Error);
    throw error;
  } finally {
    io.progress.done();
    res?.close();
    context?.close();
    control?.close();
  }
}

async function runSize(options: BenchOptions, server: boolean, res: Resources, remote: PeerInfo, size: number, ctl: Control, io: BenchIo): Promise<SizeResult> {
  const plan = planLoop(options, server, res, remote, size);
  if (plan?.postByte !== undefined) {
    // A stale counter from an earlier run must not look like the peer's first write.
    res.mr.bytes[plan.postByte] = 0;
    res.mr.bytes[plan.pollByte!] = 0;
  }
  if (plan && plan.prepost > 0 && options.driver === 'ts') {
    // The TypeScript driver's receives repost themselves (a receive ring) and span the whole receive
    // region: the ring's last receives stay posted after the run, ready for any larger next size.
    const recv = { sgList: [{ mr: res.mr, offset: res.region, length: res.region }] };
    res.ring = res.qp.createReceiveRing(Array.from({ length: plan.prepost }, () => recv));
  } else if (plan && plan.prepost > 0) {
    const recv = { sgList: [{ mr: res.mr, offset: plan.recv!.offset, length: plan.recv!.length }] };
    res.qp.postRecv(Array.from({ length: plan.prepost }, () => recv));
  }
  ctl.send({ type: 'ready', size });
  await ctl.expect('ready');

  let result: SizeResult | undefined;
  if (plan) {
    const started = Date.now();
    io.progress.start(`${options.test} ${size} B`);
    const total = options.iters;
    const raw = await drivers[options.driver](res, plan, (done) =>
      io.progress.update(total > 0 ? done / total : (Date.now() - started) / (options.duration * 1000))).finally(() => {
      res.ring?.close();
      res.ring = undefined;
    });
    io.progress.done();
    result = summarize(options, server, size, raw);
  }
  ctl.send({ type: 'done', result: result ?? null });
  const peer = await ctl.expect<Message & { result: SizeResult | null }>('done');
  // Passive servers (write/read/atomic bandwidth, read/atomic latency) print the client's results.
  const shown = result ?? peer.result;
  if (!shown) throw new Error('neither side measured anything');
  return shown;
}

function summarize(options: BenchOptions, server: boolean, size: number, raw: RawRun): SizeResult {
  const result = stats(options, server, size, raw);
  const ops = Math.max(1, raw.scnt, raw.rcnt);
  if (raw.nativeCalls !== undefined) result.callsPerOp = raw.nativeCalls / ops;
  if (raw.gcMs !== undefined) result.gcUsecPerOp = (raw.gcMs * 1000) / ops;
  return result;
}

function stats(options: BenchOptions, server: boolean, size: number, raw: RawRun): SizeResult {
  const info = testInfo(options.test);
  if (info.kind === 'lat') {
    if (options.duration > 0) return { kind: 'latency-duration', ...latencyDurationStats(raw, size, info.rttFactor) };
    return { kind: 'latency', ...latencyStats(raw, size, options.iters, info.rttFactor) };
  }
  const window = options.duration > 0 ? 'sample' : 'run';
  if (server) return { kind: 'bandwidth', ...bandwidthStats(raw, size, raw.rcnt, { window, peak: false }) };
  return { kind: 'bandwidth', ...bandwidthStats(raw, size, options.iters, { window, peak: !options.noPeak }) };
}

function resultLine(result: SizeResult): string {
  if (result.callsPerOp !== undefined) {
    return `${measurementLine(result)}\n native calls per operation: ${result.callsPerOp.toFixed(2)}, GC per operation: ${(result.gcUsecPerOp ?? 0).toFixed(2)} usec`;
  }
  return measurementLine(result);
}

function measurementLine(result: SizeResult): string {
  if (result.kind === 'latency') return latencyLine(result);
  if (result.kind === 'latency-duration') return latencyDurationLine(result);
  return bandwidthLine(result);
}

function newReport(options: BenchOptions, server: boolean, res: Resources, remote: PeerInfo): BenchReport {
  const { driver: _driver, ...shape } = shapeOf(options);
  return {
    tool: 'rdma-node bench',
    test: options.test,
    side: server ? 'server' : 'client',
    driver: options.driver,
    device: res.context.name,
    ibPort: res.portNum,
    gidIndex: res.gidIndex,
    connection: options.connection,
    mtu: res.mtu,
    linkLayer: res.linkLayer,
    settings: {
      ...shape,
      noPeak: options.noPeak,
      outReads: res.outReads,
    },
    local: res.local,
    remote,
    results: [],
  };
}

function header(options: BenchOptions, server: boolean, res: Resources, remote: PeerInfo): string[] {
  const info = testInfo(options.test);
  const reads = info.verb === 'read' || info.verb === 'atomic';
  const lines = settingsBlock({
    title: testTitle(info, options.atomicType),
    device: res.context.name,
    connection: options.connection,
    txDepth: server ? undefined : options.txDepth,
    rxDepth: info.verb === 'send' && server ? options.rxDepth : undefined,
    postList: options.postList,
    cqMod: info.kind === 'bw' ? options.cqMod : undefined,
    mtu: res.mtu,
    linkLayer: res.linkLayer,
    gidIndex: res.gidIndex,
    inlineSize: options.inlineSize,
    outReads: reads ? res.outReads : undefined,
    rdmaCm: options.rdmaCm,
    events: options.events,
    driver: driverNames[options.driver],
  });
  const rdma = info.verb !== 'send';
  for (const [side, endpoint] of [['local', res.local], ['remote', remote]] as const) {
    lines.push(
      ...addressLines(side, {
        lid: endpoint.lid,
        qpNum: endpoint.qpNum,
        psn: endpoint.psn,
        outReads: reads ? endpoint.outReads : undefined,
        rkey: rdma ? endpoint.rkey : undefined,
        vaddr: rdma ? BigInt(endpoint.addr) : undefined,
        gid: parseGid(endpoint.gid),
      }),
    );
  }
  lines.push(RESULT_LINE, info.kind === 'bw' ? BW_HEADING : options.duration > 0 ? LAT_DURATION_HEADING : LAT_HEADING);
  return lines;
}

/** Latency (typical, average, 99%) or bandwidth (average, peak) against size. */
function plot(report: BenchReport, options: BenchOptions): string {
  const info = testInfo(options.test);
  const title = `${testTitle(info, options.atomicType)} on ${report.device} (${driverNames[options.driver]})`;
  const pick = (kind: SizeResult['kind'], key: string): Array<[number, number]> =>
    report.results.filter((r) => r.kind === kind).map((r) => [r.bytes, (r as unknown as Record<string, number>)[key]!]);
  let series: Series[];
  let yLabel: string;
  if (info.kind === 'bw') {
    series = [{ name: 'BW average', points: pick('bandwidth', 'average') }];
    if (report.results.some((r) => r.kind === 'bandwidth' && r.peak > 0)) series.push({ name: 'BW peak', points: pick('bandwidth', 'peak') });
    yLabel = 'bandwidth [MB/sec]';
  } else {
    series = [
      { name: 't_typical', points: pick('latency', 'typical') },
      { name: 't_avg', points: pick('latency', 'average') },
      { name: '99% percentile', points: pick('latency', 'p99') },
    ];
    yLabel = 'latency [usec]';
  }
  return plotSvg(series, { title, yLabel });
}
