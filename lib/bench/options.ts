/**
 * `rdma-node bench` command lines: perftest's flags (short and long, `-s 64`, `-s64`, `--size=64`) and the
 * dependencies perftest forces between them (force_dependecies in perftest_parameters.c), so the same
 * command line means the same test as it does for ib_write_bw and friends.
 */
import { parseOptions, type OptionSpec } from '../core/argv';
import { isTestName, testInfo, testNames, type AtomicType, type Connection, type TestName } from './tests';

export type Driver = 'c' | 'ts';

export interface BenchOptions {
  test: TestName;
  /** The server to connect to; without it this side is the server. */
  host?: string;
  device?: string;
  ibPort: number;
  gidIndex?: number;
  size: number;
  /** -a: every size from 2 B to 8 MiB (UD: to the MTU). */
  all: boolean;
  /** 0 in duration mode. */
  iters: number;
  /** Seconds; 0 in iteration mode. */
  duration: number;
  /** Seconds of warm-up and cool-down in duration mode, left out of the measurement. */
  margin: number;
  port: number;
  rdmaCm: boolean;
  connection: Connection;
  inlineSize: number;
  postList: number;
  cqMod: number;
  txDepth: number;
  rxDepth: number;
  events: boolean;
  odp: boolean;
  noPeak: boolean;
  atomicType: AtomicType;
  mtu?: number;
  /** Where the loops run: the C core (like perftest) or TypeScript through the binding. */
  driver: Driver;
  /** TypeScript driver: count the calls into the addon and report them per operation (slows the run). */
  countCalls: boolean;
  json: boolean;
  plot?: string;
  help: boolean;
}

type Key = keyof BenchOptions;
interface Flag {
  short?: string;
  long: string;
  key?: Key;
  type: 'bool' | 'int' | 'string' | 'choice';
  min?: number;
  max?: number;
  choices?: readonly string[];
}

const flags: Flag[] = [
  { short: 'd', long: 'ib-dev', key: 'device', type: 'string' },
  { short: 'i', long: 'ib-port', key: 'ibPort', type: 'int', min: 1, max: 255 },
  { short: 'x', long: 'gid-index', key: 'gidIndex', type: 'int', min: 0, max: 65535 },
  { short: 's', long: 'size', key: 'size', type: 'int', min: 1, max: 2 ** 31 },
  { short: 'a', long: 'all', key: 'all', type: 'bool' },
  { short: 'n', long: 'iters', key: 'iters', type: 'int', min: 5, max: 100_000_000 },
  { short: 'D', long: 'duration', key: 'duration', type: 'int', min: 1, max: 86_400 },
  { short: 'f', long: 'margin', key: 'margin', type: 'int', min: 0, max: 86_400 },
  { short: 'p', long: 'port', key: 'port', type: 'int', min: 1, max: 65_535 },
  { short: 'R', long: 'rdma_cm', key: 'rdmaCm', type: 'bool' },
  { short: 'c', long: 'connection', key: 'connection', type: 'choice', choices: ['RC', 'UC', 'UD'] },
  { short: 'I', long: 'inline_size', key: 'inlineSize', type: 'int', min: 0, max: 912 },
  { short: 'l', long: 'post_list', key: 'postList', type: 'int', min: 1, max: 15_000 },
  { short: 'Q', long: 'cq-mod', key: 'cqMod', type: 'int', min: 1, max: 1024 },
  { short: 't', long: 'tx-depth', key: 'txDepth', type: 'int', min: 1, max: 15_000 },
  { short: 'r', long: 'rx-depth', key: 'rxDepth', type: 'int', min: 1, max: 16_384 },
  { short: 'e', long: 'events', key: 'events', type: 'bool' },
  { long: 'odp', key: 'odp', type: 'bool' },
  { short: 'N', long: 'noPeak', key: 'noPeak', type: 'bool' },
  { short: 'A', long: 'atomic_type', key: 'atomicType', type: 'choice', choices: ['FETCH_AND_ADD', 'CMP_AND_SWAP'] },
  { short: 'm', long: 'mtu', key: 'mtu', type: 'choice', choices: ['256', '512', '1024', '2048', '4096'] },
  // Accepted so perftest command lines work unchanged; the cycle counter here is calibrated per run.
  { short: 'F', long: 'CPU-freq', type: 'bool' },
  { long: 'driver', key: 'driver', type: 'choice', choices: ['c', 'ts'] },
  { long: 'count-calls', key: 'countCalls', type: 'bool' },
  { long: 'json', key: 'json', type: 'bool' },
  { long: 'plot', key: 'plot', type: 'string' },
  { short: 'h', long: 'help', key: 'help', type: 'bool' },
];

export const benchUsage = `usage: rdma-node bench <test> [options]           start a server and wait for a client
       rdma-node bench <test> <host> [options]    connect to the server at <host>

tests: ${testNames.join(' ')}

  -d, --ib-dev=<dev>         device (default: the first, or RDMA_NODE_DEVICE)
  -i, --ib-port=<port>       port of the device (default 1)
  -x, --gid-index=<index>    GID index (default: the first RoCE v2 IPv4 GID, else 0)
  -s, --size=<bytes>         message size (default 2 for latency, 65536 for bandwidth, 8 for atomics)
  -a, --all                  every size from 2 to 2^23 bytes
  -n, --iters=<n>            iterations (default 1000 for latency, 5000 for bandwidth)
  -D, --duration=<s>         run for a time instead of a number of iterations
  -f, --margin=<s>           warm-up and cool-down left out of a timed run (default duration/4)
  -p, --port=<port>          TCP port of the out-of-band exchange (default 18515)
  -R, --rdma_cm              connect the QPs with the RDMA connection manager
  -c, --connection=<RC|UC|UD>  transport, where the test allows it (default RC)
  -I, --inline_size=<bytes>  send messages up to this size inline (default 0)
  -l, --post_list=<n>        post n requests per call
  -Q, --cq-mod=<n>           signal one request in n (default 100, 1 above 8 KiB)
  -t, --tx-depth=<n>         requests in flight (default 128 for bandwidth, 1 for latency)
  -r, --rx-depth=<n>         receives posted (default 512)
  -e, --events               sleep on completion events instead of busy polling
      --odp                  register memory with on-demand paging
  -N, --noPeak               skip the peak bandwidth computation
  -A, --atomic_type=<type>   FETCH_AND_ADD (default) or CMP_AND_SWAP
  -m, --mtu=<bytes>          path MTU (default: the port's active MTU)
      --driver=<c|ts>        run the loops in the C core (default) or drive each post and poll from
                             TypeScript through the binding
      --count-calls          with --driver=ts: count the native calls per operation (a diagnostic:
                             counting slows the run, so its times are not comparable)
      --json                 print the results as JSON
      --plot=<file.svg>      with -a: plot latency or bandwidth against size
`;

/** perftest's limits and defaults (perftest_parameters.h). */
export const MAX_SIZE = 1 << 23;
const CQ_MOD_SIZE_LIMIT = 8192;
const MAX_INLINE_UD = 884;
const DEFAULT_PORT = 18515;

export interface ParsedArgs {
  test: TestName;
  host?: string;
  given: Partial<BenchOptions>;
}

function flagValue(flag: Flag, raw: string): string | number | boolean {
  const name = flag.short ? `-${flag.short}/--${flag.long}` : `--${flag.long}`;
  if (flag.type === 'string') return raw;
  if (flag.type === 'choice') {
    const value = flag.key === 'connection' || flag.key === 'atomicType' ? raw.toUpperCase() : raw;
    if (!flag.choices!.includes(value)) throw new Error(`${name} is one of ${flag.choices!.join(', ')}`);
    return flag.key === 'mtu' ? Number(value) : value;
  }
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < flag.min! || n > flag.max!) throw new Error(`${name} should be between ${flag.min} and ${flag.max}`);
  return n;
}

const specs: OptionSpec[] = flags.map((f) => ({ short: f.short, long: f.long, value: f.type !== 'bool' }));

/** Splits a command line (getopt_long's rules, as perftest) into the test, the host and the flags given. */
export function parseBenchArgs(argv: string[]): ParsedArgs {
  const parsed = parseOptions(argv, specs);
  const given: Record<string, unknown> = {};
  for (const flag of flags) {
    const raw = parsed.values.get(flag.short ?? flag.long)?.at(-1);
    if (raw !== undefined && flag.key) given[flag.key] = flag.type === 'bool' ? true : flagValue(flag, raw);
  }
  if (given.help) return { test: 'write_bw', given: given as Partial<BenchOptions> };
  const [test, host, ...extra] = parsed.positionals;
  if (test === undefined) throw new Error(`which test? one of ${testNames.join(', ')}`);
  if (!isTestName(test)) throw new Error(`unknown test ${test}: one of ${testNames.join(', ')}`);
  if (extra.length > 0) throw new Error(`unexpected argument ${extra[0]}`);
  return { test, host, given: given as Partial<BenchOptions> };
}

/**
 * The effective settings: defaults for the test, then perftest's forced dependencies. `server` matters
 * for the send_bw receiver, which never computes a peak. Throws on combinations perftest refuses.
 */
export function resolveOptions(parsed: ParsedArgs, server = parsed.host === undefined): { options: BenchOptions; warnings: string[] } {
  const g = parsed.given;
  const info = testInfo(parsed.test);
  const lat = info.kind === 'lat';
  const warnings: string[] = [];
  const o: BenchOptions = {
    test: parsed.test,
    host: parsed.host,
    device: g.device,
    ibPort: g.ibPort ?? 1,
    gidIndex: g.gidIndex,
    size: g.size ?? (info.verb === 'atomic' ? 8 : lat ? 2 : 65536),
    all: g.all ?? false,
    iters: g.iters ?? (lat ? 1000 : 5000),
    duration: g.duration ?? 0,
    margin: 0,
    port: g.port ?? DEFAULT_PORT,
    rdmaCm: g.rdmaCm ?? false,
    connection: g.connection ?? info.connections[0]!,
    inlineSize: g.inlineSize ?? 0,
    postList: g.postList ?? 1,
    cqMod: g.cqMod ?? 100,
    txDepth: g.txDepth ?? (lat ? 1 : 128),
    rxDepth: g.rxDepth ?? 512,
    events: g.events ?? false,
    odp: g.odp ?? false,
    noPeak: g.noPeak ?? false,
    atomicType: g.atomicType ?? 'FETCH_AND_ADD',
    mtu: g.mtu,
    driver: g.driver ?? 'c',
    countCalls: g.countCalls ?? false,
    json: g.json ?? false,
    plot: g.plot,
    help: g.help ?? false,
  };
  if (!info.connections.includes(o.connection)) {
    throw new Error(`${o.test} runs over ${info.connections.join('/')}, not ${o.connection}`);
  }
  if (info.verb === 'atomic' && g.size !== undefined && g.size !== 8) throw new Error('Message size cannot be changed for Atomic tests');
  if (o.odp && info.verb === 'atomic') throw new Error('ODP does not support ATOMICS for now (as perftest)');
  if (o.rdmaCm && o.connection !== 'RC') throw new Error(`rdma_cm connections here are RC only, not ${o.connection}`);
  if (o.plot !== undefined && !o.plot.endsWith('.svg')) throw new Error('--plot writes an .svg file');
  if (o.countCalls && o.driver !== 'ts') throw new Error('--count-calls counts the TypeScript driver\'s calls: add --driver=ts');

  if (o.duration > 0) {
    o.iters = 0;
    o.noPeak = true;
    o.margin = g.margin ?? Math.floor(o.duration / 4);
    if (o.events) throw new Error('Duration mode doesn\'t work with events.');
    if (o.all) throw new Error('Duration mode currently doesn\'t support running on all sizes.');
    if (!(o.duration > 2 * o.margin)) throw new Error('please check that DURATION > 2*MARGIN');
  } else {
    if (g.margin !== undefined) throw new Error('--margin applies to timed runs (-D)');
    o.txDepth = Math.min(o.txDepth, o.iters);
    if (info.verb === 'send') {
      o.rxDepth = Math.min(o.rxDepth, o.iters);
      if (o.connection !== 'RC' && g.rxDepth === undefined) o.rxDepth = Math.min(o.iters, 16_000);
    }
  }
  if (o.size > CQ_MOD_SIZE_LIMIT && o.connection !== 'UD' && !o.all) {
    if (g.cqMod === undefined) o.cqMod = 1;
    else if (o.cqMod > 1) warnings.push('Large message requested and CQ moderation enabled: it can lead to inaccurate results');
  }
  if (o.postList > 1) {
    if (g.cqMod === undefined) o.cqMod = o.postList;
    else if (o.postList % o.cqMod !== 0) throw new Error('Post list size must be a multiple of CQ moderation');
    if (o.postList > o.txDepth) throw new Error('post list must not exceed the TX depth');
  }
  o.cqMod = Math.min(o.cqMod, o.txDepth);
  if (info.verb === 'read' || info.verb === 'atomic') o.inlineSize = 0;
  if (o.connection === 'UD' && o.inlineSize > MAX_INLINE_UD) {
    warnings.push(`Setting inline size to ${MAX_INLINE_UD} (Max inline size in UD)`);
    o.inlineSize = MAX_INLINE_UD;
  }
  if (info.verb === 'send' && o.rxDepth % 2 === 1 && !o.all) o.rxDepth += 1;
  if (o.iters > 20_000 && info.kind === 'bw') o.noPeak = true;
  if (server && o.test === 'send_bw') o.noPeak = true;
  return { options: o, warnings };
}

/** The message sizes of a run: -a's powers of two (capped at `maxSize`, the MTU for UD), else -s. */
export function runSizes(options: Pick<BenchOptions, 'all' | 'size'>, maxSize = MAX_SIZE): number[] {
  if (!options.all) return [Math.min(options.size, maxSize)];
  const sizes: number[] = [];
  for (let size = 2; size <= Math.min(MAX_SIZE, maxSize); size *= 2) sizes.push(size);
  return sizes;
}

/**
 * What the client decides for both sides (the server adopts it, so flags need to be given only once):
 * everything that shapes the test, not where it runs locally.
 */
export const shapeKeys = [
  'size', 'all', 'iters', 'duration', 'margin', 'connection', 'inlineSize', 'postList', 'cqMod', 'txDepth', 'rxDepth',
  'events', 'odp', 'atomicType', 'mtu', 'driver', 'rdmaCm',
] as const satisfies readonly Key[];
export type Shape = Pick<BenchOptions, (typeof shapeKeys)[number]>;

export function shapeOf(options: BenchOptions): Shape {
  return Object.fromEntries(shapeKeys.map((k) => [k, options[k]])) as Shape;
}

/** The server's settings once the client's shape has arrived. */
export function adoptShape(server: BenchOptions, shape: Shape): BenchOptions {
  const merged = { ...server, ...shape };
  merged.noPeak = merged.noPeak || merged.test === 'send_bw' || merged.duration > 0;
  return merged;
}
