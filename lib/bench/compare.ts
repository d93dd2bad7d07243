#!/usr/bin/env node
/**
 * `npm run bench:compare`: perftest and `rdma-node bench` (C core and TypeScript driver) alternately on
 * the same device with the same flags, then the QP-count sweep; writes BENCHMARKS.md. Runs itself inside
 * the Soft-RoCE VM when this host has no RDMA device. `--rounds N` (default 5), `--out FILE`, `--max-qps N`.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';


import { CompletionBatch } from '../verbs/completion';
import { hostHasDevice, insideVm, rerunInVm } from '../harness/device-host';
import { listDevices, openDevice } from '../verbs/device';
import { metrics, listening, type Tool, parsePerftest, renderBenchmarks, shortfallNotes, type Environment, type Metric, type MetricResult } from './compare-report';
import { parseBenchArgs, resolveOptions } from './options';
import { Progress } from './progress';
import { runBench, type BenchReport } from './run';
import { scalePoint, sweepCounts, type ScalePoint } from './scale';
import { endpointCosts, loopSplit } from './endpoint-costs';

const PERFTEST_PORT = 18515;
const BENCH_PORT = 18516;
const RUN_TIMEOUT_MS = 120_000;
const NICE = ['nice', '-n', '19'];

interface Agent {
  child: ChildProcessWithoutNullStreams;
  pending: Map<number, (reply: { report?: BenchReport; error?: string }) => void>;
}

/** A bench process that runs `rdma-node bench` command lines sent to it, one at a time. */
async function agentMain(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  const quiet = new Progress({ isTTY: false, write: () => true });
  for await (const line of lines) {
    const { id, argv } = JSON.parse(line) as { id: number; argv: string[] };
    try {
      const { options } = resolveOptions(parseBenchArgs(argv));
      const report = await runBench({ ...options, json: true }, { out: () => undefined, progress: quiet });
      process.stdout.write(`${JSON.stringify({ id, report }, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}\n`);
    } catch (error) {
      process.stdout.write(`${JSON.stringify({ id, error: (error as Error).message })}\n`);
    }
  }
}

function startAgent(): Agent {
  const child = spawn(NICE[0]!, [...NICE.slice(1), process.execPath, __filename, '--agent'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const agent: Agent = { child, pending: new Map() };
  createInterface({ input: child.stdout }).on('line', (line) => {
    const reply = JSON.parse(line) as { id: number; report?: BenchReport; error?: string };
    agent.pending.get(reply.id)?.(reply);
    agent.pending.delete(reply.id);
  });
  child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  return agent;
}

let nextId = 0;
function ask(agent: Agent, argv: string[]): Promise<{ report?: BenchReport; error?: string }> {
  const id = nextId++;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      agent.pending.delete(id);
      resolve({ error: 'no answer in time' });
    }, RUN_TIMEOUT_MS);
    agent.pending.set(id, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
    agent.child.stdin.write(`${JSON.stringify({ id, argv })}\n`);
  });
}

function pick(report: BenchReport, metric: Metric): number {
  const result = report.results[0] as unknown as Record<string, number> | undefined;
  return result?.[metric.column] ?? NaN;
}

/** The server and client bench processes; replaced when a run fails, so nothing stuck carries over. */
class Agents {
  #pair: [Agent, Agent] = [startAgent(), startAgent()];

  async run(metric: Metric, common: string[], host: string, tool: 'c' | 'ts'): Promise<number> {
    return pick(await this.report(metric, common, host, tool), metric);
  }

  /** The TypeScript driver's calls into the addon and GC time per operation, from a counting run. */
  async perOp(metric: Metric, common: string[], host: string): Promise<{ calls: number; gcUsec: number }> {
    const result = (await this.report(metric, common, host, 'ts', ['--count-calls'])).results[0];
    return { calls: result?.callsPerOp ?? NaN, gcUsec: result?.gcUsecPerOp ?? NaN };
  }

  async report(metric: Metric, common: string[], host: string, tool: 'c' | 'ts', extra: string[] = []): Promise<BenchReport> {
    const argv = [metric.test, ...common, ...metric.args, '-p', String(BENCH_PORT), '--driver', tool, ...extra];
    const [serverAgent, clientAgent] = this.#pair;
    const [server, client] = await Promise.all([ask(serverAgent, argv), ask(clientAgent, [argv[0]!, host, ...argv.slice(1)])]);
    if (client.error || server.error || !client.report) {
      this.close();
      this.#pair = [startAgent(), startAgent()];
      throw new Error(`rdma-node bench (${tool}): ${client.error ?? server.error}`);
    }
    return client.report;
  }

  close(): void {
    for (const agent of this.#pair) agent.child.kill();
  }
}

function collect(child: ReturnType<typeof spawn>): Promise<{ code: number | null; out: string }> {
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out })));
}

async function waitListening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = ['/proc/net/tcp', '/proc/net/tcp6'].map((f) => readFileSync(f, 'utf8')).join('\n');
    if (listening(text, port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing listens on port ${port}`);
}

async function runPerftest(metric: Metric, common: string[], host: string): Promise<number> {
  const binary = `ib_${metric.test}`;
  const args = [...common, ...metric.args, '-F', '-p', String(PERFTEST_PORT)];
  const server = spawn(NICE[0]!, [...NICE.slice(1), binary, ...args]);
  const serverDone = collect(server);
  const kill = setTimeout(() => server.kill(), RUN_TIMEOUT_MS);
  try {
    await waitListening(PERFTEST_PORT, 30_000);
    const client = spawn(NICE[0]!, [...NICE.slice(1), binary, ...args, host]);
    const clientKill = setTimeout(() => client.kill(), RUN_TIMEOUT_MS);
    const { code, out } = await collect(client);
    clearTimeout(clientKill);
    await serverDone;
    const parsed = parsePerftest(out);
    if (code !== 0 || !parsed) throw new Error(`${binary} failed (status ${code}): ${out.trim().split('\n').slice(-2).join(' / ')}`);
    return parsed[metric.column];
  } finally {
    clearTimeout(kill);
    server.kill();
  }
}

/** What one call through the binding costs here: an empty cq.poll and an argument-less prepared post. */
function callCosts(): Environment['callCosts'] {
  using context = openDevice();
  const cq = context.createCq(16);
  const batch = new CompletionBatch(16);
  const time = (n: number, fn: () => void): number => {
    for (let i = 0; i < n / 10; i++) fn();
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    return Number(process.hrtime.bigint() - start) / 1000 / n;
  };
  return [
    { label: 'cq.poll(batch), empty CQ', usec: time(20_000, () => cq.poll(batch)) },
    { label: 'process.hrtime.bigint()', usec: time(20_000, () => process.hrtime.bigint()) },
    { label: 'a call of an empty JS function', usec: time(200_000, () => undefined) },
  ];
}

function version(pkg: string): string {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : 'unknown';
}

async function main(argv: string[]): Promise<number> {
  if (!insideVm() && !hostHasDevice()) {
    console.log('This host has no RDMA device: running the comparison on Soft-RoCE inside the VM.\n');
    return rerunInVm(__filename, argv, 45 * 60_000);
  }
  const { values } = parseArgs({
    args: argv,
    options: { rounds: { type: 'string', default: '5' }, out: { type: 'string', default: 'BENCHMARKS.md' }, 'max-qps': { type: 'string', default: '1024' } },
  });
  const rounds = Number(values.rounds);
  const out = values.out;
  const maxQps = Number(values['max-qps']);
  const started = Date.now();
  const device = process.env.RDMA_NODE_DEVICE ?? listDevices()[0]!.name;
  let gidIndex: number;
  let host: string;
  {
    using context = openDevice(device);
    gidIndex = context.defaultGidIndex();
    const gid = context.gidTable().find((g) => g.index === gidIndex);
    host = gid?.ipv4 ?? '127.0.0.1';
  }
  const common = ['-d', device, '-x', String(gidIndex)];
  const costs = callCosts();
  const agents = new Agents();
  const results: MetricResult[] = metrics.map((metric) => ({ metric, rounds: [], failures: [] }));
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const result of results) {
        const m = result.metric;
        const sample = { perftest: NaN, c: NaN, ts: NaN };
        const all: Tool[] = ['perftest', 'c', 'ts'];
        // The order rotates from round to round, so no tool always runs first (or right after another).
        const tools = all.map((_, i) => all[(i + round) % all.length]!);
        for (const tool of tools) {
          try {
            sample[tool] = tool === 'perftest' ? await runPerftest(m, common, host) : await agents.run(m, common, host, tool);
          } catch (error) {
            result.failures.push(`round ${round}, ${tool}: ${(error as Error).message}`);
          }
        }
        result.rounds.push(sample);
        console.log(`round ${round} ${m.id}: ${tools.map((t) => `${t} ${sample[t].toPrecision(4)}`).join(', ')} [${m.unit}]`);
      }
    }
    for (const result of results) {
      try {
        result.perOp = await agents.perOp(result.metric, common, host);
        console.log(`${result.metric.id}: ${result.perOp.calls.toFixed(2)} native calls, ${result.perOp.gcUsec.toFixed(2)} usec of GC per operation (TypeScript driver)`);
      } catch (error) {
        result.failures.push(`counting run: ${(error as Error).message}`);
      }
    }
  } finally {
    agents.close();
  }
  const endpoints = await endpointCosts(host);
  for (const row of endpoints) console.log(`${row.label}: ${row.endpointUsec.toFixed(1)} usec against ${row.rawUsec.toFixed(1)} usec`);
  const split = loopSplit(device);
  console.log(`RDMA read on one QP: C core ${split.cCoreUsec.toFixed(1)} usec, TypeScript ${split.typeScriptUsec.toFixed(1)} usec (${split.outsideUsec.toFixed(1)} outside the native call)`);

  const scale: ScalePoint[] = [];
  {
    using context = openDevice(device);
    scalePoint(context, 1, gidIndex); // warm-up: first-use costs (code, allocations) stay out of the table
    for (const n of sweepCounts(maxQps)) {
      const point = scalePoint(context, n, gidIndex);
      scale.push(point);
      console.log(`scale ${n} pairs: create ${point.createUsPerQp.toFixed(1)} us/QP, ${point.msgRate ?? point.failure}`);
    }
  }

  const env: Environment = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    cpus: Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()),
    device,
    gidIndex,
    rdmaCore: version('rdma-core'),
    perftest: version('perftest'),
    node: process.version,
    rounds,
    durationS: (Date.now() - started) / 1000,
    callCosts: costs,
  };
  writeFileSync(out, renderBenchmarks(env, results, scale, shortfallNotes(results, env, split), endpoints));
  console.log(`wrote ${out} (${env.durationS.toFixed(0)} s)`);
  return 0;
}

if (process.argv.includes('--agent')) {
  agentMain().catch((error: Error) => {
    console.error(error.message);
    process.exitCode = 1;
  });
} else {
  main(process.argv.slice(2)).then(
    (status) => (process.exitCode = status),
    (error: Error) => {
      console.error(`bench:compare: ${error.message}`);
      process.exitCode = 1;
    },
  );
}
