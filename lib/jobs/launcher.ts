/**
 * The launcher of `rdma-node run -np N script.js`: N ranks on this host in one container held by a
 * shepherd process (native/jobs/shepherd.cc), each told its rank, the job's size and the rendezvous
 * address in its environment, its output passed on line by line (tagged as mpirun's --tag-output does),
 * stdin given to rank 0. The job's status is the first failing rank's (128 + the signal for a signal);
 * when the job ends, for whatever reason, nothing it started survives.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { existsSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { constants } from 'node:os';
import type { Duplex, Readable } from 'node:stream';

import { findContainer, type ContainerKind } from './container';
import { forgetJob, recordJob, type JobEntry } from './registry';
import { serveRendezvous, type RendezvousRoot } from './rendezvous';

export interface RunOptions {
  np: number;
  /** A script (.js, .mjs, .cjs: run with this Node) and its arguments, or a program and its arguments. */
  command: string[];
  container?: ContainerKind | 'auto';
  /** Between SIGTERM and SIGKILL when the job ends (default 2000 ms). */
  graceMs?: number;
  /** cgroup: the most processes the job may have at once. */
  pidsMax?: number;
  /** Prefix each line with `[job,rank]<stdout>:` (or `<stderr>`), as mpirun --tag-output. */
  tagOutput?: boolean;
  /** Given to rank 0 (the other ranks' stdin is /dev/null). */
  stdin?: Readable;
  /** Where the ranks' lines go (default: this process's stdout and stderr). */
  output?: (rank: number, stream: 'stdout' | 'stderr', line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** How long ranks may take to reach the rendezvous of joinJob() (default 60 s). */
  bootstrapTimeoutMs?: number;
}

export interface Usage {
  userUs: number;
  systemUs: number;
  /** Peak memory in bytes (cgroup: memory.peak, everything the rank started; else the largest process's). */
  peakBytes: number | null;
  /** cgroup with the memory controller: processes the OOM killer took. */
  oomKills: number | null;
}

export interface RankRecord extends Usage {
  rank: number;
  pid: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
}

export interface JobRecord {
  id: number;
  container: ContainerKind;
  cgroup?: string;
  /** The first failing rank's status (a signal as 128 + its number), the launcher's signal's, or 0. */
  status: number;
  /** What ended it: 'ranks-exited', 'rank-failed', 'ended' (end() or a signal), 'spawn-failed', 'launcher-gone'. */
  endedBy: string;
  wallMs: number;
  ranks: RankRecord[];
  /** Processes of the job that were no rank (reaped by the shepherd): their count. */
  orphans: number;
  total: Usage;
}

const signalNumber = (name: NodeJS.Signals): number => constants.signals[name];
const signalName = (signo: number): NodeJS.Signals | null =>
  signo === 0 ? null : ((Object.entries(constants.signals).find(([, n]) => n === signo)?.[0] as NodeJS.Signals | undefined) ?? null);

/** The shepherd program next to the addon. */
export function shepherdPath(): string {
  const path = resolve(__dirname, '..', '..', '..', 'build', 'Release', 'rdma-node-shepherd');
  if (!existsSync(path)) throw new Error(`the job shepherd is not built (${path}); run npm install`);
  return path;
}

/** A job started by launch(). Events: 'start' (id) once every rank runs. */
export class RunningJob extends EventEmitter {
  id = 0;
  readonly done: Promise<JobRecord>;
  #shepherd: ChildProcess;
  #control: Duplex;
  #ended: number | undefined;

  /** @internal Use launch(). */
  constructor(shepherd: ChildProcess, done: (job: RunningJob) => Promise<JobRecord>) {
    super();
    this.#shepherd = shepherd;
    this.#control = shepherd.stdio[3] as Duplex;
    this.done = done(this);
  }

  /** Sends a signal to every process of the job. */
  signal(signal: NodeJS.Signals): void {
    this.#control.write(`signal ${signalNumber(signal)}\n`);
  }

  /** Ends the job: `signal` (default SIGTERM) to all of it, SIGKILL after the grace. Its status is then 128 + signal's number, unless a rank failed first. */
  end(signal: NodeJS.Signals = 'SIGTERM', graceMs?: number): void {
    this.#ended ??= signalNumber(signal);
    this.#control.write(`end ${signalNumber(signal === 'SIGINT' ? 'SIGTERM' : signal)} ${graceMs ?? -1}\n`);
  }

  /** @internal */
  get endSignal(): number | undefined {
    return this.#ended;
  }

  /** @internal */
  get shepherdPid(): number {
    return this.#shepherd.pid!;
  }
}

const isScript = (path: string): boolean => /\.(c|m)?js$/.test(path);

/**
 * The shepherd was killed (from outside: it never dies by itself): what the launcher can still do. A
 * cgroup is killed whole and removed; without one only the ranks' process group can be reached, so a
 * process that left it and double-forked escapes (the promise the process container cannot keep).
 */
function reapWithoutShepherd(entry: JobEntry, ranks: RankRecord[]): void {
  if (entry.cgroup !== undefined) {
    try {
      writeFileSync(join(entry.cgroup, 'cgroup.kill'), '1');
    } catch {
      // already gone
    }
    for (const until = Date.now() + 5000; Date.now() < until && /populated 1/.test(readIfThere(join(entry.cgroup, 'cgroup.events'))); ) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
    for (const dir of [...ranks.map(({ rank }) => join(entry.cgroup!, `rank-${rank}`)), entry.cgroup]) {
      try {
        rmdirSync(dir);
      } catch {
        // not made, or already removed
      }
    }
  }
  const group = ranks[0]?.pid;
  if (group) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // nobody left in it
    }
  }
}

function readIfThere(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export async function launch(options: RunOptions): Promise<RunningJob> {
  const { np, command } = options;
  if (!Number.isInteger(np) || np < 1 || np > 4096) throw new RangeError('np is a whole number of ranks from 1 to 4096');
  if (command.length === 0) throw new TypeError('nothing to run');
  const container = findContainer(options.container ?? 'auto');
  const graceMs = options.graceMs ?? 2000;
  const program = isScript(command[0]!) ? [process.execPath, command[0]!, ...command.slice(1)] : command;
  const root = await serveRendezvous(np, { timeoutMs: options.bootstrapTimeoutMs ?? 60_000 });
  const args = ['--ranks', String(np), '--grace', String(graceMs)];
  const cgroupOf = (id: number): string | undefined => (container.kind === 'cgroup' ? join(container.base!, `job-${id}`) : undefined);
  const stdio: ('pipe' | 'ignore' | 'inherit')[] = ['ignore', 'inherit', 'inherit', 'pipe'];
  for (let rank = 0; rank < np; rank++) stdio.push(rank === 0 && options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe');
  // The shepherd names the job's cgroup after its own pid, which is known only once it runs: it is told
  // the base, and its pid gives the rest.
  if (container.kind === 'cgroup') args.push('--cgroup-base', container.base!);
  if (options.pidsMax !== undefined) args.push('--pids-max', String(options.pidsMax));
  const env = {
    ...(options.env ?? process.env),
    RDMA_NODE_SIZE: String(np),
    RDMA_NODE_LOCAL_SIZE: String(np),
    RDMA_NODE_RENDEZVOUS: root.address,
  };
  const shepherd = spawn(shepherdPath(), [...args, '--', ...program], { stdio, env });
  return new RunningJob(shepherd, (job) => supervise(job, shepherd, options, container.kind, cgroupOf, root));
}

async function supervise(
  job: RunningJob,
  shepherd: ChildProcess,
  options: RunOptions,
  kind: ContainerKind,
  cgroupOf: (id: number) => string | undefined,
  root: RendezvousRoot,
): Promise<JobRecord> {
  const { np } = options;
  const started = Date.now();
  const exited = once(shepherd, 'exit');
  job.id = shepherd.pid!;
  const output = options.output ?? ((_rank, stream, line) => (stream === 'stdout' ? process.stdout : process.stderr).write(`${line}\n`));
  const streamsDone: Promise<unknown>[] = [];
  for (let rank = 0; rank < np; rank++) {
    // The shepherd's fds for rank R: 4 + 3R its stdin, 5 + 3R its stdout, 6 + 3R its stderr.
    for (const [fd, stream] of [[5, 'stdout'], [6, 'stderr']] as const) {
      const input = shepherd.stdio[fd + 3 * rank] as Readable;
      const lines = createInterface({ input, crlfDelay: Infinity });
      const tag = options.tagOutput ? `[${job.id},${rank}]<${stream}>:` : '';
      lines.on('line', (line) => output(rank, stream, tag + line));
      streamsDone.push(once(lines, 'close'));
    }
  }
  if (options.stdin) options.stdin.pipe(shepherd.stdio[4] as NodeJS.WritableStream);
  const ranks: RankRecord[] = Array.from({ length: np }, (_, rank) => ({
    rank, pid: 0, exitCode: null, signal: null, wallMs: 0, userUs: 0, systemUs: 0, peakBytes: null, oomKills: null,
  }));
  const startedAt = new Array<number>(np).fill(started);
  const orphanUsage = { count: 0, userUs: 0, systemUs: 0, peakKb: 0 };
  let jobAccount: Usage | undefined;
  let firstFailure: number | undefined;
  let endedBy = 'ranks-exited';
  let ending = false;
  let spawned = 0;
  const entry: JobEntry = {
    id: job.id, launcherPid: process.pid, command: options.command, np, container: kind, cgroup: cgroupOf(job.id),
    startedAt: new Date(started).toISOString(), ranks: [],
  };
  const events = createInterface({ input: shepherd.stdio[3] as Readable, crlfDelay: Infinity });
  for await (const line of events) {
    const [event, ...fields] = line.split(' ');
    const numbers = fields.map(Number);
    switch (event) {
      case 'start': {
        const [rank, pid] = numbers as [number, number];
        ranks[rank]!.pid = pid;
        startedAt[rank] = Date.now();
        entry.ranks.push({ rank, pid });
        if (++spawned === np) {
          recordJob(entry);
          job.emit('start', job.id);
        }
        break;
      }
      case 'spawn-failed':
        firstFailure ??= 127;
        endedBy = 'spawn-failed';
        output(Math.max(numbers[0]!, 0), 'stderr', `rdma-node run: rank ${numbers[0]} could not start ${options.command[0]}: errno ${numbers[1]}`);
        break;
      case 'ending':
        ending = true;
        if (endedBy !== 'spawn-failed') endedBy = fields[0]!;
        root.close();
        break;
      case 'exit': {
        const [rank, , code, signo, userUs, systemUs, maxRssKb] = numbers as number[];
        const record = ranks[rank!]!;
        Object.assign(record, {
          exitCode: code! >= 0 ? code : null, signal: signalName(signo!), wallMs: Date.now() - startedAt[rank!]!,
          userUs, systemUs, peakBytes: maxRssKb! * 1024,
        });
        if (!ending && (code !== 0 || signo !== 0)) firstFailure ??= signo ? 128 + signo! : code!;
        break;
      }
      case 'orphan': {
        const [, , , userUs, systemUs, maxRssKb] = numbers as number[];
        orphanUsage.count++;
        orphanUsage.userUs += userUs!;
        orphanUsage.systemUs += systemUs!;
        orphanUsage.peakKb = Math.max(orphanUsage.peakKb, maxRssKb!);
        break;
      }
      case 'account': {
        const [userUs, systemUs, peak, oom] = numbers.slice(1) as number[];
        const usage: Usage = { userUs: userUs!, systemUs: systemUs!, peakBytes: peak! >= 0 ? peak! : null, oomKills: oom! >= 0 ? oom! : null };
        if (fields[0] === 'job') jobAccount = usage;
        else {
          const record = ranks[Number(fields[0])]!;
          const rusagePeak = record.peakBytes;
          Object.assign(record, usage, { peakBytes: usage.peakBytes ?? rusagePeak });
        }
        break;
      }
      case 'done':
        break;
    }
  }
  await exited;
  root.close();
  if (shepherd.signalCode !== null) {
    endedBy = 'shepherd-killed';
    reapWithoutShepherd(entry, ranks);
  }
  await Promise.all(streamsDone); // the ranks' output, to its last line
  forgetJob(job.id);
  const sum = (pick: (r: RankRecord) => number): number => ranks.reduce((total, r) => total + pick(r), 0);
  const total: Usage = jobAccount
    ? { ...jobAccount, peakBytes: jobAccount.peakBytes ?? Math.max(orphanUsage.peakKb * 1024, ...ranks.map((r) => r.peakBytes ?? 0)) }
    : {
        userUs: sum((r) => r.userUs) + orphanUsage.userUs,
        systemUs: sum((r) => r.systemUs) + orphanUsage.systemUs,
        peakBytes: Math.max(orphanUsage.peakKb * 1024, ...ranks.map((r) => r.peakBytes ?? 0)),
        oomKills: null,
      };
  if (shepherd.exitCode !== 0 && firstFailure === undefined && job.endSignal === undefined) firstFailure = 1;
  const endSignal = job.endSignal ?? (endedBy === 'signalled' ? signalNumber('SIGTERM') : undefined);
  const status = firstFailure ?? (endSignal !== undefined ? 128 + endSignal : 0);
  return { id: job.id, container: kind, cgroup: entry.cgroup, status, endedBy, wallMs: Date.now() - started, ranks, orphans: orphanUsage.count, total };
}
