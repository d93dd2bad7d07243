import assert from 'node:assert/strict';
import { test } from 'node:test';

import { rankScript, runJob } from '../support/jobs';
import { mpirun, mpirunEnv } from '../support/mpirun';

// Ranks bootstrapping under the launchers people run, in one VM: this package's, and Open MPI's mpirun
// (through PMIx, and without it through RDMA_NODE_BOOTSTRAP). Every rank then talks RDMA to every other
// over rxe, every byte checked.

/** What each rank printed, by rank, without its hostname (every rank here is on this VM). */
const results = (lines: string[]) =>
  lines
    .map((line) => JSON.parse(line) as { rank: number; hostname?: string })
    .sort((a, b) => a.rank - b.rank)
    .map(({ hostname, ...rest }) => (assert.equal(hostname, 'rdma-node-vm'), rest));

test('rdma-node run -np 3: joinJob, connect, and 64 KiB from every rank to every other over RC, every byte checked', async () => {
  const { record, lines } = await runJob(['-np', '3', rankScript, 'rdma']);
  assert.equal(record.status, 0, lines.join('\n'));
  assert.deepEqual(results(lines), [0, 1, 2].map((rank) => ({ rank, launcher: 'rdma-node', peers: 2, bad: 0, statuses: ['SUCCESS'] })));
});

test("Open MPI's mpirun -np 3: ranks bootstrap through PMIx and talk RDMA", async () => {
  const run = await mpirun(3, [process.execPath, rankScript, 'rdma']);
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(results(run.lines), [0, 1, 2].map((rank) => ({ rank, launcher: 'pmix', peers: 2, bad: 0, statuses: ['SUCCESS'] })));
});

test('Open MPI without PMIx: rank 0 serves the rendezvous at RDMA_NODE_BOOTSTRAP', async () => {
  const run = await mpirun(2, ['sh', '-c', `unset PMIX_NAMESPACE PMIX_RANK; exec "$0" "$@"`, process.execPath, rankScript, 'join'], {
    ...mpirunEnv, RDMA_NODE_BOOTSTRAP: '127.0.0.1:29500',
  });
  assert.equal(run.status, 0, run.stderr);
  const joined = run.lines.map((line) => JSON.parse(line) as { launcher: string; rank: number; all: string[] });
  assert.deepEqual(joined.map((j) => j.launcher), ['openmpi', 'openmpi']);
  for (const j of joined) assert.deepEqual(j.all, ['rank 0', 'rank 1']);
});
