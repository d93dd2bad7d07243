import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

import { KernelLog } from '../support/kernel-log';

// Every send opcode × send flags × the state of the keys it names, through both post APIs, on RC, UC and
// UD loopback QPs of the real device (wr-fuzz-child.ts, one batch per process so a hang or a crash is
// caught and named). Each combination ends in a typed error from the post or in completions on both
// sides, the QPs are recovered after every failure, and the guest kernel logs no oops, BUG or WARNING.
// `windows` are the sequences that would invalidate a type-2 window rxe has not bound (a NULL dereference
// in rxe_invalidate_mw on stock rxe): the binding must refuse each.
const child = join(__dirname, 'wr-fuzz-child.js');
const batches = ['windows-classic', 'windows-extended', 'RC-classic', 'RC-extended', 'UC-classic', 'UC-extended', 'UD-classic', 'UD-extended'];

for (const batch of batches) {
  test(`work-request fuzz ${batch}: bounded outcomes, recoverable QPs, no kernel trouble`, (t) => {
    const log = new KernelLog();
    const run = spawnSync(process.execPath, [child, batch], { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 << 20 });
    const trouble = log.trouble();
    log.close();
    const lines = run.stdout.trim().split('\n');
    const last = lines.filter((line) => line.includes('"running"')).at(-1) ?? '(none)';
    assert.deepEqual(trouble, [], `the kernel logged trouble during ${batch}; last combination: ${last}`);
    assert.equal(run.signal, null, `killed by ${run.signal} during ${last}\n${run.stderr.slice(-2000)}`);
    assert.equal(run.status, 0, `${last}\n${run.stderr.slice(-2000)}`);
    const summary = JSON.parse(lines.at(-1)!) as { combinations: number; wrong: string[]; kernel: string[]; tally: Record<string, number> };
    assert.deepEqual(summary.kernel, []);
    assert.deepEqual(summary.wrong, []);
    t.diagnostic(`${summary.combinations} combinations; outcomes: ${JSON.stringify(summary.tally)}`);
  });
}
