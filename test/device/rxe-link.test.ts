/**
 * Soft-RoCE devices over the kernel's RDMA netlink, against what libibverbs, sysfs and iproute2's `rdma link`
 * and `rdma res` see. Adds and deletes devices on `lo` (eth0 is rxe0's). Needs CAP_NET_ADMIN and rdma_rxe,
 * as the VM has.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { QpState, RdmaError, addRxe, deleteRxe, gsiQpState, listDevices, listRdmaLinks, openDevice } from '../../lib';
import { rxeMain } from '../../lib/cli/rxe';
import { insideVm } from '../../lib/harness/device-host';
import { deviceName } from '../support/fixture';

const netdev = 'lo';

const names = (): string[] => listRdmaLinks().map((link) => link.name);
const refused = (code: string, verb: string, message = /./) => (error: unknown) => {
  assert.ok(error instanceof RdmaError, String(error));
  assert.deepEqual([error.code, error.verb], [code, verb]);
  assert.match(error.message, message);
  return true;
};

/** Runs `body` with nothing on lo, and leaves nothing there whatever it does. */
function onFreeNetdev(body: () => void): void {
  assert.ok(!listRdmaLinks().some((link) => link.netdev === netdev), `${netdev} has no RDMA device yet`);
  try {
    body();
  } finally {
    for (const link of listRdmaLinks().filter((l) => l.netdev === netdev)) deleteRxe(link.name);
  }
}

test('every device libibverbs sees is listed with its index, GUID and the netdev sysfs names', () => {
  const links = listRdmaLinks();
  for (const device of listDevices()) {
    const ports = links.filter((link) => link.name === device.name);
    assert.ok(ports.length > 0, `${device.name} is listed`);
    for (const port of ports) assert.deepEqual([port.index, port.nodeGuid], [device.index, device.guid]);
  }
  const port1 = links.find((link) => link.name === deviceName() && link.port === 1);
  const ndev = readFileSync(`/sys/class/infiniband/${deviceName()}/ports/1/gid_attrs/ndevs/0`, 'utf8').trim();
  assert.equal(port1?.netdev, ndev);
  assert.equal(port1?.stateName, 'ACTIVE');
  if (insideVm()) assert.deepEqual([port1?.name, port1?.netdev, port1?.protocol], ['rxe0', 'eth0', 'roce']);
});

test('rxe list prints what rdma link show prints', (t) => {
  const log = t.mock.method(console, 'log', () => undefined);
  assert.equal(rxeMain(['list']), 0);
  // iproute2 ends each line with a space.
  const theirs = execFileSync('rdma', ['link', 'show'], { encoding: 'utf8' }).trimEnd().split('\n').map((line) => line.trimEnd());
  assert.deepEqual(log.mock.calls.map((call) => call.arguments[0]), theirs);
});

test('an added device is listed, opens, and is gone once deleted', () => {
  onFreeNetdev(() => {
    const before = names();
    const name = addRxe(netdev);
    assert.match(name, /^rxe\d+$/);
    assert.ok(!before.includes(name), `${name} was free`);
    const link = listRdmaLinks().find((l) => l.name === name);
    assert.deepEqual([link?.port, link?.netdev], [1, netdev]);
    assert.equal(listDevices().find((d) => d.name === name)?.index, link?.index);
    {
      // rxe cannot disassociate a context: the device is deleted only once this is closed.
      using context = openDevice(name);
      assert.equal(context.queryPort(1).physState, link?.physicalState);
      // Deleting it here would wait for this very process: refused instead of hanging.
      assert.throws(() => deleteRxe(name), refused('EBUSY', 'rdma link del', new RegExp(`this process has ${name} open`)));
    }
    // A netdev takes one rxe device (rxe_newlink: "already configured").
    assert.throws(() => addRxe(netdev, { name: `${name}x` }), refused('EEXIST', 'RDMA_NLDEV_CMD_NEWLINK'));
    deleteRxe(name);
    assert.ok(!names().includes(name));
    assert.ok(!listDevices().some((d) => d.name === name));
  });
});

test('a name in use is ENFILE from the kernel, and nothing is added', () => {
  onFreeNetdev(() => {
    // ib_register_device refuses a taken name with ENFILE.
    assert.throws(() => addRxe(netdev, { name: deviceName() }), refused('ENFILE', 'RDMA_NLDEV_CMD_NEWLINK', /an RDMA device named \S+ exists/));
    assert.ok(!listRdmaLinks().some((link) => link.netdev === netdev));
  });
});

test('an unknown netdev or device name, or a name template, is refused', () => {
  onFreeNetdev(() => {
    assert.throws(() => addRxe('nosuch0', { name: 'rxe_nosuch' }), refused('ENODEV', 'RDMA_NLDEV_CMD_NEWLINK'));
    // '%' makes a name the kernel's own template ("rxe%d"), which netlink may not ask for.
    assert.throws(() => addRxe(netdev, { name: 'rxe%d' }), refused('EINVAL', 'RDMA_NLDEV_CMD_NEWLINK'));
    assert.throws(() => deleteRxe('rxe_nosuch'), refused('ENODEV', 'RDMA_NLDEV_CMD_DELLINK', /no RDMA device named rxe_nosuch/));
    assert.ok(!names().includes('rxe_nosuch'));
  });
});

// In this process: a node started in the VM takes 10-20 s to load the CLI (the unit tests run it).
test('rxe add and rxe del on the command line', (t) => {
  onFreeNetdev(() => {
    const log = t.mock.method(console, 'log', () => undefined);
    assert.equal(rxeMain(['add', netdev, '--name', 'rxe_cli']), 0);
    assert.deepEqual(log.mock.calls.map((call) => call.arguments[0]), [`link rxe_cli/1 state ACTIVE physical_state LINK_UP netdev ${netdev}`]);
    assert.equal(rxeMain(['del', 'rxe_cli']), 0);
    assert.ok(!names().includes('rxe_cli'));
  });
});

test("QP1's state is what rdma res shows: RTS on a working port; an unknown device is ENODEV, a port it lacks EINVAL", () => {
  const device = deviceName();
  const shown = JSON.parse(execFileSync('rdma', ['-j', 'resource', 'show', 'qp', 'link', `${device}/1`, 'lqpn', '1'], { encoding: 'utf8' })) as { type: string; state: string }[];
  assert.deepEqual(shown.map((row) => [row.type, row.state]), [['GSI', 'RTS']]);
  assert.equal(gsiQpState(device), QpState.RTS);
  assert.throws(() => gsiQpState('no_such_device'), refused('ENODEV', 'RDMA_NLDEV_CMD_RES_QP_GET'));
  assert.throws(() => gsiQpState(device, 2), refused('EINVAL', 'RDMA_NLDEV_CMD_RES_QP_GET', /QP1 of/));
  assert.throws(() => gsiQpState(device, 0), RangeError);
  assert.throws(() => gsiQpState(7 as unknown as string), TypeError);
});
