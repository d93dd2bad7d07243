/**
 * Removing a device while it is in use (`rdma link del`), on rxe in the VM. rxe cannot revoke a user
 * context (it has no disassociate_ucontext), so the kernel's removal waits for every process holding one
 * and raises no DEVICE_FATAL: measured here, and what the first test pins down. The connection manager
 * does tell its users (DEVICE_REMOVAL): endpoints reject what is pending with ENODEV, and once they are
 * closed the binding makes librdmacm drop its own context on the device, so the removal completes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RdmaError, addRxe, connect, listDevices, listRdmaLinks, listen, openDevice, type Context } from '../../lib';
import { kernelObjects } from '../support/fixture';
import { ours, start, type Running } from '../support/processes';
import { removeRxe, rxeReady } from '../support/rxe';

const HOST = '10.0.2.15';
const removing = (name: string): Running => start(ours('rxe', 'del', name), 60_000);
const listed = (name: string): boolean => listDevices().some((device) => device.name === name);

/** rxe0 on eth0 with its RoCE GIDs, as the other tests need it; nothing left on lo. */
async function restore(): Promise<void> {
  if (!listed('rxe0')) addRxe('eth0', { name: 'rxe0' });
  for (const link of listRdmaLinks().filter((l) => l.netdev === 'lo')) await removeRxe(link.name);
  await rxeReady('rxe0', HOST);
}

test('a device removed under an open context: the removal waits for close(), everything made on it keeps working until then', { timeout: 120_000 }, async (t) => {
  const name = addRxe('lo', { name: 'rxe_gone' });
  let context: Context | undefined = openDevice(name);
  try {
    const pd = context.allocPd();
    const cq = context.createCq(16);
    const qp = pd.createQp({ sendCq: cq, recvCq: cq });
    const mr = pd.registerMemory(Buffer.alloc(4096));
    const removal = removing(name);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await Promise.race([removal.done.then(() => 'done'), 'waiting']), 'waiting', 'the kernel waits for this process');
    // The verbs objects stay usable: rxe revokes nothing.
    assert.ok(context.queryPort(1).state > 0);
    assert.equal(qp.state, 0);
    assert.equal(cq.poll().count, 0);
    assert.equal(mr.length, 4096);
    context.allocPd().registerMemory(Buffer.alloc(64)).close();
    context.close();
    context = undefined;
    const closed = Date.now();
    const run = await removal.done;
    t.diagnostic(`removed ${Date.now() - closed} ms after close()`);
    assert.equal(run.status, 0, run.output);
    assert.equal(listed(name), false);
    assert.throws(() => openDevice(name), (error: RdmaError) => error instanceof RdmaError && error.code === 'ENODEV');
    assert.deepEqual(kernelObjects(), { pd: 0, cq: 0, qp: 0, mr: 0 }, 'nothing of this process is left in the kernel');
  } finally {
    context?.close();
    const restoring = Date.now();
    await restore();
    t.diagnostic(`restored in ${Date.now() - restoring} ms`);
  }
});

test('DEVICE_REMOVAL under connected endpoints: pending operations reject with ENODEV, close() lets the removal finish, and the re-added device serves new connections', { timeout: 120_000 }, async (t) => {
  // librdmacm drops a removed device's context only while another device exists (it gives up on an empty
  // list): one on lo keeps the list non-empty.
  addRxe('lo', { name: 'rxe_lo' });
  try {
    const listener = await listen(HOST, 7590);
    const [client, server] = await Promise.all([connect(HOST, 7590), listener.accept()]);
    const started = Date.now();
    const pending = [server.receive(), client.receive()];
    const removal = removing('rxe0');
    t.diagnostic('removing rxe0');
    for (const operation of pending) await assert.rejects(operation, (error: RdmaError) => error.code === 'ENODEV');
    assert.ok(Date.now() - started < 30_000, 'told in bounded time');
    await assert.rejects(client.send(Buffer.from('after')), (error: RdmaError) => error instanceof RdmaError);
    t.diagnostic(`rejected after ${Date.now() - started} ms`);
    await Promise.all([client.close(), server.close()]);
    listener.close();
    t.diagnostic('closed');
    const run = await removal.done;
    t.diagnostic(`removed after ${Date.now() - started} ms`);
    assert.equal(run.status, 0, run.output);
    assert.equal(listed('rxe0'), false);
  } finally {
    await restore();
  }
  const listener = await listen(HOST, 7591);
  const [client, server] = await Promise.all([connect(HOST, 7591), listener.accept()]);
  await client.send(Buffer.from('again'));
  assert.equal((await server.receive()).toString(), 'again');
  await Promise.all([client.close(), server.close()]);
  listener.close();
});
