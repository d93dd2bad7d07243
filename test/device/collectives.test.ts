import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { runJob } from '../support/jobs';
import { mpirun } from '../support/mpirun';

// Collectives over rxe between ranks of `rdma-node run`: every operation, type and reduction checked
// element by element against a reference each rank computes itself (collective-rank.ts), for 1 to 8
// ranks; then the ways a collective ends early, on every rank.
const rankScript = join(__dirname, '..', 'support', 'collective-rank.js');

interface Outcome {
  rank: number;
  size: number;
  checked?: number;
  bad?: string[];
  code?: string;
  message?: string;
  after?: string;
}

async function collectives(np: number, mode: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<{ status: number | null; outcomes: Outcome[]; stderr: string }> {
  const { record, lines, stderr } = await runJob([...extra, '-np', String(np), rankScript, mode], { env });
  const outcomes = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Outcome).sort((a, b) => a.rank - b.rank);
  return { status: record.status, outcomes, stderr };
}

for (const np of [1, 2, 3, 4, 5, 6, 7, 8]) {
  // A 6 MiB allreduce too, with 3 ranks (every rank computes every rank's input: slow in the VM).
  const big = np === 3;
  test(`${np} rank${np > 1 ? 's' : ''}: every collective, type and reduction${big ? ', 6 MiB' : ''}, every element as the reference says`, async () => {
    const { status, outcomes, stderr } = await collectives(np, 'check', [], big ? { ...process.env, COLLECTIVES_BIG: '1' } : undefined);
    assert.equal(status, 0, stderr.slice(-3000));
    assert.deepEqual(outcomes.map((o) => o.rank), Array.from({ length: np }, (_, r) => r));
    for (const o of outcomes) {
      assert.deepEqual(o.bad, [], `rank ${o.rank}`);
      assert.ok(o.checked! > 40, `rank ${o.rank} checked ${o.checked}`);
    }
  });
}

test("Open MPI's mpirun -np 3 (bootstrap through PMIx): the same checks pass", async () => {
  const run = await mpirun(3, [process.execPath, rankScript, 'check']);
  assert.equal(run.status, 0, run.stderr.slice(-3000));
  const outcomes = run.lines.map((l) => JSON.parse(l) as Outcome).sort((a, b) => a.rank - b.rank);
  assert.deepEqual(outcomes.map((o) => [o.rank, o.bad]), [[0, []], [1, []], [2, []]]);
});

test('an AbortSignal on one rank ends the collective on every rank with ECANCELED, and the communicator stays broken', async () => {
  const { outcomes, stderr } = await collectives(3, 'abort');
  assert.equal(outcomes.length, 3, stderr);
  for (const o of outcomes) {
    assert.equal(o.code, 'ECANCELED', `rank ${o.rank}: ${o.message}`);
    assert.equal(o.after, 'ECANCELED');
  }
  assert.match(outcomes[1]!.message!, /aborted at rank 1/);
  assert.match(outcomes[0]!.message!, /rank 1 ended the collective|after rank 1/);
});

test('a timeout ends the collective on every rank with ETIMEDOUT, the late rank included', async () => {
  const { outcomes, stderr } = await collectives(3, 'timeout');
  assert.equal(outcomes.length, 3, stderr);
  for (const o of outcomes) assert.equal(o.code, 'ETIMEDOUT', `rank ${o.rank}: ${o.message}`);
});

test('a rank SIGKILLed in the middle of a collective: the others reject with ECONNRESET naming it, no hang', async () => {
  const { status, outcomes, stderr } = await collectives(4, 'kill', ['--grace', '20000']);
  assert.notEqual(status, 0);
  assert.deepEqual(outcomes.map((o) => o.rank), [0, 1, 2], stderr);
  for (const o of outcomes) {
    assert.equal(o.code, 'ECONNRESET', `rank ${o.rank}: ${o.message}`);
    assert.match(o.message!, /rank 3/);
    assert.equal(o.after, 'ECONNRESET');
  }
});

test('closing a communicator during a collective settles it with ECANCELED; its peers are told', async () => {
  const { outcomes, stderr } = await collectives(3, 'close');
  assert.equal(outcomes.length, 3, stderr);
  assert.equal(outcomes[0]!.code, 'ECANCELED');
  assert.equal(outcomes[0]!.after, 'closed');
  for (const o of outcomes.slice(1)) assert.match(o.code!, /^(ECANCELED|ECONNRESET)$/, `rank ${o.rank}: ${o.message}`);
});

test('ranks that call a collective with different sizes reject with EPROTO instead of mixing the data', async () => {
  const { outcomes, stderr } = await collectives(2, 'mismatch');
  assert.equal(outcomes.length, 2, stderr);
  for (const o of outcomes) {
    assert.equal(o.code, 'EPROTO', `rank ${o.rank}: ${o.message}`);
    assert.match(o.message!, /different collectives, sizes or roots|ended the collective/);
  }
});

test('a broadcast longer at the root than at the others (first chunks alike): EPROTO where it arrives, never truncated data', async () => {
  const { outcomes, stderr } = await collectives(2, 'truncated');
  assert.equal(outcomes.length, 2, stderr);
  const [root, other] = outcomes as [Outcome, Outcome];
  assert.equal(other.code, 'EPROTO', other.message);
  assert.match(other.message!, /sent 65536 bytes and more .* where 65536 bytes for .* different collectives, sizes or roots/);
  // The root's writes completed before the receiver looked at them (as an MPI root's broadcast completes
  // locally); the receiver's abort reaches it, so its next collective fails the same way.
  assert.match(root.code ?? 'resolved', /^(resolved|EPROTO)$/);
  assert.equal(root.after, 'EPROTO');
  assert.equal(other.after, 'EPROTO');
});

test('wrong arguments are TypeErrors and RangeErrors; a closed communicator is a TypeError; close is idempotent', async () => {
  const { status, outcomes, stderr } = await collectives(1, 'misuse');
  assert.equal(status, 0, stderr);
  const T = 'TypeError';
  const R = 'RangeError';
  assert.deepEqual((outcomes[0] as Outcome & { errors: string[] }).errors, [T, T, T, R, R, T, T, R, R, R, R, R, T, T, '7', T]);
});
