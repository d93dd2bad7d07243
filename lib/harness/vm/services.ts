/**
 * The services a pair of VMs needs to run jobs under the engines people use across machines, started by
 * the tests inside each VM (the VMs share the host's read-only root, so everything they write goes under
 * /tmp and /run, which are the guest's own):
 * - sshd on the private link only, with host keys generated at boot and the pair's key authorized, so that
 *   host 0's `mpirun --host …` starts Open MPI's daemons on host 1 the way it does between machines;
 * - munged with the pair's key, slurmctld on host 0 and slurmd on both, for `srun -N2 --mpi=pmix`.
 * Nothing listens beyond the private link (its addresses are 10.77.0.1 and .2) but munged's Unix socket.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { PAIR_SUBNET, hostRole } from './pair';

const sshDir = '/tmp/rdma-node-ssh';

/** Runs a daemon's start (or a tool) to its end; a failure says what its log says. */
function run(command: string, args: string[], { env = process.env, log }: { env?: NodeJS.ProcessEnv; log?: string } = {}): void {
  const done = spawnSync(command, args, { encoding: 'utf8', env });
  if (done.status === 0) return;
  const logged = log && existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-8).join('\n') : '';
  throw new Error(`${command} ${args.join(' ')} failed (${done.status ?? done.signal}): ${done.stderr || done.error || ''}${logged}`);
}

function secret(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: start the pair with rdma-node vm --hosts 2`);
  return value;
}

/** Starts sshd on this host's link address; returns the ssh command line other tools log in with. */
export function startSshd(): string {
  const role = hostRole();
  mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  mkdirSync('/run/sshd', { recursive: true });
  const hostKey = join(sshDir, 'host_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  writeFileSync(join(sshDir, 'authorized_keys'), `${secret('RDMA_NODE_PAIR_SSH_PUB')}\n`);
  writeFileSync(join(sshDir, 'id'), Buffer.from(secret('RDMA_NODE_PAIR_SSH_KEY'), 'base64'), { mode: 0o600 });
  const config = join(sshDir, 'sshd_config');
  writeFileSync(config, [
    `ListenAddress ${role.address}`, `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(sshDir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'StrictModes no', 'UsePAM no',
    `PidFile ${join(sshDir, 'sshd.pid')}`, 'AcceptEnv *', '',
  ].join('\n'));
  run('/usr/sbin/sshd', ['-f', config, '-E', join(sshDir, 'sshd.log')], { log: join(sshDir, 'sshd.log') });
  return sshCommand();
}

/** ssh as Open MPI's rsh agent: the pair's key, no host-key prompts (the host keys are new at each boot). */
export function sshCommand(): string {
  return `ssh -i ${join(sshDir, 'id')} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR`;
}

export interface Captured {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`), its output captured; stderr echoed when `echo`. */
export async function capture(command: string, args: string[], { env = process.env, timeoutMs, echo = false }: { env?: NodeJS.ProcessEnv; timeoutMs: number; echo?: boolean }): Promise<Captured> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (echo) process.stderr.write(chunk);
  });
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout, stderr };
}

const SSHD_WAIT_MS = 60_000;

/**
 * Host 0: Open MPI's mpirun over both VMs, two ranks on each (its daemon on host 1 started over ssh),
 * with `mca` choosing its transports; retried while host 1's sshd is not up yet.
 */
export async function mpirunAcrossPair(mca: string[], command: string[], { env = process.env, timeoutMs = 180_000, echo = false } = {}): Promise<Captured> {
  const args = [
    '--allow-run-as-root', '--host', `${PAIR_SUBNET}.1:2,${PAIR_SUBNET}.2:2`, '-np', '4', '--mca', 'plm_rsh_agent', sshCommand(),
    '--mca', 'oob_tcp_if_include', `${PAIR_SUBNET}.0/24`, '--mca', 'orte_tmpdir_base', '/tmp', ...mca, ...command,
  ];
  let run = await capture('mpirun', args, { env, timeoutMs, echo });
  for (const deadline = Date.now() + SSHD_WAIT_MS; run.status !== 0 && /Connection refused|ORTE was unable to reliably start/.test(run.stderr) && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 1000));
    run = await capture('mpirun', args, { env, timeoutMs, echo });
  }
  return run;
}

const slurmDir = '/tmp/rdma-node-slurm';
export const slurmConf = join(slurmDir, 'slurm.conf');
/** Slurm's record of each finished job (jobcomp/filetxt), on host 0. */
export const jobCompletions = join(slurmDir, 'jobcomp.txt');

/** munged with the pair's key, then slurmctld (host 0) and slurmd (both); SLURM_CONF for srun. */
export function startSlurm(): NodeJS.ProcessEnv {
  const role = hostRole();
  for (const dir of ['/run/munge', join(slurmDir, 'munge'), join(slurmDir, 'state'), join(slurmDir, 'spool')]) mkdirSync(dir, { recursive: true });
  const key = join(slurmDir, 'munge', 'munge.key');
  writeFileSync(key, Buffer.from(secret('RDMA_NODE_PAIR_MUNGE_KEY'), 'base64'), { mode: 0o400 });
  chmodSync(join(slurmDir, 'munge'), 0o700);
  run('/usr/sbin/munged', ['--force', `--key-file=${key}`, '--socket=/run/munge/munge.socket.2', `--log-file=${join(slurmDir, 'munge', 'log')}`,
    `--pid-file=${join(slurmDir, 'munge', 'pid')}`, `--seed-file=${join(slurmDir, 'munge', 'seed')}`], { log: join(slurmDir, 'munge', 'log') });
  const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  writeFileSync(slurmConf, [
    'ClusterName=rdmanode', `SlurmctldHost=host0(${PAIR_SUBNET}.1)`, 'AuthType=auth/munge', 'CredType=cred/munge',
    'SlurmUser=root', 'SlurmdUser=root', 'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'MpiDefault=none',
    'SchedulerType=sched/builtin', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_CPU', 'ReturnToService=2',
    `StateSaveLocation=${join(slurmDir, 'state')}`, `SlurmdSpoolDir=${join(slurmDir, 'spool')}`,
    `SlurmctldPidFile=${join(slurmDir, 'slurmctld.pid')}`, `SlurmdPidFile=${join(slurmDir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${join(slurmDir, 'slurmctld.log')}`, `SlurmdLogFile=${join(slurmDir, 'slurmd.log')}`,
    'JobAcctGatherType=jobacct_gather/linux', 'JobAcctGatherFrequency=1', 'JobCompType=jobcomp/filetxt', `JobCompLoc=${jobCompletions}`,
    'SlurmctldTimeout=30', 'SlurmdTimeout=30', 'InactiveLimit=0', 'KillWait=5', 'MessageTimeout=30',
    `NodeName=host0 NodeAddr=${PAIR_SUBNET}.1 CPUs=${cpus} State=UNKNOWN`, `NodeName=host1 NodeAddr=${PAIR_SUBNET}.2 CPUs=${cpus} State=UNKNOWN`,
    'PartitionName=all Nodes=host0,host1 Default=YES MaxTime=INFINITE OverSubscribe=FORCE State=UP', '',
  ].join('\n'));
  // slurmd's cgroup v2 support asks systemd (over D-Bus) for a scope unless told to make it itself.
  writeFileSync(join(slurmDir, 'cgroup.conf'), 'CgroupPlugin=cgroup/v2\nIgnoreSystemd=yes\n');
  mkdirSync('/sys/fs/cgroup/system.slice', { recursive: true }); // where it makes it
  const env = { ...process.env, SLURM_CONF: slurmConf };
  if (role.server) run('/usr/sbin/slurmctld', [], { env, log: join(slurmDir, 'slurmctld.log') });
  run('/usr/sbin/slurmd', ['-N', `host${role.index}`], { env, log: join(slurmDir, 'slurmd.log') });
  return env;
}

/** The end of the Slurm daemons' logs on this host, for a failure's message. */
export function slurmLogs(): string {
  return ['slurmctld.log', 'slurmd.log']
    .filter((name) => existsSync(join(slurmDir, name)))
    .map((name) => `${name}:\n${readFileSync(join(slurmDir, name), 'utf8').trim().split('\n').slice(-12).join('\n')}`)
    .join('\n');
}
