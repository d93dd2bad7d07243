import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ours, start, type Run } from '../support/processes';
import { role, runRetrying } from './sides';

// Our TypeScript rc_pingpong against rdma-core's C ibv_rc_pingpong, each in both roles, across the two
// hosts: both finish every iteration, and each saw the other host's GID and its own.
const args = ['-d', role.device, '-g', '1', '-n', '300', '-s', '4096'];

async function pingpong(port: number, serverTool: 'ours' | 'C', clientTool: 'ours' | 'C'): Promise<void> {
  const tool = role.server ? serverTool : clientTool;
  const command = [...(tool === 'ours' ? ours('rc_pingpong') : ['ibv_rc_pingpong']), '-p', String(port), ...args, ...(role.server ? [] : [role.peer])];
  const run: Run = role.server ? await start(command, 90_000).done : await runRetrying(command, 90_000);
  assert.equal(run.status, 0, `${command.join(' ')} failed:\n${run.output}`);
  assert.match(run.output, /^300 iters in [\d.]+ seconds/m);
  assert.match(run.output, new RegExp(`local address: .* GID ::ffff:${role.address.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(run.output, new RegExp(`remote address: .* GID ::ffff:${role.peer.replace(/\./g, '\\.')}$`, 'm'));
}

test('rc_pingpong: our server on host 0, rdma-core\'s ibv_rc_pingpong client on host 1', { timeout: 120_000 }, () => pingpong(18821, 'ours', 'C'));

test('rc_pingpong: rdma-core\'s ibv_rc_pingpong server on host 0, our client on host 1', { timeout: 120_000 }, () => pingpong(18822, 'C', 'ours'));
