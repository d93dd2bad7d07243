import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseRunArgs } from '../../lib/cli/jobs';
import { expandHostlist } from '../../lib/jobs/hostlist';
import { identify } from '../../lib/jobs/join';
import { containmentTests, rankScript, runJob, spawnSyncCli } from '../support/jobs';

// Jobs on this host in the process container (cgroups are tested in the VM, which has cgroup2).
containmentTests('process');

test('joinJob under rdma-node run: every rank gets every rank, in order; output tagged as mpirun --tag-output', async () => {
  const { record, lines } = await runJob(['-np', '3', '--tag-output', rankScript, 'join']);
  assert.equal(record.status, 0);
  const byRank = lines.map((line) => /^\[(\d+),(\d)\]<stdout>:(.*)$/.exec(line)!).sort((a, b) => Number(a[2]) - Number(b[2]));
  assert.equal(byRank.length, 3, lines.join('\n'));
  for (const [, job, rank, text] of byRank) {
    assert.equal(Number(job), record.id);
    assert.deepEqual(JSON.parse(text!), { launcher: 'rdma-node', rank: Number(rank), size: 3, localRank: Number(rank), all: ['rank 0', 'rank 1', 'rank 2'] });
  }
});

test('a rank that never joins makes the others fail with a timeout that names it', async () => {
  const { record, lines } = await runJob(['-np', '3', '--bootstrap-timeout', '1500', rankScript, 'join', '2']);
  assert.notEqual(record.status, 0);
  const errors = lines.map((line) => JSON.parse(line) as { error?: string }).filter((l) => l.error);
  assert.ok(errors.length >= 1, lines.join('\n'));
  assert.match(errors[0]!.error!, /rank 2 never arrived/);
});

test('stdin goes to rank 0 only', async () => {
  const { lines } = await runJob(['-np', '2', rankScript, 'stdin'], { stdin: 'first line\nsecond\n' });
  assert.deepEqual(lines.sort(), ['no stdin', 'stdin: first line']);
});

test('run: mpirun-style options; --host and --hostfile point to mpirun and srun instead of launching remotely', () => {
  assert.deepEqual(parseRunArgs(['-np', '4', '--tag-output', 'x.js', '-np', '9']).command, ['x.js', '-np', '9']);
  assert.equal(parseRunArgs(['-n', '2', '--', '-weird']).command[0], '-weird');
  assert.throws(() => parseRunArgs(['x.js']), /-np N is needed/);
  for (const flag of ['--host', '--hostfile']) assert.throws(() => parseRunArgs(['-np', '2', flag, 'h1', 'x.js']), /mpirun .*srun/);
  const cli = spawnSyncCli(['run', '-np', '2', '--host', 'a,b', 'x.js']);
  assert.equal(cli.status, 1);
  assert.match(cli.stderr, /starts ranks on this host only/);
});

test('launchers are told apart by their environment; none is a clear error', () => {
  assert.deepEqual(
    identify({ OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2', RDMA_NODE_BOOTSTRAP: 'h:1' }),
    { launcher: 'openmpi', rank: 1, size: 4, localRank: 1, localSize: 2, root: 'h:1', serveRoot: true },
  );
  const slurm = identify({ SLURM_PROCID: '3', SLURM_NTASKS: '4', SLURM_LOCALID: '1', SLURM_STEP_NODELIST: 'vm[0-1]', SLURM_JOB_ID: '7', SLURM_STEP_ID: '0', SLURM_STEP_TASKS_PER_NODE: '2(x2)' });
  assert.deepEqual(slurm, { launcher: 'slurm', rank: 3, size: 4, localRank: 1, localSize: 2, root: 'vm0:20448', serveRoot: true });
  assert.throws(() => identify({}), /no launcher in the environment.*rdma-node run/);
  assert.throws(() => identify({ RDMA_NODE_RANK: 'x' }), /RDMA_NODE_RANK is "x"/);
});

test("Slurm host lists expand as Slurm's do", () => {
  assert.deepEqual(expandHostlist('node[1-3,7],login0'), ['node1', 'node2', 'node3', 'node7', 'login0']);
  assert.deepEqual(expandHostlist('n[01-02]'), ['n01', 'n02']);
  assert.deepEqual(expandHostlist('r[1-2]c[1-2]'), ['r1c1', 'r1c2', 'r2c1', 'r2c2']);
  assert.deepEqual(expandHostlist(''), []);
});

test('a program that cannot be started ends the job with 127 and says why', async () => {
  const { record, stderr } = await runJob(['-np', '2', '/nonexistent/program']);
  assert.equal(record.status, 127);
  assert.equal(record.endedBy, 'spawn-failed');
  assert.match(stderr, /could not start \/nonexistent\/program: errno 2/);
});
