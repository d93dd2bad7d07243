import assert from 'node:assert/strict';
import { test } from 'node:test';

import { benchRows as rows, ours, start, type Run } from '../support/processes';
import { perftestGid, role, runRetrying } from './sides';

// `rdma-node bench` with the server on host 0 and the client on host 1, as on two machines: both must
// finish, print perftest's layout with each host's own GID, and report the same nonzero results.

function bench(test: string, p: number, args: string[]): string[] {
  return ours('bench', test, ...(role.server ? [] : [role.peer]), '-d', role.device, '-x', '1', '-p', String(p), ...(role.server ? [] : args));
}

async function run(test: string, p: number, args: string[]): Promise<Run> {
  const command = bench(test, p, args);
  const result = role.server ? await start(command, 90_000).done : await runRetrying(command, 90_000);
  assert.equal(result.status, 0, `${role.server ? 'server' : 'client'} failed:\n${result.output}`);
  // Each side shows its own address as local and the other host's as remote.
  const gids = [...result.output.matchAll(/^ GID: (\S+)$/gm)].map((m) => m[1]);
  assert.deepEqual(gids, [perftestGid(role.address), perftestGid(role.peer)], result.output);
  return result;
}

const number = /^\d+(\.\d+)?$/;

test('write_bw across the two hosts: 64 KiB x 300 at a nonzero rate', { timeout: 120_000 }, async () => {
  const result = await run('write_bw', 18801, ['-s', '65536', '-n', '300']);
  assert.match(result.output, /^ {20}RDMA_Write BW Test$/m);
  const [row, ...more] = rows(result.output);
  assert.equal(more.length, 0);
  assert.deepEqual(row!.slice(0, 2), ['65536', '300']);
  assert.ok(row!.slice(2).every((v) => number.test(v) && Number(v) > 0), row!.join(' '));
  console.log(`host${role.index}: write_bw 64 KiB: ${row![3]} MB/s average`);
});

test('send_lat across the two hosts: 500 iterations, ordered latencies', { timeout: 120_000 }, async () => {
  const result = await run('send_lat', 18802, ['-s', '64', '-n', '500']);
  assert.match(result.output, /^ {20}Send Latency Test$/m);
  const [row] = rows(result.output);
  assert.equal(row!.length, 9, 'bytes, iterations and the seven latency columns');
  assert.deepEqual(row!.slice(0, 2), ['64', '500']);
  const [min, max, typical, avg] = row!.slice(2).map(Number);
  assert.ok(min! > 0 && min! <= typical! && typical! <= max! && min! <= avg! && avg! <= max!, row!.join(' '));
  console.log(`host${role.index}: send_lat 64 B: ${typical} us typical`);
});
