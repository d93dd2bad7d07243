import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import ts from 'typescript';

import { exampleDir, readmeExample } from '../support/readme-example';

// The unit suite type-checks the example with the README's command; here it is only transpiled (a full
// tsc run takes most of a minute in the emulated VM) and run as a person would run it.
test("the README's example runs as written and prints what its comment says", () => {
  const source = readmeExample();
  const dir = exampleDir(source);
  try {
    const { outputText } = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS } });
    writeFileSync(join(dir, 'example.js'), outputText);
    const expected = /console\.log\(.*\/\/ (.*)$/m.exec(source)?.[1];
    assert.ok(expected, 'the example says what it prints');
    assert.equal(execFileSync(process.execPath, [join(dir, 'example.js')], { encoding: 'utf8', timeout: 60_000 }), `${expected}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
