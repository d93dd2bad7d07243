import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { before, test } from 'node:test';

import { PAIR_SUBNET } from '../../lib/harness/vm/pair';
import { capture as run, jobCompletions, mpirunAcrossPair, slurmLogs, startSlurm, startSshd, type Captured } from '../../lib/harness/vm/services';
import { rankScript } from '../support/jobs';
import { CONNECT_DEADLINE_MS, awaitPeer, role, side, tellPeer } from './sides';

const collectiveRankScript = rankScript.replace(/job-rank\.js$/, 'collective-rank.js');

// The same rank script as under `rdma-node run`, across the two VMs under Open MPI's mpirun (its daemon
// started on host 1 over ssh) and under Slurm's srun: the ranks bootstrap through PMIx, connect over
// rxe1 and send 64 KiB to every other rank, every byte checked. Host 1 serves until host 0 is done.

before(() => {
  startSshd();
});

/** A run's JSON lines (what the ranks printed). */
async function capture(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; lines: string[]; stderr: string }> {
  return withLines(await run(command, args, { env, timeoutMs: 180_000 }));
}

const withLines = ({ status, stdout, stderr }: Captured): { status: number | null; lines: string[]; stderr: string } =>
  ({ status, lines: stdout.trim().split('\n').filter((l) => l.startsWith('{')), stderr });

const expected = (launcher: string) => [0, 1, 2, 3].map((rank) => ({ rank, launcher, peers: 3, bad: 0, statuses: ['SUCCESS'] }));
/** What each rank printed, by rank; two ranks ran on each VM. */
function results(lines: string[]): unknown[] {
  const ranks = lines.map((line) => JSON.parse(line) as { rank: number; hostname: string }).sort((a, b) => a.rank - b.rank);
  assert.deepEqual(ranks.map((r) => r.hostname).sort(), ['host0', 'host0', 'host1', 'host1']);
  return ranks.map(({ hostname: _, ...rest }) => rest);
}

/** mpirun over both VMs, two ranks on each, over TCP for Open MPI's own traffic (the ranks use RDMA). */
const mpirunBoth = async (command: string[]): Promise<{ status: number | null; lines: string[]; stderr: string }> =>
  withLines(await mpirunAcrossPair(['--mca', 'btl_tcp_if_include', `${PAIR_SUBNET}.0/24`, '--mca', 'btl', 'self,tcp', '--mca', 'pml', 'ob1'], command));

test("Open MPI's mpirun --host host0:2,host1:2: 4 ranks across the VMs bootstrap through PMIx and talk RDMA over rxe1", () =>
  side(
    async () => {
      try {
        const run = await mpirunBoth([process.execPath, rankScript, 'rdma', role.device]);
        assert.equal(run.status, 0, run.stderr);
        assert.deepEqual(results(run.lines), expected('pmix'));
      } finally {
        await tellPeer('mpirun-done');
      }
    },
    () => awaitPeer('mpirun-done'),
  ));

test('collectives across the VMs (2×2 ranks under mpirun): every operation, type and reduction checked on every rank', () =>
  side(
    async () => {
      try {
        const run = await mpirunBoth([process.execPath, collectiveRankScript, 'check', role.device]);
        assert.equal(run.status, 0, run.stderr.slice(-3000));
        const outcomes = run.lines.map((l) => JSON.parse(l) as { rank: number; size: number; bad: string[] }).sort((a, b) => a.rank - b.rank);
        assert.deepEqual(outcomes.map((o) => [o.rank, o.size, o.bad]), [0, 1, 2, 3].map((rank) => [rank, 4, []]));
      } finally {
        await tellPeer('collectives-done');
      }
    },
    () => awaitPeer('collectives-done'),
  ));

test("Slurm's srun -N2 -n4 --mpi=pmix: the same ranks under slurmctld and two slurmd; Slurm's record agrees; --mpi=none bootstraps too", () =>
  side(
    async () => {
      try {
        const slurmEnv = startSlurm();
        // Both slurmd registered and idle.
        const idle = (): number => spawnSync('sinfo', ['-h', '-N', '-o', '%T'], { env: slurmEnv, encoding: 'utf8' }).stdout.split('\n').filter((s) => s === 'idle').length;
        for (const deadline = Date.now() + CONNECT_DEADLINE_MS; idle() < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 1000));
        const state = spawnSync('sinfo', ['-N'], { env: slurmEnv, encoding: 'utf8' }).stdout;
        // One CPU per VM: --overcommit lets two tasks share it, as they do under mpirun.
        const started = Date.now();
        const run = await capture('srun', ['-N2', '-n4', '--overcommit', '--mpi=pmix', process.execPath, rankScript, 'rdma', role.device], slurmEnv);
        const wallS = (Date.now() - started) / 1000;
        assert.equal(run.status, 0, `${run.stderr}\n${state}\n${slurmLogs()}`);
        assert.deepEqual(results(run.lines), expected('pmix'));
        // Slurm's own record of the job agrees: completed, on both nodes, no longer than srun took.
        const record = readFileSync(jobCompletions, 'utf8').trim().split('\n').at(-1)!;
        assert.match(record, /JobState=COMPLETED .*NodeList=host\[0-1\] NodeCnt=2/, record);
        const [start, end] = [/StartTime=(\S+)/, /EndTime=(\S+)/].map((field) => Date.parse(`${field.exec(record)![1]}Z`));
        assert.ok(end! - start! <= (wallS + 2) * 1000, `Slurm says ${(end! - start!) / 1000} s, srun took ${wallS} s`);
        // Without PMIx (--mpi=none) the ranks bootstrap from Slurm's variables, rank 0 serving the root.
        const plain = await capture('srun', ['-N2', '-n4', '--overcommit', '--mpi=none', process.execPath, rankScript, 'join'], {
          ...slurmEnv, RDMA_NODE_BOOTSTRAP: `${PAIR_SUBNET}.1:29500`,
        });
        assert.equal(plain.status, 0, plain.stderr);
        const joined = plain.lines.map((line) => JSON.parse(line) as { launcher: string; size: number; all: string[] });
        assert.equal(joined.length, 4);
        for (const j of joined) assert.deepEqual({ ...j, rank: 0, localRank: 0 }, { launcher: 'slurm', rank: 0, size: 4, localRank: 0, all: ['rank 0', 'rank 1', 'rank 2', 'rank 3'] });
      } finally {
        await tellPeer('srun-done');
      }
    },
    async () => {
      startSlurm();
      await awaitPeer('srun-done');
    },
  ));
