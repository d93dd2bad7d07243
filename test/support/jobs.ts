/**
 * The job tests: `rdma-node run` started as a user would (the CLI in a child process), with ranks from
 * job-rank.ts, and the promises of a job container checked on real processes. containmentTests(kind) is
 * run by the unit suite for the process container (on this host) and by the device suite for cgroups (in
 * the VM, which mounts cgroup2).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

import type { JobRecord } from '../../lib/jobs/launcher';

export const cli = join(__dirname, '..', '..', 'lib', 'cli', 'main.js');
export const rankScript = join(__dirname, 'job-rank.js');

export interface StartedJob {
  child: ChildProcess;
  /** Resolves with the next line of the ranks' output (tags stripped by the caller). */
  line(): Promise<string>;
  /** The launcher's end: its status, signal, and the record from --json (when it printed one). */
  finished: Promise<{ status: number | null; signal: NodeJS.Signals | null; record?: JobRecord; stderr: string }>;
}

/** Starts `rdma-node run` with `args` (options, then what to run) and --json. */
export function startJob(args: string[], options: { uid?: number; env?: NodeJS.ProcessEnv; stdin?: string } = {}): StartedJob {
  const child = spawn(process.execPath, [cli, 'run', '--json', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'], uid: options.uid, gid: options.uid, env: options.env ?? process.env,
  });
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let last = '';
  const seen: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  const pump = (async () => {
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      last = next.value;
      const waiter = waiting.shift();
      if (waiter) waiter(next.value);
      else seen.push(next.value);
    }
  })();
  const finished = (async () => {
    const [status, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    await pump;
    for (const waiter of waiting.splice(0)) waiter('');
    let record: JobRecord | undefined;
    try {
      record = last.startsWith('{"id"') ? (JSON.parse(last) as JobRecord) : undefined;
    } catch {
      record = undefined;
    }
    return { status, signal, record, stderr };
  })();
  return {
    child,
    finished,
    line: () => (seen.length > 0 ? Promise.resolve(seen.shift()!) : new Promise((resolve) => waiting.push(resolve))),
  };
}

/** Runs a job to its end. */
export async function runJob(args: string[], options: { uid?: number; env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<{ record: JobRecord; stderr: string; status: number | null; lines: string[] }> {
  const job = startJob(args, options);
  const lines: string[] = [];
  const collect = (async () => {
    for (let line = await job.line(); line !== ''; line = await job.line()) lines.push(line);
  })();
  const end = await job.finished;
  await collect;
  assert.ok(end.record, `no job record; stderr: ${end.stderr}`);
  return { record: end.record, stderr: end.stderr, status: end.status, lines: lines.filter((l) => !l.startsWith('{"id"')) };
}

/** Waits until `count` lines equal to `text` arrived. */
export async function waitLines(job: StartedJob, text: string, count: number): Promise<void> {
  for (let seen = 0; seen < count; ) {
    const line = await job.line();
    assert.notEqual(line, '', `the job ended before ${count} "${text}" lines`);
    if (line === text) seen++;
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
    return state !== 'Z';
  } catch {
    return false;
  }
}

/** The daemons' pids the ranks wrote to `dir`. */
export function daemonPids(dir: string): number[] {
  return readdirSync(dir).filter((n) => n.startsWith('daemon-')).map((n) => Number(readFileSync(join(dir, n), 'utf8')));
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'rdma-node-job-'));
}

/** Polls until `predicate` holds or `ms` pass; whether it held. */
export async function eventually(predicate: () => boolean, ms = 10_000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    if (predicate()) return true;
  }
  return predicate();
}

/** The promises of a job container of `kind`, each on real processes. */
export function containmentTests(kind: 'cgroup' | 'process'): void {
  const run = (args: string[], options = {}) => runJob(['--container', kind, ...args], options);
  const start = (args: string[], options = {}) => startJob(['--container', kind, ...args], options);

  test(`${kind}: a job that ends normally leaves nothing behind, double-forked daemons in new sessions included`, async () => {
    const dir = scratchDir();
    const { record } = await run(['-np', '2', rankScript, 'daemon-exit', dir]);
    assert.equal(record.status, 0);
    assert.equal(record.container, kind);
    assert.deepEqual(record.ranks.map((r) => r.exitCode), [0, 0]);
    const daemons = daemonPids(dir);
    assert.equal(daemons.length, 2);
    assert.deepEqual(daemons.filter(alive), [], 'no daemon survives the job');
    rmSync(dir, { recursive: true });
  });

  test(`${kind}: a failing rank ends the job with its status; the other ranks and their daemons are killed`, async () => {
    const { record } = await run(['-np', '3', '--grace', '500', rankScript, 'fail', '1', '7']);
    assert.equal(record.status, 7);
    assert.equal(record.endedBy, 'rank-failed');
    assert.equal(record.ranks[1]!.exitCode, 7);
    for (const r of [0, 2]) assert.equal(record.ranks[r]!.signal, 'SIGTERM');
    assert.deepEqual(record.ranks.map((r) => r.pid).filter(alive), []);
  });

  test(`${kind}: a rank killed by SIGKILL ends the job with status 137`, async () => {
    const { record } = await run(['-np', '2', rankScript, 'self-kill', '0']);
    assert.equal(record.status, 137);
    assert.equal(record.ranks[0]!.signal, 'SIGKILL');
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    test(`${kind}: the launcher getting ${signal} ends the job (status 128 + signal), daemons included`, async () => {
      const dir = scratchDir();
      const job = start(['-np', '2', '--grace', '500', rankScript, 'daemon', dir]);
      await waitLines(job, 'ready', 2);
      job.child.kill(signal);
      const { record } = await job.finished;
      assert.equal(record!.status, 128 + (signal === 'SIGINT' ? 2 : 15));
      assert.deepEqual([...daemonPids(dir), ...record!.ranks.map((r) => r.pid)].filter(alive), []);
      rmSync(dir, { recursive: true });
    });
  }

  test(`${kind}: the launcher SIGKILLed: its shepherd kills the whole job`, async () => {
    const dir = scratchDir();
    const job = start(['-np', '2', rankScript, 'daemon', dir]);
    await waitLines(job, 'ready', 2);
    const daemons = daemonPids(dir);
    const ranks = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `${process.execPath}\0${rankScript}\0daemon\0${dir}\0`;
      } catch {
        return false;
      }
    });
    assert.equal(ranks.length, 2);
    job.child.kill('SIGKILL');
    assert.ok(await eventually(() => [...daemons, ...ranks].every((pid) => !alive(pid))), 'every rank and daemon is gone');
    rmSync(dir, { recursive: true });
  });

  test(`${kind}: SIGUSR1 and SIGUSR2 to the launcher reach every rank`, async () => {
    const job = start(['-np', '2', rankScript, 'signals']);
    await waitLines(job, 'ready', 2);
    job.child.kill('SIGUSR1');
    await waitLines(job, 'SIGUSR1', 2);
    job.child.kill('SIGUSR2');
    await waitLines(job, 'SIGUSR2', 2);
    job.child.kill('SIGTERM');
    assert.equal((await job.finished).record!.status, 143);
  });

  test(`${kind}: accounting: 200 MiB shows as peak memory, 2 s of CPU spent spinning as CPU time`, async () => {
    const memory = await run(['-np', '1', rankScript, 'allocate', '200']);
    assert.ok(memory.record.ranks[0]!.peakBytes! >= 200 * 2 ** 20, `peak ${memory.record.ranks[0]!.peakBytes}`);
    assert.ok(memory.record.total.peakBytes! >= 200 * 2 ** 20);
    const cpu = await run(['-np', '2', rankScript, 'burn', '2000']);
    for (const r of cpu.record.ranks) {
      assert.ok(r.userUs + r.systemUs >= 1.5e6, `rank ${r.rank}: ${r.userUs} + ${r.systemUs} µs`);
      assert.ok(r.wallMs >= 2000);
    }
    const ranksCpu = cpu.record.ranks.reduce((sum, r) => sum + r.userUs + r.systemUs, 0);
    assert.ok(cpu.record.total.userUs + cpu.record.total.systemUs >= ranksCpu * 0.95, 'the job accounts at least what its ranks did');
  });

  test(`${kind}: rdma-node jobs lists a running job with its processes; rdma-node kill ends it`, async () => {
    const job = start(['-np', '2', rankScript, 'sleep']);
    await waitLines(job, 'ready', 2);
    const listing = spawnJson(['jobs', '--json']) as { id: number; launcherPid: number; np: number; container: string; processes: number[]; ranks: { pid: number }[] }[];
    const ours = listing.find((j) => j.launcherPid === job.child.pid);
    assert.ok(ours, JSON.stringify(listing));
    assert.equal(ours.np, 2);
    assert.equal(ours.container, kind);
    for (const { pid } of ours.ranks) assert.ok(ours.processes.includes(pid), `rank ${pid} among ${ours.processes}`);
    const kill = spawnSyncCli(['kill', String(ours.id)]);
    assert.equal(kill.status, 0, kill.stderr);
    const { record } = await job.finished;
    assert.equal(record!.status, 143);
    assert.equal(spawnSyncCli(['kill', String(ours.id)]).status, 1, 'no such job any more');
  });
}


export function spawnSyncCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function spawnJson(args: string[]): unknown {
  const run = spawnSyncCli(args);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}
