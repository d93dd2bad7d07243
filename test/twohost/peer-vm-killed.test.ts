import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect, listen, type RdmaError } from '../../lib';
import { killPeerVm } from '../../lib/harness/vm/pair';
import { connectRetrying, role, side } from './sides';

// Host 1's qemu SIGKILLed under a connection (the harness kills it when host 0 asks): no disconnect, no
// more packets. rxe on host 0 retries its requests for ever, so the endpoint's keepalive must end the
// connection and reject what is pending, within three periods; host 0's device then serves new connections.
// This file runs in a pair of its own (test-runner.ts): host 1 does not come back.

const PORT = 18841;
const keepaliveMs = 1000;
const CLIENT_RECEIVES = 4;

async function server(): Promise<void> {
  {
    using listener = await listen(role.address, PORT, { keepaliveMs });
    await using endpoint = await listener.accept();
    assert.equal((await endpoint.receive({ timeoutMs: 60_000 })).toString(), 'hello');
    // Host 1 takes no message: once its CLIENT_RECEIVES are used, a send waits for a credit.
    for (let i = 0; i < CLIENT_RECEIVES; i++) await endpoint.send(Buffer.from(`queued ${i}`));
    const sending = endpoint.send(Buffer.from('waits for a credit'));
    const receiving = endpoint.receive();
    killPeerVm();
    const started = Date.now();
    const [received, sent] = await Promise.allSettled([receiving, sending]);
    const ms = Date.now() - started;
    for (const outcome of [received, sent]) {
      assert.equal(outcome.status, 'rejected');
      const error = (outcome as PromiseRejectedResult).reason as RdmaError;
      assert.deepEqual([error.code, error.verb], ['ETIMEDOUT', 'keepalive'], error.message);
    }
    assert.ok(ms < 10 * keepaliveMs, `noticed in ${ms} ms`);
    assert.ok(endpoint.closed);
  }
  // The device carries on: a new connection to itself over the same rxe device.
  using listener = await listen(role.address, PORT + 1);
  const accepting = listener.accept();
  await using client = await connect(role.address, PORT + 1);
  await using accepted = await accepting;
  await client.send(Buffer.from('still here'));
  assert.equal((await accepted.receive({ timeoutMs: 30_000 })).toString(), 'still here');
}

async function client(): Promise<void> {
  const endpoint = await connectRetrying(PORT, { timeoutMs: 10_000, keepaliveMs, receiveDepth: CLIENT_RECEIVES });
  await endpoint.send(Buffer.from('hello'));
  // Host 0 has this VM killed now; reaching the end of this wait means it never asked.
  await new Promise((r) => setTimeout(r, 120_000));
  assert.fail('host 0 never had this VM killed');
}

test('the peer host vanishes (its qemu SIGKILLed): keepalive rejects pending work in bounded time; the device serves new connections', { timeout: 180_000 }, () => side(server, client));
