/**
 * `rdma-node rxe` and its API without an RDMA kernel: arguments are refused (TypeError, RangeError) before
 * any system call, list lines are `rdma link show`'s, and on a kernel without RDMA (CONFIG_INFINIBAND off,
 * as on this project's build host) every call fails at socket(AF_NETLINK, NETLINK_RDMA) with a typed
 * EPROTONOSUPPORT, which the CLI explains in one line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { test } from 'node:test';

import { RdmaError, addRxe, deleteRxe, listRdmaLinks, type RdmaLink } from '../../lib';
import { formatLink } from '../../lib/cli/rxe';
import { native } from '../../lib/native';

const cli = resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');
const rxe = (...args: string[]) => spawnSync(process.execPath, [cli, 'rxe', ...args], { encoding: 'utf8' });
// ib_core registers its sysfs class and NETLINK_RDMA together.
const skipWithRdma = existsSync('/sys/class/infiniband') ? 'this kernel has RDMA' : false;

test('arguments of the wrong type are TypeErrors', () => {
  assert.throws(() => addRxe(42 as unknown as string), { name: 'TypeError', message: 'netdev must be a string' });
  assert.throws(() => addRxe('eth0', { name: 7 as unknown as string }), { name: 'TypeError', message: 'name must be a string' });
  assert.throws(() => deleteRxe(undefined as unknown as string), TypeError);
  assert.throws(() => native.rdmaLinkAdd('rxe9', 'eth0', null as unknown as string), { name: 'TypeError', message: 'link type must be a string' });
});

test('names the kernel cannot hold are RangeErrors, even when only the last argument is wrong', () => {
  // IB_DEVICE_NAME_MAX (64) and IFNAMSIZ (16) count the NUL. On a host without RDMA any call that reached
  // the socket would be an RdmaError, so a RangeError also shows that nothing was sent.
  const calls = [
    () => addRxe('e'.repeat(16)),
    () => addRxe(''),
    () => addRxe('eth\0'),
    () => addRxe('eth0', { name: 'r'.repeat(64) }),
    () => addRxe('eth0', { name: '' }),
    () => deleteRxe('r'.repeat(64)),
    () => native.rdmaLinkAdd('rxe9', 'eth0', 't'.repeat(16)),
  ];
  for (const call of calls) assert.throws(call, RangeError);
});

test('on a kernel without RDMA each call is RdmaError EPROTONOSUPPORT naming its command', { skip: skipWithRdma }, () => {
  const refused = (verb: string) => (error: unknown) => {
    assert.ok(error instanceof RdmaError);
    assert.deepEqual([error.code, error.errno, error.verb], ['EPROTONOSUPPORT', constants.errno.EPROTONOSUPPORT, verb]);
    assert.match(error.message, /socket\(AF_NETLINK, NETLINK_RDMA\): this kernel has no RDMA/);
    return true;
  };
  assert.throws(() => listRdmaLinks(), refused('RDMA_NLDEV_CMD_GET'));
  assert.throws(() => addRxe('eth0'), refused('RDMA_NLDEV_CMD_NEWLINK'));
  assert.throws(() => addRxe('e'.repeat(15), { name: 'r'.repeat(63) }), refused('RDMA_NLDEV_CMD_NEWLINK'));
  assert.throws(() => deleteRxe('rxe0'), refused('RDMA_NLDEV_CMD_DELLINK'));
});

test('the CLI says in one line that the kernel has no RDMA', { skip: skipWithRdma }, () => {
  for (const args of [['list'], ['add', 'eth0'], ['del', 'rxe0']]) {
    const run = rxe(...args);
    assert.equal(run.status, 1);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^rdma-node: rxe: this kernel has no RDMA \(RDMA_NLDEV_CMD_\w+: EPROTONOSUPPORT [^\n]*\n$/);
  }
});

test('the CLI refuses what it cannot run before calling the kernel', () => {
  for (const args of [[], ['add'], ['add', 'eth0', 'eth1'], ['del'], ['list', 'rxe0'], ['frob']]) {
    const run = rxe(...args);
    assert.equal(run.status, 1, args.join(' '));
    assert.match(run.stderr, /^usage: rdma-node rxe add NETDEV/m);
  }
  assert.match(rxe('add', 'eth0', '--json').stderr, /^rdma-node: unrecognized option '--json'$/m);
  assert.match(rxe('add', 'e'.repeat(16)).stderr, /^rdma-node: netdev must be 1 to 15 bytes long/m);
  const help = rxe('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: rdma-node rxe/);
});

test('list lines are the lines of rdma link show', () => {
  // rxe0 in the Soft-RoCE VM, where iproute2 printed 'link rxe0/1 state ACTIVE physical_state LINK_UP netdev eth0 '.
  const link: RdmaLink = {
    name: 'rxe0', index: 0, port: 1, nodeGuid: '5054:00ff:fe12:3456', protocol: 'roce', state: 4, stateName: 'ACTIVE',
    physicalState: 5, physicalStateName: 'LINK_UP', netdev: 'eth0', netdevIndex: 2,
  };
  assert.equal(formatLink(link), 'link rxe0/1 state ACTIVE physical_state LINK_UP netdev eth0');
  const { netdev: _netdev, netdevIndex: _index, ...unbound } = link;
  assert.equal(formatLink(unbound), 'link rxe0/1 state ACTIVE physical_state LINK_UP');
});
