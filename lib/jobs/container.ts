/**
 * Which container a job can have here (native/jobs/shepherd.cc holds it):
 * - 'cgroup': a cgroup v2 subtree this process may write: `$RDMA_NODE_CGROUP` if set; as root, `rdma-node/`
 *   under the cgroup2 mount (with the cpu, memory and pids controllers enabled down to it where the
 *   hierarchy has them); else this process's own cgroup if it was delegated to its user (as systemd does
 *   with Delegate=yes).
 * - 'process': no cgroup v2 to use: a child subreaper, a process group, pidfds and a scan of /proc.
 *   Promises it cannot keep: a process that leaves the job's process group and double-forks escapes if
 *   the shepherd itself is SIGKILLed (nothing is left to find it; with a cgroup the launcher still kills
 *   the cgroup), and accounting is wait4's rusage (the peak memory of a rank is its largest process's,
 *   not the sum of its processes').
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type ContainerKind = 'cgroup' | 'process';

export interface Container {
  kind: ContainerKind;
  /** cgroup: the directory jobs are made in (each job a `job-<id>` under it). */
  base?: string;
  /** cgroup: the controllers the jobs get (accounting without 'memory' has no peak memory). */
  controllers?: string[];
}

/** The cgroup2 mount point, or undefined (none, or only a v1 hierarchy). */
function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (type === 'cgroup2') return mountPoint;
  }
  return undefined;
}

function writable(dir: string): boolean {
  try {
    accessSync(join(dir, 'cgroup.procs'), constants.W_OK);
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const wanted = ['cpu', 'memory', 'pids'];

/** Enables what it can of cpu, memory and pids for the children of every cgroup from `mount` down to `dir`. */
function enableControllers(mount: string, dir: string): string[] {
  const steps = dir.slice(mount.length).split('/').filter(Boolean);
  let at = mount;
  for (const step of [...steps, undefined]) {
    const offered = readFileSync(join(at, 'cgroup.controllers'), 'utf8').split(/\s+/);
    // Never where processes are (the root aside): threaded controllers would be let in, and the cgroup
    // would become a thread root under which no job's cgroup could take a process (EOPNOTSUPP).
    const holdsProcesses = at !== mount && readFileSync(join(at, 'cgroup.procs'), 'utf8').trim() !== '';
    for (const controller of wanted.filter((c) => offered.includes(c) && !holdsProcesses)) {
      try {
        writeFileSync(join(at, 'cgroup.subtree_control'), `+${controller}`);
      } catch {
        // busy (processes in an inner cgroup) or not ours: the jobs go without it
      }
    }
    if (step === undefined) break;
    at = join(at, step);
  }
  const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  return wanted.filter((c) => enabled.includes(c));
}

/** The container a job gets here; `kind` forces one ('cgroup' throws when there is none to use). */
export function findContainer(kind: ContainerKind | 'auto' = 'auto'): Container {
  if (kind === 'process') return { kind: 'process' };
  const mount = cgroup2Mount();
  let base: string | undefined;
  if (mount !== undefined) {
    const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
    if (process.env.RDMA_NODE_CGROUP) {
      base = process.env.RDMA_NODE_CGROUP;
    } else if (process.getuid?.() === 0) {
      base = join(mount, 'rdma-node');
      if (!existsSync(base)) mkdirSync(base);
    } else if (own !== undefined && writable(join(mount, own))) {
      base = join(mount, own);
    }
  }
  if (base === undefined || !writable(base)) {
    if (kind === 'cgroup') throw new Error(`no cgroup v2 subtree to use here (${mount ? `cgroup2 at ${mount} is not delegated to this user` : 'no cgroup2 mount'}); set RDMA_NODE_CGROUP to one`);
    return { kind: 'process' };
  }
  return { kind: 'cgroup', base, controllers: mount !== undefined && base.startsWith(mount) ? enableControllers(mount, base) : [] };
}
