/** `rdma-node run`, `rdma-node jobs` and `rdma-node kill`: the launcher and the job list on the command line. */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';

import type { ContainerKind } from '../jobs/container';
import { launch, type JobRecord } from '../jobs/launcher';
import { jobProcesses, listJobs } from '../jobs/registry';

export const runUsage = `usage: rdma-node run -np N [options] [--] script.js|program [args...]

  Runs N ranks on this host in one job container; joinJob() in each finds the others.
  -np, -n N              ranks
  --tag-output           prefix lines with [job,rank]<stdout>: as mpirun does
  --container KIND       auto (default), cgroup (a cgroup v2 subtree) or process (subreaper, process
                         group, pidfds)
  --grace MS             between SIGTERM and SIGKILL when the job ends (default 2000)
  --pids-max N           cgroup: most processes at once
  --bootstrap-timeout MS how long joinJob() waits for every rank (default 60000)
  --json                 the accounting as one JSON line on stdout when the job ends (else a table on stderr)
  --quiet                no accounting
  Across hosts, run the script under mpirun or srun: joinJob() bootstraps there through PMIx.
`;

const engineMessage = (flag: string): string =>
  `rdma-node run starts ranks on this host only (${flag} asks for more): across hosts run the same script under ` +
  'Open MPI (mpirun --hostfile FILE -np N node script.js) or Slurm (srun -N2 -n4 --mpi=pmix node script.js); joinJob() bootstraps under both';

interface RunArgs {
  np: number;
  command: string[];
  tagOutput: boolean;
  container: ContainerKind | 'auto';
  graceMs?: number;
  pidsMax?: number;
  bootstrapTimeoutMs?: number;
  json: boolean;
  quiet: boolean;
}

/** mpirun's option style (-np 4, --tag-output); options end at the first operand or `--`. */
export function parseRunArgs(argv: string[]): RunArgs {
  const args: RunArgs = { np: 0, command: [], tagOutput: false, container: 'auto', json: false, quiet: false };
  const number = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${flag} needs a whole number\n\n${runUsage}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.command = argv.slice(i + 1);
      break;
    }
    if (!arg.startsWith('-')) {
      args.command = argv.slice(i);
      break;
    }
    switch (arg) {
      case '-np': case '-n': case '--np': args.np = number(arg, argv[++i]); break;
      case '--tag-output': args.tagOutput = true; break;
      case '--json': args.json = true; break;
      case '--quiet': args.quiet = true; break;
      case '--grace': args.graceMs = number(arg, argv[++i]); break;
      case '--pids-max': args.pidsMax = number(arg, argv[++i]); break;
      case '--bootstrap-timeout': args.bootstrapTimeoutMs = number(arg, argv[++i]); break;
      case '--container': {
        const kind = argv[++i];
        if (kind !== 'auto' && kind !== 'cgroup' && kind !== 'process') throw new Error(`--container is auto, cgroup or process\n\n${runUsage}`);
        args.container = kind;
        break;
      }
      case '--host': case '-H': case '--hostfile': case '--machinefile': case '-hostfile':
        throw new Error(engineMessage(arg));
      default:
        throw new Error(`unknown option ${arg}\n\n${runUsage}`);
    }
  }
  if (args.np < 1) throw new Error(`-np N is needed\n\n${runUsage}`);
  if (args.command.length === 0) throw new Error(`nothing to run\n\n${runUsage}`);
  return args;
}

const seconds = (us: number): string => (us / 1e6).toFixed(2);
const mib = (bytes: number | null): string => (bytes === null ? '-' : (bytes / 2 ** 20).toFixed(1));

/** The accounting as a table, like ptrack's and Slurm's sacct: per rank and for the whole job. */
export function formatAccounting(record: JobRecord): string {
  const where = record.cgroup ? `cgroup ${record.cgroup}` : 'process container';
  const lines = [`rdma-node run: job ${record.id} (${where}) ended by ${record.endedBy}, status ${record.status}, ${(record.wallMs / 1000).toFixed(2)} s`];
  const row = (cells: string[]): string => `  ${cells.map((cell, i) => cell.padEnd([5, 8, 12, 8, 8, 8, 9][i]!)).join('')}`.trimEnd();
  lines.push(row(['rank', 'pid', 'status', 'wall s', 'user s', 'sys s', 'peak MiB']));
  for (const r of record.ranks) {
    const status = r.signal ? r.signal : r.exitCode === null ? 'not run' : `exit ${r.exitCode}`;
    lines.push(row([String(r.rank), String(r.pid), status, (r.wallMs / 1000).toFixed(2), seconds(r.userUs), seconds(r.systemUs), mib(r.peakBytes)]));
  }
  const t = record.total;
  lines.push(row(['job', '', record.orphans ? `+${record.orphans} other` : '', (record.wallMs / 1000).toFixed(2), seconds(t.userUs), seconds(t.systemUs), mib(t.peakBytes)]));
  return lines.join('\n');
}

export async function runMain(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    console.log(runUsage);
    return 0;
  }
  const args = parseRunArgs(argv);
  const job = await launch({ ...args, stdin: process.stdin.isTTY ? undefined : process.stdin });
  // As mpirun: INT, TERM and HUP end the job, USR1 and USR2 are passed to every rank.
  const handlers: [NodeJS.Signals, () => void][] = [
    ...(['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s): [NodeJS.Signals, () => void] => [s, () => job.end(s)]),
    ...(['SIGUSR1', 'SIGUSR2'] as const).map((s): [NodeJS.Signals, () => void] => [s, () => job.signal(s)]),
  ];
  for (const [signal, handler] of handlers) process.on(signal, handler);
  const record = await job.done;
  for (const [signal, handler] of handlers) process.off(signal, handler);
  process.stdin.destroy();
  if (args.json) console.log(JSON.stringify(record));
  else if (!args.quiet) console.error(formatAccounting(record));
  return record.status;
}

export function jobsMain(argv: string[]): number {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } } });
  const jobs = listJobs().map((entry) => ({ ...entry, processes: jobProcesses(entry) }));
  if (values.json) {
    console.log(JSON.stringify(jobs, null, 2));
    return 0;
  }
  if (jobs.length === 0) {
    console.log('no running jobs');
    return 0;
  }
  console.log('JOB      NP  CONTAINER  STARTED              COMMAND');
  for (const job of jobs) {
    console.log(`${String(job.id).padEnd(9)}${String(job.np).padEnd(4)}${job.container.padEnd(11)}${job.startedAt.slice(0, 19).padEnd(21)}${job.command.join(' ')}`);
    const commands = job.processes.map((pid) => {
      try {
        return `${pid} ${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}`;
      } catch {
        return `${pid}`;
      }
    });
    console.log(`         processes: ${commands.join(', ')}`);
  }
  return 0;
}

/** `rdma-node kill JOB...` ends jobs (SIGTERM, then SIGKILL after their grace); `-s SIGNAL` sends SIGNAL to every process of them. */
export function killMain(argv: string[]): number {
  const killUsage = 'usage: rdma-node kill [-s SIGNAL] JOB...';
  const { values, positionals } = parseArgs({ args: argv, options: { signal: { type: 'string', short: 's' } }, allowPositionals: true });
  let signal: NodeJS.Signals | undefined;
  if (values.signal !== undefined) {
    const name = values.signal.toUpperCase();
    signal = (name.startsWith('SIG') ? name : `SIG${name}`) as NodeJS.Signals;
    if (!(signal in constants.signals)) throw new Error(`unknown signal ${values.signal}`);
  }
  if (positionals.length === 0 || !positionals.every((p) => /^\d+$/.test(p))) throw new Error(killUsage);
  const ids = positionals.map(Number);
  const running = new Map(listJobs().map((job) => [job.id, job]));
  let status = 0;
  for (const id of ids) {
    const job = running.get(id);
    if (!job) {
      console.error(`rdma-node kill: no running job ${id} of this user`);
      status = 1;
    } else if (signal === undefined) {
      process.kill(job.id, 'SIGTERM'); // the shepherd ends the job
    } else {
      for (const pid of jobProcesses(job)) {
        try {
          process.kill(pid, signal);
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  return status;
}
