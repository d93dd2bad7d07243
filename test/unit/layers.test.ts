import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

const root = resolve(__dirname, '..', '..', '..');

// The layers of lib/, lowest first: a file may import its own layer and the layers before it, never a
// later one nor another layer of the same rank. Type-only imports count too: a type from a higher layer
// is a dependency on it all the same (and would make the layer impossible to read on its own).
const ranks: Record<string, number> = {
  core: 0,
  native: 1,
  verbs: 2,
  cm: 3,
  memory: 3,
  endpoint: 4,
  jobs: 5,
  collectives: 6,
  streams: 6,
  'index.ts': 7, // the package's entry point: everything up to the parallel-job layers
  harness: 8,
  tools: 9,
  bench: 9,
  cli: 10,
};

// native/ mirrors them. core is plain C++ (no N-API), built as the static library test/native links too;
// addon/ is the N-API base every object stands on, except addon.cc, the module's init, which names every
// class and so sits on top.
const nativeRanks: Record<string, number> = {
  core: 0,
  addon: 1,
  verbs: 2,
  cm: 3,
  memory: 3,
  jobs: 4,
  collectives: 4,
  bench: 4,
  testing: 4,
  'addon/addon.cc': 5,
};

function sources(dir: string, extensions: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path, extensions);
    return extensions.test(entry.name) ? [path] : [];
  });
}

/** The layer of a file or imported module under lib/ ('index.ts' for lib itself, '..' outside lib). */
const layerOf = (path: string): string => relative(join(root, 'lib'), path).split('/')[0] || 'index.ts';

/** Every relative module a TypeScript file names: static imports and re-exports (type-only too), import(), require(). */
export function importsOf(source: string): string[] {
  const specifiers = source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|^\s*import\s+)'(\.[^']*)'/gm);
  return [...specifiers].map((match) => match[1]!);
}

test('lib/ layers import only the layers below them', () => {
  const edges: string[] = [];
  for (const file of sources(join(root, 'lib'), /\.ts$/)) {
    const from = layerOf(file);
    assert.ok(from in ranks, `${relative(root, file)} is in no layer (add its folder to the layer list)`);
    for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
      const to = layerOf(resolve(dirname(file), specifier));
      if (to === from || to === '..') continue;
      assert.ok(to in ranks, `${relative(root, file)} imports ${specifier}, outside every layer`);
      if (ranks[to]! >= ranks[from]!) edges.push(`${relative(root, file)} (${from}) imports ${specifier} (${to})`);
    }
  }
  assert.deepEqual(edges, [], 'back-edges or sibling edges between layers');
});

test('native/ folders include only the folders below them; core has no N-API', () => {
  const edges: string[] = [];
  for (const file of sources(join(root, 'native'), /\.(cc|h)$/)) {
    const path = relative(join(root, 'native'), file);
    const from = path in nativeRanks ? path : path.split('/')[0]!;
    assert.ok(from in nativeRanks, `native/${path} is in no layer`);
    const source = readFileSync(file, 'utf8');
    if (from === 'core') assert.doesNotMatch(source, /#include <napi\.h>|node_api/, `native/${path} is core but uses N-API`);
    for (const [, included] of source.matchAll(/^#include "([^"]+)"/gm)) {
      const to = included!.split('/')[0]!;
      assert.ok(to in nativeRanks, `native/${path} includes "${included}", outside every layer`);
      if (to !== path.split('/')[0] && nativeRanks[to]! >= nativeRanks[from]!) edges.push(`native/${path} (${from}) includes "${included}"`);
    }
  }
  assert.deepEqual(edges, [], 'back-edges or sibling edges between native layers');
});

test('the import scanner sees every form of import', () => {
  const source = [
    "import { a } from './a';",
    "import type { B } from '../verbs/b';",
    "export { c } from './c';",
    "import './side-effect';",
    "const d = require('../d');",
    "const e = await import('./e');",
    "import { x } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf(source), ['./a', '../verbs/b', './c', './side-effect', '../d', './e']);
});
