import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { basename, resolve } from 'node:path';
import { test } from 'node:test';

import { testFiles, twoHostPairs } from '../../lib/harness/test-runner';
import { BootFailure, combine, PeerStopped } from '../../lib/harness/vm/guest';
import { freeUdpPorts, hostRole, pairHosts } from '../../lib/harness/vm/pair';

test('a pair: addresses, peers, MACs, crossed UDP ports and each host\'s environment', () => {
  const [a, b] = pairHosts([4000, 4001]);
  assert.deepEqual(a.link, { localPort: 4000, peerPort: 4001, mac: '52:54:00:77:00:01', address: '10.77.0.1/24', device: 'rxe1' });
  assert.deepEqual(b.link, { localPort: 4001, peerPort: 4000, mac: '52:54:00:77:00:02', address: '10.77.0.2/24', device: 'rxe1' });
  assert.deepEqual(a.env, { RDMA_NODE_HOSTS: '2', RDMA_NODE_HOST_INDEX: '0', RDMA_NODE_ADDRESS: '10.77.0.1', RDMA_NODE_PEER: '10.77.0.2', RDMA_NODE_DEVICE: 'rxe1' });
  assert.deepEqual(hostRole(b.env), { index: 1, server: false, address: '10.77.0.2', peer: '10.77.0.1', device: 'rxe1' });
  assert.deepEqual(hostRole(a.env), { index: 0, server: true, address: '10.77.0.1', peer: '10.77.0.2', device: 'rxe1' });
  assert.throws(() => hostRole({}), /RDMA_NODE_HOST_INDEX/);
  assert.throws(() => hostRole({ ...a.env, RDMA_NODE_HOST_INDEX: '2' }), /not one of a pair/);
  assert.throws(() => hostRole({ ...a.env, RDMA_NODE_PEER: '' }), /not one of a pair/);
});

test('freeUdpPorts gives two distinct ports', async () => {
  const [p, q] = await freeUdpPorts();
  assert.ok(p > 0 && q > 0 && p !== q);
});

test('a pair\'s status: the first failure, a VM stopped for its peer counts only with it', () => {
  const ok = (value: number): PromiseSettledResult<number> => ({ status: 'fulfilled', value });
  const no = (reason: Error): PromiseSettledResult<number> => ({ status: 'rejected', reason });
  assert.equal(combine([ok(0)]), 0);
  assert.equal(combine([ok(0), ok(0)]), 0);
  assert.equal(combine([ok(0), ok(4)]), 4);
  assert.equal(combine([no(new PeerStopped('host0: stopped')), ok(2)]), 2);
  assert.equal(combine([no(new PeerStopped('host0: stopped')), ok(0)]), 1);
  assert.throws(() => combine([ok(0), no(new Error('host1: timed out'))]), /host1: timed out/);
  // A kernel that cannot boot is worth another try only when nothing else went wrong.
  assert.throws(() => combine([no(new BootFailure('boot')), ok(0)]), BootFailure);
  assert.throws(() => combine([no(new BootFailure('boot')), no(new Error('qemu exited'))]), (e: Error) => !(e instanceof BootFailure) && /qemu exited/.test(e.message));
});

test('the two-host suite: its files, in the order both hosts run them', () => {
  assert.deepEqual(testFiles('twohost').map((f) => basename(f)), ['bench.test.js', 'endpoint.test.js', 'engines.test.js', 'keepalive.test.js', 'peer-vm-killed.test.js', 'pingpong.test.js']);
  assert.deepEqual(testFiles('twohost', 'ping').map((f) => basename(f)), ['pingpong.test.js']);
});

test('the two-host suite in pairs of VMs: a file that kills host 1 or takes its link down gets a pair of its own, after the rest', () => {
  assert.deepEqual(twoHostPairs(testFiles('twohost')), [['bench', 'endpoint', 'engines', 'pingpong'], ['keepalive'], ['peer-vm-killed']]);
  assert.deepEqual(twoHostPairs(testFiles('twohost', 'killed')), [['peer-vm-killed']]);
  assert.deepEqual(twoHostPairs(testFiles('twohost', 'bench')), [['bench']]);
});

test('interruptible: SIGINT aborts the run, lets it clean up, then ends the process by SIGINT', () => {
  const module = resolve(__dirname, '..', '..', 'lib', 'harness', 'vm', 'interrupt.js');
  const script = `
    const { interruptible } = require(${JSON.stringify(module)});
    interruptible((signal) => new Promise((resolve) => {
      signal.addEventListener('abort', () => setTimeout(() => { console.log('cleaned up'); resolve(0); }, 50));
      setTimeout(() => process.kill(process.pid, 'SIGINT'), 50);
      setTimeout(() => console.log('not interrupted'), 5000);
    })).then(() => console.log('after'));`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
  assert.match(run.stdout, /^cleaned up\n/);
  assert.doesNotMatch(run.stdout, /not interrupted/);
  assert.equal(run.signal, 'SIGINT');
  assert.match(run.stderr, /SIGINT: stopping the VM/);
});
