import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(__dirname, '..', '..', '..');
const cli = resolve(root, 'dist', 'lib', 'cli', 'main.js');

test('installing the package as a dependency runs no setup: only the addon build', () => {
  const { scripts } = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  // The scripts npm runs when the package is installed as a dependency.
  assert.equal(scripts.preinstall, undefined);
  assert.equal(scripts.postinstall, undefined);
  assert.equal(scripts.install, 'node-gyp rebuild');
  // Only the repository's own entry points install system packages.
  assert.match(scripts.prestart!, /bootstrap\.sh/);
  assert.match(scripts.pretest!, /bootstrap\.sh/);
});

test('missing rdma-core headers stop the build with one line that says what to do', () => {
  const run = spawnSync('bash', [resolve(root, 'scripts', 'check-headers.sh')], {
    encoding: 'utf8',
    env: { ...process.env, PKG_CONFIG_LIBDIR: '/nonexistent', PKG_CONFIG_PATH: '' },
  });
  assert.equal(run.status, 1);
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, /infiniband\/verbs\.h not found.*apt-get install libibverbs-dev librdmacm-dev pkg-config/);
});

test('rdma-node setup installs only what is missing: here everything is, so it does nothing', () => {
  const run = spawnSync(process.execPath, [cli, 'setup'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout + run.stderr, '');
});
