import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

// Each case runs in its own process (misuse-child.ts): JS that runs in the middle of a call (a getter)
// and closes or frees what the call uses must end in a TypeError or RdmaError, never a crash.
const child = join(__dirname, 'misuse-child.js');
const listing = JSON.parse(spawnSync(process.execPath, [child], { encoding: 'utf8' }).stdout) as { cases: string[]; succeeding: string[] };
const { cases } = listing;
const succeeding = new Set(listing.succeeding);

for (const name of cases) {
  test(`${name}: an error, not a crash`, () => {
    // A hang guard, not a timing: a case takes a second or two, over 20 s under the sanitizers in TCG.
    const run = spawnSync(process.execPath, [child, name], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.signal, null, `killed by ${run.signal} (a crash, or a hang past 120 s)\n${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    const outcome = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { error: string };
    const expected = succeeding.has(name) ? ['none'] : ['TypeError', 'RangeError', 'RdmaError'];
    assert.ok(expected.includes(outcome.error), `${name}: ${run.stdout}`);
  });
}
