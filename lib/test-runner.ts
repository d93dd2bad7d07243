/**
 * `npm test`: unit tests on the host, then the device tests on a real RDMA device: this host's if it has
 * one, else the rxe device inside the Soft-RoCE VM. Never reports success with the device tests skipped:
 * if no device can be reached, the run fails and says why.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { hostHasDevice, insideVm, rerunInVm } from './device-host';

const testRoot = resolve(__dirname, '..', 'test');

/** The suite's compiled test files; `filter`: comma-separated substrings of their names. */
export function testFiles(suite: 'unit' | 'device', filter?: string): string[] {
  const dir = join(testRoot, suite);
  const wanted = filter?.split(',').filter(Boolean);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.js') && (wanted === undefined || wanted.some((w) => f.includes(w))))
    .sort()
    .map((f) => join(dir, f));
}

function nodeTest(files: string[], extraArgs: string[] = []): number {
  if (files.length === 0) return 0;
  const result = spawnSync(process.execPath, ['--expose-gc', '--test', '--test-reporter=spec', ...extraArgs, ...files], { stdio: 'inherit' });
  return result.status ?? 1;
}

/** argv: [unit|device|all] [--filter name[,name...]] */
export async function runTests(argv: string[]): Promise<number> {
  const suite = argv.find((a) => ['unit', 'device', 'all'].includes(a)) ?? 'all';
  const filterAt = argv.indexOf('--filter');
  const filter = filterAt >= 0 ? argv[filterAt + 1] : undefined;

  if (suite !== 'device') {
    console.log('# unit tests (host)');
    const status = nodeTest(testFiles('unit', filter));
    if (status !== 0 || suite === 'unit') return status;
  }

  const deviceFiles = testFiles('device', filter);
  if (deviceFiles.length === 0) {
    console.error('device tests: no test files matched');
    return 1;
  }
  if (insideVm() || hostHasDevice()) {
    console.log(`# device tests (${insideVm() ? 'Soft-RoCE VM' : 'this host'})`);
    // One file at a time: the files share the device, and a failure is easier to read alone.
    return nodeTest(deviceFiles, ['--test-concurrency=1']);
  }
  console.log('# device tests: this host has no RDMA device; running them on rxe inside the Soft-RoCE VM');
  try {
    return await rerunInVm(join(__dirname, 'cli.js'), ['test', 'device', ...(filter ? ['--filter', filter] : [])], 40 * 60_000);
  } catch (error) {
    console.error(`device tests FAILED: the Soft-RoCE VM could not run them: ${(error as Error).message}`);
    return 1;
  }
}
