/**
 * joinJob(): a rank finds out who started it and who its peers are. In order, as the environment says:
 * - PMIx (PMIX_NAMESPACE and PMIX_RANK: Open MPI's mpirun and Slurm's srun --mpi=pmix): the real libpmix
 *   through the addon; addresses are exchanged with PMIx_Put / Commit / Fence / Get, as Open MPI and UCX do.
 * - Open MPI without PMIx (OMPI_COMM_WORLD_*) and Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, …):
 *   rank 0 serves the rendezvous root at RDMA_NODE_BOOTSTRAP (host:port; under Slurm it defaults to the
 *   first host of the step and a port made from the job and step ids).
 * - `rdma-node run` (RDMA_NODE_RANK, RDMA_NODE_RENDEZVOUS): the launcher is the root.
 */
import { hostname as osHostname } from 'node:os';

import { rdmaError } from '../core/errors';

import { connectJob, type ConnectOptions, type JobConnections } from './connect';
import { expandHostlist } from './hostlist';
import { PmixExchange } from './pmix';
import { Ring } from './rendezvous';

export type Launcher = 'pmix' | 'openmpi' | 'slurm' | 'rdma-node';

export interface JoinOptions {
  /** How long to wait for every rank (default 60 s, or RDMA_NODE_BOOTSTRAP_TIMEOUT in ms). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** This rank of a job: who it is, and out-of-band exchanges with the others. */
export class Job {
  constructor(
    readonly launcher: Launcher,
    readonly rank: number,
    readonly size: number,
    readonly localRank: number,
    readonly localSize: number,
    readonly hostname: string,
    readonly exchange: Exchange,
  ) {}

  /** Every rank's bytes, in rank order. */
  allgather(bytes: Uint8Array): Promise<Buffer[]> {
    return this.exchange.allgather(bytes);
  }

  /** Resolves once every rank has called it. */
  async barrier(): Promise<void> {
    await this.exchange.allgather(new Uint8Array(0));
  }

  /** An RC queue pair to every other rank, ready to use (see connect.ts). */
  connect(options: ConnectOptions = {}): Promise<JobConnections> {
    return connectJob(this, options);
  }

  close(): void {
    this.exchange.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** What a launcher's bootstrap offers: the ring's, or PMIx's. */
export interface Exchange {
  allgather(bytes: Uint8Array): Promise<Buffer[]>;
  close(): void;
}

interface Identity {
  launcher: Launcher;
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  root?: string;
  serveRoot: boolean;
}

function integer(env: NodeJS.ProcessEnv, name: string): number {
  const value = Number(env[name]);
  if (!Number.isInteger(value) || value < 0) throw rdmaError('joinJob', 'EINVAL', `${name} is ${JSON.stringify(env[name])}, not a rank number`);
  return value;
}

/** The root under Slurm without PMIx: the step's first host, at a port from the job and step ids. */
function slurmRoot(env: NodeJS.ProcessEnv): string | undefined {
  const first = expandHostlist(env.SLURM_STEP_NODELIST ?? env.SLURM_JOB_NODELIST ?? '')[0];
  if (first === undefined) return undefined;
  const port = 20_000 + ((Number(env.SLURM_JOB_ID ?? 0) * 64 + Number(env.SLURM_STEP_ID ?? 0)) % 30_000);
  return `${first}:${port}`;
}

/** Who started this process, from its environment. */
export function identify(env: NodeJS.ProcessEnv = process.env): Identity {
  if (env.PMIX_NAMESPACE !== undefined && env.PMIX_RANK !== undefined) {
    const rank = integer(env, 'PMIX_RANK');
    return { launcher: 'pmix', rank, size: 0, localRank: 0, localSize: 0, serveRoot: false }; // the rest from PMIx itself
  }
  if (env.OMPI_COMM_WORLD_RANK !== undefined) {
    return {
      launcher: 'openmpi', rank: integer(env, 'OMPI_COMM_WORLD_RANK'), size: integer(env, 'OMPI_COMM_WORLD_SIZE'),
      localRank: integer(env, 'OMPI_COMM_WORLD_LOCAL_RANK'), localSize: integer(env, 'OMPI_COMM_WORLD_LOCAL_SIZE'),
      root: env.RDMA_NODE_BOOTSTRAP, serveRoot: true,
    };
  }
  if (env.SLURM_PROCID !== undefined) {
    return {
      launcher: 'slurm', rank: integer(env, 'SLURM_PROCID'), size: integer(env, 'SLURM_NTASKS'),
      localRank: integer(env, 'SLURM_LOCALID'), localSize: Number(env.SLURM_NTASKS_PER_NODE ?? env.SLURM_STEP_TASKS_PER_NODE?.split('(')[0] ?? 1),
      root: env.RDMA_NODE_BOOTSTRAP ?? slurmRoot(env), serveRoot: true,
    };
  }
  if (env.RDMA_NODE_RANK !== undefined) {
    return {
      launcher: 'rdma-node', rank: integer(env, 'RDMA_NODE_RANK'), size: integer(env, 'RDMA_NODE_SIZE'),
      localRank: integer(env, 'RDMA_NODE_LOCAL_RANK'), localSize: integer(env, 'RDMA_NODE_LOCAL_SIZE'),
      root: env.RDMA_NODE_RENDEZVOUS, serveRoot: false,
    };
  }
  throw rdmaError(
    'joinJob',
    'ENOENT',
    'no launcher in the environment: neither PMIx (PMIX_NAMESPACE, PMIX_RANK), Open MPI (OMPI_COMM_WORLD_RANK), ' +
      'Slurm (SLURM_PROCID) nor rdma-node run (RDMA_NODE_RANK); start it with `rdma-node run -np N`, mpirun or srun',
  );
}

/** Joins the job this process is a rank of (see the module's comment for how). */
export async function joinJob(options: JoinOptions = {}): Promise<Job> {
  if (typeof options !== 'object' || options === null) throw new TypeError('joinJob options are an object: { timeoutMs, env }');
  if (options.env !== undefined && (typeof options.env !== 'object' || options.env === null)) throw new TypeError('env is an object of environment variables');
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? (Number(env.RDMA_NODE_BOOTSTRAP_TIMEOUT) || 60_000);
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) throw new RangeError('timeoutMs is a positive number of milliseconds');
  const who = identify(env);
  if (who.launcher === 'pmix') {
    const pmix = new PmixExchange(timeoutMs);
    const { rank, size, localRank, localSize } = pmix.info;
    return new Job('pmix', rank, size, localRank, localSize, osHostname(), pmix);
  }
  if (who.root === undefined) {
    throw rdmaError('joinJob', 'ENOENT', `started by ${who.launcher} without PMIx: set RDMA_NODE_BOOTSTRAP=host:port (where rank 0 serves the rendezvous) for every rank`);
  }
  const hostname = osHostname();
  const ring = await Ring.join({ rank: who.rank, size: who.size, hostname, root: who.root, serveRoot: who.serveRoot && who.rank === 0, timeoutMs });
  return new Job(who.launcher, who.rank, who.size, who.localRank, who.localSize, hostname, ring);
}
