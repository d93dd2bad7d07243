import assert from 'node:assert/strict';
import { test } from 'node:test';

import { cmPair, ours, qpns, tcpPair, type Run } from '../support/processes';

// Each case runs our TypeScript program against rdma-core's C program in both roles, on the same rxe
// device, and checks that both finish every iteration and that each learned the other's real QPNs.
const common = ['-g', '1', '-n', '200'];
let port = 18600;

function bothFinished(server: Run, client: Run, iters: number): void {
  assert.equal(server.status, 0, `server failed:\n${server.output}`);
  assert.equal(client.status, 0, `client failed:\n${client.output}`);
  for (const run of [server, client]) assert.match(run.output, new RegExp(`^${iters} iters in [\\d.]+ seconds`, 'm'));
}

function exchangedQpns(server: Run, client: Run): void {
  assert.deepEqual(qpns(server.output, 'remote address'), qpns(client.output, 'local address'));
  assert.deepEqual(qpns(client.output, 'remote address'), qpns(server.output, 'local address'));
}

for (const [tool, cTool, extra] of [
  ['rc_pingpong', 'ibv_rc_pingpong', ['-s', '4096']],
  ['ud_pingpong', 'ibv_ud_pingpong', ['-s', '1000']],
  ['srq_pingpong', 'ibv_srq_pingpong', ['-q', '4', '-s', '2048']],
] as const) {
  test(`${tool}: our server, rdma-core's ${cTool} client`, async () => {
    const p = String(++port);
    const [server, client] = await tcpPair(ours(tool, '-p', p, ...common, ...extra), [cTool, '-p', p, ...common, ...extra, '10.0.2.15'], Number(p));
    bothFinished(server, client, 200);
    exchangedQpns(server, client);
  });

  test(`${tool}: rdma-core's ${cTool} server, our client`, async () => {
    const p = String(++port);
    const [server, client] = await tcpPair([cTool, '-p', p, ...common, ...extra], ours(tool, '-p', p, ...common, ...extra, '10.0.2.15'), Number(p));
    bothFinished(server, client, 200);
    exchangedQpns(server, client);
  });
}

test('rping: our client against rdma-core\'s rping server, data validated', async () => {
  const [server, client] = await cmPair(['rping', '-s', '-a', '10.0.2.15', '-p', '7201', '-v'], ours('rping', '-c', '-a', '10.0.2.15', '-p', '7201', '-C', '20', '-V', '-v'));
  assert.equal(client.status, 0, client.output);
  assert.equal(server.status, 0, server.output);
  const pings = [...client.output.matchAll(/^ping data: rdma-ping-(\d+): /gm)].map((m) => Number(m[1]));
  assert.deepEqual(pings, Array.from({ length: 20 }, (_, i) => i));
  assert.equal([...server.output.matchAll(/^server ping data: rdma-ping-\d+: /gm)].length, 20, 'the C server RDMA-read every ping');
});

test('rping: rdma-core\'s rping client against our server, data validated by the C client', async () => {
  const [server, client] = await cmPair(ours('rping', '-s', '-a', '10.0.2.15', '-p', '7202', '-v'), ['rping', '-c', '-a', '10.0.2.15', '-p', '7202', '-C', '20', '-V', '-v']);
  assert.equal(client.status, 0, client.output);
  assert.equal(server.status, 0, server.output);
  assert.doesNotMatch(client.output, /data mismatch/);
  const echoed = [...client.output.matchAll(/^ping data: rdma-ping-(\d+): ([A-z[\\\]^_`]+)$/gm)];
  assert.equal(echoed.length, 20, 'the C client got every ping back');
  assert.equal([...server.output.matchAll(/^server ping data: rdma-ping-\d+: /gm)].length, 20);
});
