/**
 * The running jobs of this user, as ptrack's prginfo lists them: a file per job in a directory of the
 * user's (`$XDG_RUNTIME_DIR/rdma-node/jobs`, else `<tmpdir>/rdma-node-<uid>/jobs`, mode 0700), written by
 * the launcher when the job starts and removed when it ends. A job whose shepherd is gone (its launcher
 * was killed before it could clean up) is dropped when listed.
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ContainerKind } from './container';

export interface JobEntry {
  /** The job's id: its shepherd's pid. */
  id: number;
  launcherPid: number;
  command: string[];
  np: number;
  container: ContainerKind;
  cgroup?: string;
  startedAt: string;
  ranks: { rank: number; pid: number }[];
}

export function registryDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  const dir = runtime ? join(runtime, 'rdma-node', 'jobs') : join(tmpdir(), `rdma-node-${process.getuid?.() ?? 0}`, 'jobs');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function recordJob(entry: JobEntry): void {
  writeFileSync(join(registryDir(), `${entry.id}.json`), JSON.stringify(entry));
}

export function forgetJob(id: number): void {
  rmSync(join(registryDir(), `${id}.json`), { force: true });
}

/** Whether `pid` is still the shepherd the entry names (a pid may have been reused). */
function shepherdAlive(id: number): boolean {
  try {
    return readFileSync(`/proc/${id}/cmdline`, 'utf8').split('\0')[0]!.endsWith('rdma-node-shepherd');
  } catch {
    return false;
  }
}

export function listJobs(): JobEntry[] {
  const dir = registryDir();
  const jobs: JobEntry[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const entry = JSON.parse(readFileSync(join(dir, name), 'utf8')) as JobEntry;
    if (shepherdAlive(entry.id)) jobs.push(entry);
    else rmSync(join(dir, name), { force: true });
  }
  return jobs.sort((a, b) => a.id - b.id);
}

/** Every process of a running job: what its cgroup holds, or the descendants of its shepherd. */
export function jobProcesses(entry: JobEntry): number[] {
  if (entry.cgroup !== undefined) {
    return entry.ranks.flatMap(({ rank }) => {
      try {
        return readFileSync(join(entry.cgroup!, `rank-${rank}`, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  }
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 4).split(' ')[0]);
      children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  for (const pending = [entry.id]; pending.length > 0; ) {
    for (const child of children.get(pending.pop()!) ?? []) {
      found.push(child);
      pending.push(child);
    }
  }
  return found.sort((a, b) => a - b);
}
