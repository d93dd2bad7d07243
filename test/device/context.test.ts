import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';

import {
  AsyncEventType, AtomicCap, GidType, LinkLayer, PortState, RdmaError, listDevices, openDevice, type AsyncEvent,
} from '../../lib';
import { native } from '../../lib/native';
import { deviceName, open } from '../support/fixture';

test('listDevices names the device with its GUID and types', () => {
  const device = listDevices().find((d) => d.name === deviceName());
  assert.ok(device, 'the test device is listed');
  assert.match(device.guid, /^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/);
  assert.equal(device.nodeTypeName, 'CA');
  assert.ok(['IB', 'IWARP'].includes(device.transportTypeName));
});

test('queryDevice reports limits, atomic and ODP caps', () => {
  using context = open();
  const attr = context.queryDevice();
  assert.ok(attr.physPortCnt >= 1);
  assert.ok(attr.maxQp > 0 && attr.maxCqe > 0 && attr.maxMr > 0 && attr.maxSge > 0);
  assert.equal(typeof attr.maxMrSize, 'bigint');
  assert.ok(attr.nodeGuid > 0n);
  assert.ok(Object.values(AtomicCap).includes(attr.atomicCap));
  assert.equal(typeof attr.odpCaps.generalCaps, 'bigint');
  assert.equal(typeof attr.odpCaps.rcOdpCaps, 'number');
});

test('queryPort reports an active port with its MTU and link layer', () => {
  using context = open();
  const port = context.queryPort(1);
  assert.equal(port.state, PortState.ACTIVE);
  assert.ok(port.activeMtu >= 1 && port.activeMtu <= 5);
  assert.ok([LinkLayer.INFINIBAND, LinkLayer.ETHERNET].includes(port.linkLayer));
  assert.ok(port.gidTblLen > 0);
  assert.throws(() => context.queryPort(99), (e: RdmaError) => e instanceof RdmaError && e.verb === 'ibv_query_port' && e.code === 'EINVAL');
});

test('the GID table has typed entries; RoCE has an IPv4-mapped RoCE v2 GID', () => {
  using context = open();
  const table = context.gidTable();
  assert.ok(table.length > 0);
  for (const entry of table) {
    assert.match(entry.gid, /^[0-9a-f]{4}(:[0-9a-f]{4}){7}$/);
    assert.equal(entry.raw.length, 16);
  }
  if (context.queryPort(1).linkLayer === LinkLayer.ETHERNET) {
    const v2 = table.find((e) => e.type === GidType.ROCE_V2 && e.ipv4 !== undefined);
    assert.ok(v2, 'a RoCE v2 IPv4-mapped GID');
    assert.equal(v2.typeName, 'RoCE v2');
    assert.equal(context.defaultGidIndex(1), v2.index);
  }
});

test('opening an unknown device is ENODEV; close is idempotent; use after close is a TypeError', () => {
  assert.throws(() => openDevice('no-such-device'), (e: RdmaError) => e.code === 'ENODEV' && e.verb === 'ibv_open_device');
  const context = open();
  context.close();
  context.close();
  assert.equal(context.closed, true);
  assert.throws(() => context.queryDevice(), TypeError);
  assert.throws(() => context.allocPd(), /closed/);
});

test('closing a context closes everything made from it, children first', () => {
  const context = open();
  const pd = context.allocPd();
  const cq = context.createCq(8, { channel: true });
  const qp = pd.createQp({ sendCq: cq });
  const mr = pd.registerMemory(Buffer.alloc(64));
  context.close();
  assert.deepEqual([pd.closed, cq.closed, qp.closed, mr.closed, cq.channel!.closed], [true, true, true, true, true]);
  qp.close();
  assert.throws(() => mr.lkey, TypeError);
});

test('a close whose destroy fails throws RdmaError naming it and leaves the object closed, not half open', () => {
  const context = open();
  const pd = context.allocPd();
  const mr = pd.registerMemory(Buffer.alloc(64));
  // Memory registered behind the binding's back: ibv_dealloc_pd refuses while it exists.
  native.testing.registerUntracked(pd.handle, new ArrayBuffer(4096), 0, 4096);
  assert.throws(() => pd.close(), (error: unknown) => error instanceof RdmaError && error.code === 'EBUSY' && /destroy protection domain/.test(error.verb));
  assert.deepEqual([pd.closed, mr.closed], [true, true]);
  assert.throws(() => pd.registerMemory(Buffer.alloc(64)), TypeError);
  pd.close(); // idempotent: nothing is tried again
  context.close();
  assert.equal(context.closed, true);
});

// The port goes down and up when its netdev does: a real asynchronous event, acknowledged by the addon.
test('asynchronous events: port error and port active when the link goes down and up', { skip: netdevOf() === undefined && 'no netdev to toggle (not RoCE)' }, async () => {
  using context = open();
  const netdev = netdevOf()!;
  const events: AsyncEvent[] = [];
  context.on('event', (e: AsyncEvent) => events.push(e));
  try {
    execFileSync('ip', ['link', 'set', netdev, 'down']);
    while (!events.some((e) => e.type === AsyncEventType.PORT_ERR)) await once(context, 'event');
  } finally {
    execFileSync('ip', ['link', 'set', netdev, 'up']);
  }
  while (!events.some((e) => e.type === AsyncEventType.PORT_ACTIVE)) await once(context, 'event');
  const error = events.find((e) => e.type === AsyncEventType.PORT_ERR)!;
  assert.equal(error.typeName, 'PORT_ERR');
  assert.equal(error.portNum, 1);
  assert.match(error.name, /port error/i);
  // The next tests need the port and its RoCE GIDs back.
  const ready = () => context.queryPort(1).state === PortState.ACTIVE && context.gidTable().some((e) => e.ipv4 !== undefined);
  while (!ready()) await new Promise((r) => setTimeout(r, 100));
});

function netdevOf(): string | undefined {
  try {
    const links = JSON.parse(execFileSync('rdma', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; netdev?: string }[];
    return links.find((l) => l.ifname.startsWith(deviceName()))?.netdev;
  } catch {
    return undefined;
  }
}
