/**
 * `npm run bench:collectives`: this package's collectives against Open MPI's on the same two VMs, in one
 * run, with the same ranks (two per VM, under mpirun across both): MPI_Barrier, MPI_Bcast, MPI_Allreduce
 * (float sum) and MPI_Allgather from a small osu-style C program (native/bench/mpi_collectives.c, built
 * with mpicc) and the same loops over `communicator(job)`; Open MPI with the best transport that works
 * there (UCX, else the openib BTL, else TCP; the report says which); the link's RDMA write bandwidth from
 * `rdma-node bench write_bw` between the VMs; and both of our algorithms at every size, to place the
 * switch points. Writes BENCHMARKS-collectives.md. Always runs in a pair of Soft-RoCE VMs: one host's
 * device cannot provide a second host.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

import { awaitPeer, tellPeer } from '../harness/vm/baton';
import { runInVm } from '../harness/vm';
import { hostRole, PAIR_SUBNET } from '../harness/vm/pair';
import { capture, mpirunAcrossPair, startSshd } from '../harness/vm/services';
import { byteLabel } from './units';
import { communicator, joinJob, largeMessageAlgorithms, type Thresholds } from '..';

const KiB = 1024;
const MiB = 1024 * KiB;
const sizes = [8, 64, 512, 4 * KiB, 32 * KiB, 256 * KiB, MiB, 4 * MiB];
/** Iterations per size (TCG is ≈25× slower than the machine): more for small messages, as OSU does. */
const iterations = (bytes: number): number => (bytes >= MiB ? 5 : bytes >= 32 * KiB ? 20 : 100);
const ops = ['barrier', 'broadcast', 'allreduce', 'allgather'] as const;
type OpName = (typeof ops)[number];
const cli = join(__dirname, '..', 'cli', 'main.js');

/** Our algorithm choice: the default thresholds, or always the small- or large-message algorithms. */
const variants: Record<string, Partial<Thresholds>> = {
  default: {},
  small: { broadcast: Infinity, allreduce: Infinity, allgather: Infinity },
  large: largeMessageAlgorithms,
};

interface Row {
  op: OpName;
  bytes: number;
  us: number;
}

// --- a rank under mpirun: the osu loops over a communicator

async function rankMain(variant: string, device: string): Promise<void> {
  const job = await joinJob();
  const comm = await communicator(job, { device, thresholds: variants[variant] });
  const src = new Float32Array(4 * MiB / 4);
  const dst = new Float32Array((4 * MiB / 4) * job.size);
  for (const op of ops) {
    for (const bytes of op === 'barrier' ? [0] : sizes) {
      const n = bytes / 4;
      const run = (): Promise<unknown> =>
        op === 'barrier' ? comm.barrier()
          : op === 'broadcast' ? comm.broadcast(src.subarray(0, n), 0)
            : op === 'allreduce' ? comm.allreduce(src.subarray(0, n), dst.subarray(0, n))
              : comm.allgather(src.subarray(0, n), dst.subarray(0, n * job.size));
      const iters = iterations(bytes);
      await comm.barrier();
      let start = 0n;
      for (let i = 0; i < Math.floor(iters / 10) + 1 + iters; i++) {
        if (i === Math.floor(iters / 10) + 1) start = process.hrtime.bigint();
        await run();
      }
      const mine = Number(process.hrtime.bigint() - start) / iters / 1000;
      const all = await job.allgather(Buffer.from(Float64Array.of(mine).buffer));
      const us = all.reduce((sum, b) => sum + b.readDoubleLE(0), 0) / job.size;
      if (job.rank === 0) console.log(JSON.stringify({ op, bytes, us } satisfies Row));
    }
  }
  comm.close();
  job.close();
}

// --- host 0 of the pair: every measurement

const role = (): ReturnType<typeof hostRole> => hostRole();

/** Open MPI's transports, best first, as Open MPI would pick them on RoCE. */
const transports = (device: string): Record<string, string[]> => ({
  // Open MPI 4.1 lets UCX drive only mlx* devices unless told otherwise; GID 1 is rxe's IPv4-mapped
  // RoCE v2 GID, the one that routes over the link.
  [`UCX (pml ucx over ${device})`]: ['--mca', 'pml', 'ucx', '--mca', 'pml_ucx_devices', 'any', '-x', `UCX_NET_DEVICES=${device}:1`, '-x', 'UCX_IB_GID_INDEX=1', '--mca', 'btl', '^openib'],
  [`openib BTL (RDMA over ${device}, rdmacm)`]: ['--mca', 'pml', 'ob1', '--mca', 'btl', 'self,vader,openib', '--mca', 'btl_openib_cpc_include', 'rdmacm',
    '--mca', 'btl_openib_if_include', device, '--mca', 'btl_openib_allow_ib', '1', '--mca', 'btl_openib_warn_no_device_params_found', '0', '--mca', 'btl_openib_gid_index', '1'],
  'TCP BTL (over the link)': ['--mca', 'pml', 'ob1', '--mca', 'btl', 'self,vader,tcp', '--mca', 'btl_tcp_if_include', `${PAIR_SUBNET}.0/24`],
});
/** Our ranks bootstrap through PMIx and use RDMA; Open MPI's own traffic (none here) stays on TCP. */
const oursMca = ['--mca', 'pml', 'ob1', '--mca', 'btl', 'self,tcp', '--mca', 'btl_tcp_if_include', `${PAIR_SUBNET}.0/24`];
const RUN_TIMEOUT_MS = 20 * 60_000;

const parseMpi = (out: string): Row[] =>
  out.trim().split('\n').filter((l) => /^\w+ \d+ [\d.]+$/.test(l)).map((l) => {
    const [op, bytes, us] = l.split(' ');
    return { op: op as OpName, bytes: Number(bytes), us: Number(us) };
  });

const parseOurs = (out: string): Row[] => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row);

const linkArgs = (device: string): string[] => ['bench', 'write_bw', '-d', device, '-s', String(MiB), '-n', '100'];

/** Host 1: the write_bw server that host 0 measures the link against (one client, then it exits). */
const linkServer = (device: string): ChildProcess => spawn(process.execPath, [cli, ...linkArgs(device)], { stdio: 'ignore' });

/** Host 0: the link's RDMA write bandwidth to host 1 (bytes/s), retried while host 1's server is not up. */
async function linkBandwidth(device: string): Promise<number> {
  for (const deadline = Date.now() + 60_000; ; ) {
    const client = await capture(process.execPath, [cli, ...linkArgs(device), role().peer, '--json'], { timeoutMs: 5 * 60_000 });
    if (client.status === 0) {
      const report = JSON.parse(client.stdout.trim().split('\n').at(-1)!) as { results: { average: number }[] };
      return report.results[0]!.average * MiB; // MB/s (2^20) → bytes/s
    }
    if (Date.now() > deadline || !/refused|ECONNREFUSED/i.test(client.stderr + client.stdout)) throw new Error(`write_bw between the VMs failed: ${client.stderr || client.stdout}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

interface Measured {
  openMpi: string;
  transport: string;
  tried: string[];
  mpi: Row[];
  ours: Record<string, Row[]>;
  failures: string[];
  linkBps: number;
}

/** Every measurement, in one run; what fails is reported with the reason and the rest still measured. */
async function measureAll(binary: string): Promise<Measured> {
  const device = role().device;
  const argv = [...sizes.map(String), '--', ...sizes.map((b) => String(iterations(b)))];
  const openMpi = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]!.trim();
  const m: Measured = { openMpi, transport: '', tried: [], mpi: [], ours: {}, failures: [], linkBps: 0 };
  // What a failed run says about why: its first error line (Open MPI's banners say nothing).
  const last = (text: string): string => {
    const lines = text.split('\n').map((l) => l.replace(/^\[[\w:. -]+\]\s*/, '').trim()).filter((l) => l && !/^-+$/.test(l));
    const said = (pattern: RegExp): string | undefined => lines.find((l) => pattern.test(l) && !/help message|aggregate/i.test(l));
    return (said(/fatal|unable to reach|unreachable/i) ?? said(/error|failed/i) ?? lines.at(-1) ?? 'no output').slice(0, 200);
  };
  for (const [name, mca] of Object.entries(transports(device))) {
    const run = await mpirunAcrossPair(mca, [binary, ...argv], { timeoutMs: RUN_TIMEOUT_MS, echo: true });
    if (run.status === 0 && parseMpi(run.stdout).length > 0) {
      m.transport = name;
      m.mpi = parseMpi(run.stdout);
      break;
    }
    m.tried.push(`${name}: exit ${run.status}: ${last(run.stderr)}`);
  }
  for (const variant of Object.keys(variants)) {
    const run = await mpirunAcrossPair(oursMca, [process.execPath, __filename, '--rank', variant, device], { timeoutMs: RUN_TIMEOUT_MS, echo: true });
    if (run.status === 0) m.ours[variant] = parseOurs(run.stdout);
    else m.failures.push(`ours (${variant}): exit ${run.status}: ${last(run.stderr)}`);
  }
  try {
    m.linkBps = await linkBandwidth(device);
  } catch (error) {
    m.failures.push((error as Error).message);
  }
  return m;
}

const RANKS = 4;
const find = (rows: Row[] | undefined, op: OpName, bytes: number): number | undefined => rows?.find((r) => r.op === op && r.bytes === bytes)?.us;
const fmt = (us: number | undefined): string => (us === undefined ? '–' : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`);
const mb = (bps: number): string => `${(bps / MiB).toFixed(1)} MB/s`;

/** The smallest size from which the large-message algorithm was faster at every larger size measured. */
function crossover(ours: Record<string, Row[]>, op: OpName): number | undefined {
  const wins = (b: number): boolean => (find(ours.large, op, b) ?? Infinity) < (find(ours.small, op, b) ?? Infinity);
  return sizes.find((_, i) => sizes.slice(i).every(wins));
}

function report({ openMpi, transport, tried, mpi, ours, failures, linkBps }: Measured): string {
  const lines = [
    '# Collectives: rdma-node against Open MPI, side by side',
    '',
    `Measured by \`npm run bench:collectives\` in one run on two Soft-RoCE VMs linked to each other (qemu TCG,`,
    `Linux ${release()}, ${role().device} on the private link), ${RANKS} ranks: two per VM, started by Open MPI's mpirun across both.`,
    `${openMpi} (\`native/bench/mpi_collectives.c\`, osu-style: warm-up, then iterations; each rank's average,`,
    `averaged over the ranks) used ${transport ? `**${transport}**` : 'no transport that worked'};`,
    'this package used RDMA (rxe) for every pair of ranks, loopback included. Allreduce is float32 sum; allgather sizes are per rank.',
    ...(tried.length ? ['', 'Open MPI transports that did not work, in the order tried:', ...tried.map((t) => `- ${t}`)] : []),
    ...(failures.length ? ['', 'Measurements that failed:', ...failures.map((t) => `- ${t}`)] : []),
    '',
    '| collective | size | Open MPI | rdma-node | ours / Open MPI | ours, small-message algorithm | ours, large-message algorithm |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const ratios: number[] = [];
  for (const op of ops) {
    for (const bytes of op === 'barrier' ? [0] : sizes) {
      const theirs = find(mpi, op, bytes);
      const mine = find(ours.default, op, bytes);
      const ratio = theirs !== undefined && mine !== undefined ? mine / theirs : undefined;
      if (ratio !== undefined) ratios.push(ratio);
      const alt = op === 'barrier' ? ['', ''] : [fmt(find(ours.small, op, bytes)), fmt(find(ours.large, op, bytes))];
      lines.push(`| ${op} | ${op === 'barrier' ? '' : byteLabel(bytes)} | ${fmt(theirs)} | ${fmt(mine)} | ${ratio === undefined ? '–' : `${ratio.toFixed(2)}×`} | ${alt.join(' | ')} |`);
    }
  }
  const big = 4 * MiB;
  const busBw = (us: number | undefined): number => (us === undefined ? 0 : (big / (us / 1e6)) * (2 * (RANKS - 1)) / RANKS);
  const oursBus = busBw(find(ours.default, 'allreduce', big));
  const mpiBus = busBw(find(mpi, 'allreduce', big));
  const within = ratios.filter((r) => r <= 1).length;
  const linkShare = linkBps > 0 ? oursBus / linkBps : 0;
  const at = (op: OpName, perRank = 1): string => {
    const from = crossover(ours, op);
    return from === undefined ? 'never, up to 4 MiB' : perRank === 1 ? byteLabel(from) : `${byteLabel(from)} per rank (${byteLabel(from * perRank)} gathered)`;
  };
  lines.push(
    '',
    '## Against the targets',
    '',
    `- Latency, ours ≤ 1.0× Open MPI's: met at ${within} of ${ratios.length} rows; the worst is ${ratios.length ? `${Math.max(...ratios).toFixed(2)}×` : '–'}.`,
    `- Allreduce bus bandwidth at 4 MiB (algorithm bandwidth × 2(n−1)/n, as NCCL counts it): ours ${mb(oursBus)}, Open MPI's ${mb(mpiBus)};`,
    `  the link's RDMA write bandwidth (\`rdma-node bench write_bw\`, 1 MiB messages, host 0 to host 1, same run): ${linkBps > 0 ? mb(linkBps) : 'not measured'};`,
    `  ours is ${linkShare.toFixed(2)}× the link (target ≥ 0.8×): ${linkShare >= 0.8 ? 'met' : 'not met'}.`,
    '',
    '## Switch points measured here',
    '',
    'The size from which the large-message algorithm was faster at every size measured (4 ranks, two VMs):',
    `- broadcast (binomial → scatter + ring allgather): ${at('broadcast')}`,
    `- allreduce (recursive doubling → ring reduce-scatter + allgather): ${at('allreduce')}`,
    `- allgather (Bruck → ring): ${at('allgather', RANKS)}; \`thresholds.allgather\` counts the bytes gathered`,
    '',
    'At 8 B the "large-message" allreduce is recursive doubling too: 2 floats cannot be split over 4 ranks.',
    '',
    'Every collective here is a promise: each iteration of our loops crosses into the addon, a libuv worker',
    'thread runs the plan and the result comes back through the event loop, so a small collective pays that',
    'round trip on top of the messages; under TCG the thread hand-offs are emulated too.',
    '',
  );
  return `${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--rank') {
    await rankMain(argv[1]!, argv[2]!);
    return 0;
  }
  if (argv[0] === '--pair') {
    const me = role();
    startSshd();
    if (!me.server) {
      const server = linkServer(me.device);
      await awaitPeer(me, 'bench-done');
      server.kill();
      return 0;
    }
    try {
      const text = report(await measureAll(argv[1]!));
      const file = join(__dirname, '..', '..', '..', 'BENCHMARKS-collectives.md');
      writeFileSync(file, text);
      console.log(text);
      console.log(`written to ${file}`);
      return 0;
    } finally {
      await tellPeer(me, 'bench-done');
    }
  }
  // Under build/, which the VMs see (the working directory is shared with them).
  const dir = join(__dirname, '..', '..', '..', 'build');
  mkdirSync(dir, { recursive: true });
  const binary = join(dir, 'mpi_collectives');
  const built = spawnSync('mpicc', ['-O2', '-o', binary, join(__dirname, '..', '..', '..', 'native', 'bench', 'mpi_collectives.c')], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('mpicc failed (npm run setup installs libopenmpi-dev)');
  return runInVm([process.execPath, __filename, '--pair', binary], { hosts: 2, cwd: process.cwd(), timeoutMs: 60 * 60_000 });
}

main(process.argv.slice(2)).then((status) => (process.exitCode = status), (error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
