import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { exampleDir, readmeCompileArgs, readmeExample } from '../support/readme-example';

test("the README's example compiles with the README's command", () => {
  const dir = exampleDir(readmeExample());
  try {
    const npx = spawnSync('npx', ['--no-install', ...readmeCompileArgs()], { cwd: dir, encoding: 'utf8' });
    assert.equal(npx.status, 0, `${npx.stdout}${npx.stderr}`);
    assert.ok(existsSync(join(dir, 'example.js')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
