import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { readmeCompileArgs, readmeExample, repoRoot } from '../support/readme-example';

// The package as users get it: `npm pack`, installed into an empty project (which builds the addon against
// the system's rdma-core), then used by name there: the CLI on rxe in the VM, and the README's example.
function run(command: string, args: string[], options: SpawnSyncOptions & { cwd: string }): string {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 15 * 60_000, ...options });
  assert.equal(result.status, 0, `${command} ${args.join(' ')}: ${result.stdout}${result.stderr}`);
  return `${result.stdout}`;
}

test('npm pack, installed into an empty project: the CLI and the README example work there on rxe', () => {
  // Under the repository's tmp/: the VM shares the host's / read-only and the working directory read-write.
  mkdirSync(join(repoRoot, 'tmp'), { recursive: true });
  const dir = mkdtempSync(join(repoRoot, 'tmp', 'installed-'));
  try {
    const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: repoRoot })) as [
      { filename: string; files: { path: string }[] },
    ];
    const files = packed[0].files.map((f) => f.path);
    for (const needed of ['dist/lib/index.js', 'dist/lib/cli/main.js', 'binding.gyp', 'native/core/uffd_monitor.cc', 'scripts/check-headers.sh']) {
      assert.ok(files.includes(needed), `the package lacks ${needed}`);
    }
    assert.deepEqual(files.filter((f) => f.startsWith('test/') || f.startsWith('dist/test/')), [], 'tests are not shipped');

    const project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-rdma-node', private: true }));
    // JOBS: node-gyp's make on every core.
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed[0].filename)], { cwd: project, env: { ...process.env, JOBS: 'max' } });
    assert.ok(readdirSync(join(project, 'node_modules', 'rdma-node', 'build', 'Release')).includes('rdma_native.node'), 'the addon was built');

    // The README's example, compiled by the repository's tsc, importing the installed package by name.
    writeFileSync(join(project, 'example.ts'), readmeExample());
    run(join(repoRoot, 'node_modules', '.bin', 'tsc'), [...readmeCompileArgs().slice(1), '--typeRoots', join(repoRoot, 'node_modules', '@types')], { cwd: project });

    const output = run('npx', ['--no-install', 'rdma-node', 'vm', '--', 'sh', '-c', 'npx --no-install rdma-node devinfo && node example.js'], { cwd: project });
    assert.match(output, /hca_id:\s+rxe0/);
    assert.match(output, /SUCCESS hello, RDMA/);

    const tests = spawnSync('npx', ['--no-install', 'rdma-node', 'test'], { cwd: project, encoding: 'utf8' });
    assert.equal(tests.status, 1);
    assert.match(tests.stderr, /not part of the installed package: run `npm test` in a clone/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
