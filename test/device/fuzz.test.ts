import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

// Every public method and getter of every kind of object, with wrong arguments, after close, after its
// parent's close and with its parents collected (fuzz-child.ts), one kind per process: no crash, no hang,
// only TypeError, RangeError and RdmaError (CompletionError for failed work).
const child = join(__dirname, 'fuzz-child.js');
const { targets } = JSON.parse(spawnSync(process.execPath, [child], { encoding: 'utf8' }).stdout) as { targets: string[] };

for (const target of targets) {
  test(`fuzz ${target}: no crash, no hang, only typed errors`, (t) => {
    const run = spawnSync(process.execPath, ['--expose-gc', child, target], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
    const lines = run.stdout.trim().split('\n');
    assert.equal(run.signal, null, `killed by ${run.signal} during: ${lines.at(-1)}\n${run.stderr.slice(-2000)}`);
    assert.equal(run.status, 0, `${lines.at(-1)}\n${run.stderr.slice(-2000)}`);
    const summary = JSON.parse(lines.at(-1)!) as { seen: Record<string, number>; wrong: string[]; unsettled: string[] };
    assert.deepEqual(summary.wrong, []);
    assert.deepEqual(summary.unsettled, []);
    t.diagnostic(`${lines.length - 1} calls; errors: ${JSON.stringify(summary.seen)}`);
  });
}
