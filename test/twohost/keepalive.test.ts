import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { PortState, RdmaError, connect, listRdmaLinks, listen, openDevice, type Endpoint } from '../../lib';
import { CONNECT_DEADLINE_MS, role, side } from './sides';

// The link between the VMs taken down under a connection (host 1 sets its rxe1's netdev down): rxe on the
// far side retries for ever without failing the request (no RETRY_EXC_ERR, measured), so only the
// endpoints' keepalive tells the server, within three periods; once the link is back, new connections work.

const PORT = 18831;
const keepaliveMs = 1000;
const device = process.env.RDMA_NODE_DEVICE!;

/** Waits for the next message, which must not come: the connection ends instead. */
async function ended(endpoint: Endpoint): Promise<{ error: RdmaError; ms: number }> {
  const started = Date.now();
  const error = await endpoint.receive().then(() => assert.fail('a message arrived over a dead link'), (e: RdmaError) => e);
  return { error, ms: Date.now() - started };
}

async function server(): Promise<void> {
  {
    using listener = await listen(role.address, PORT, { keepaliveMs });
    await using endpoint = await listener.accept();
    assert.equal((await endpoint.receive({ timeoutMs: 60_000 })).toString(), 'before');
    const { error, ms } = await ended(endpoint);
    assert.deepEqual([error.code, error.verb], ['ETIMEDOUT', 'keepalive'], error.message);
    assert.ok(ms < 10 * keepaliveMs, `noticed in ${ms} ms`);
  }
  using listener = await listen(role.address, PORT + 1, { keepaliveMs });
  await using endpoint = await listener.accept();
  assert.equal((await endpoint.receive({ timeoutMs: 60_000 })).toString(), 'after');
  await endpoint.send(Buffer.from('back'));
  await new Promise<void>((resolve) => (endpoint.closed ? resolve() : endpoint.once('close', () => resolve())));
}

async function connectRetrying(port: number): Promise<Endpoint> {
  const deadline = Date.now() + CONNECT_DEADLINE_MS;
  for (;;) {
    try {
      return await connect(role.peer, port, { timeoutMs: 10_000, keepaliveMs });
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`cannot connect to ${role.peer}:${port}: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function client(): Promise<void> {
  const netdev = listRdmaLinks().find((link) => link.name === device)!.netdev!;
  {
    await using endpoint = await connectRetrying(PORT);
    await endpoint.send(Buffer.from('before'));
    execFileSync('ip', ['link', 'set', netdev, 'down']);
    try {
      const { error, ms } = await ended(endpoint);
      // rxe moves the QP to the error state when its netdev goes down: the next probe is flushed (measured).
      // Elsewhere the probe would go unacknowledged: a keepalive timeout.
      assert.ok(['ECONNRESET', 'ETIMEDOUT'].includes(error.code), error.message);
      assert.ok(ms < 10 * keepaliveMs, `noticed in ${ms} ms`);
    } finally {
      execFileSync('ip', ['link', 'set', netdev, 'up']);
    }
  }
  using context = openDevice(device);
  const deadline = Date.now() + 30_000;
  while (context.queryPort(1).state !== PortState.ACTIVE || !context.gidTable().some((entry) => entry.ipv4 === role.address)) {
    if (Date.now() > deadline) throw new Error(`${device} did not come back`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await using endpoint = await connectRetrying(PORT + 1);
  await endpoint.send(Buffer.from('after'));
  assert.equal((await endpoint.receive({ timeoutMs: 60_000 })).toString(), 'back');
}

test('the link between the hosts goes down under a connection: keepalive ends it on both sides in bounded time; new connections work once it is back', { timeout: 180_000 }, () => side(server, client));
