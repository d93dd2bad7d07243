import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';

import { connect, listen, type Endpoint } from '../../lib';
import { start } from '../support/processes';

// Load: many connections at once, every byte checked. A completion that rxe dropped would show up as a
// receive that times out (reported with the connection and message it belongs to), never as a hang.
const HOST = '10.0.2.15';
const peerScript = resolve(__dirname, '..', 'support', 'peer.js');

async function echo(endpoint: Endpoint): Promise<void> {
  try {
    for await (const message of endpoint) await endpoint.send(message);
  } catch {
    // the peer closed: nothing left to echo
  }
}

test('64 RC connections in one process, all traffic verified', async () => {
  const listener = await listen(HOST, 22_001, { receiveDepth: 8, maxMessageSize: 4096 });
  const servers: Endpoint[] = [];
  const accepting = (async () => {
    for (let i = 0; i < 64; i++) {
      const endpoint = await listener.accept();
      servers.push(endpoint);
      void echo(endpoint);
    }
  })();
  const clients = await Promise.all(Array.from({ length: 64 }, () => connect(HOST, 22_001, { receiveDepth: 8, maxMessageSize: 4096 })));
  await accepting;
  const failures: string[] = [];
  await Promise.all(clients.map(async (client, c) => {
    for (let i = 0; i < 10; i++) {
      const message = Buffer.alloc(100 + c * 30 + i, (c * 7 + i) % 256);
      await client.send(message);
      try {
        const echoed = await client.receive({ timeoutMs: 60_000 });
        if (!echoed.equals(message)) failures.push(`connection ${c} message ${i}: altered`);
      } catch (error) {
        failures.push(`connection ${c} message ${i}: ${(error as Error).message}`);
        return;
      }
    }
  }));
  assert.deepEqual(failures, [], `lost or altered under 64 concurrent connections:\n${failures.join('\n')}`);
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(servers.map((server) => server.close()));
  listener.close();
});

test('8 processes at once, 8 connections each, all traffic verified', async () => {
  const listener = await listen(HOST, 22_002, { receiveDepth: 8, maxMessageSize: 4096 });
  const servers: Endpoint[] = [];
  let accepted = 0;
  void (async () => {
    for await (const endpoint of listener) {
      accepted++;
      servers.push(endpoint);
      void echo(endpoint);
    }
  })();
  const peers = Array.from({ length: 8 }, () => start([process.execPath, peerScript, 'load', HOST, '22002', '10'], 300_000));
  const results = await Promise.all(peers.map((peer) => peer.done));
  results.forEach((result, i) => assert.equal(result.status, 0, `process ${i}: ${result.output}`));
  assert.equal(accepted, 64);
  listener.close();
  await Promise.all(servers.map((server) => server.close()));
});
