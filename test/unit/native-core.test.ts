import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(__dirname, '..', '..', '..');

// The interval tree and the userfaultfd monitor are plain C++ (native/core, no N-API): the test program in
// test/native links the very static library the addon is built with, and runs on this host without an
// RDMA device (userfaultfd needs root, or /dev/userfaultfd access, as the monitor itself does).
test('C core: interval tree, watch table and userfaultfd monitor', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rdma-node-core-'));
  try {
    const binary = join(dir, 'core_test');
    const inputs = ['test/native/core_test.cc', 'build/Release/rdma_core.a'];
    const build = spawnSync(process.env.CXX ?? 'c++', ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-Inative', '-o', binary, ...inputs], {
      cwd: root,
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, build.stderr);
    const run = spawnSync(binary, { encoding: 'utf8', timeout: 120_000 });
    for (const line of run.stdout.trim().split('\n')) t.diagnostic(line);
    if (run.status === 77) {
      t.skip('userfaultfd is not available to this process; the monitor checks run in the VM');
      return;
    }
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
