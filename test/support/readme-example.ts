/**
 * The README's TypeScript example, as a person would save it: in a directory inside this repository, so
 * that `import ... from 'rdma-node'` resolves to this package by its own name.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = join(__dirname, '..', '..', '..');

/** The ```ts block under "## Example" in README.md. */
export function readmeExample(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const match = /^## Example\n[\s\S]*?^```ts\n([\s\S]*?)^```$/m.exec(readme);
  if (!match) throw new Error('README.md has no ```ts block under "## Example"');
  return match[1]!;
}

/** The compile command the README gives, as arguments for `npx`. */
export function readmeCompileArgs(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const match = /`npx (tsc example\.ts[^`]*)`/.exec(readme);
  if (!match) throw new Error('README.md gives no `npx tsc example.ts ...` command');
  return match[1]!.split(/\s+/);
}

/** A fresh directory under the repository's (ignored) tmp/ holding `example.ts`. */
export function exampleDir(source: string): string {
  mkdirSync(join(repoRoot, 'tmp'), { recursive: true });
  const dir = mkdtempSync(join(repoRoot, 'tmp', 'readme-'));
  writeFileSync(join(dir, 'example.ts'), source);
  return dir;
}
