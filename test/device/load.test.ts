import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { connect, listen, type Endpoint } from '../../lib';
import { RcTraffic, echo } from '../../lib/tools/soak/traffic';
import { pair } from '../support/fixture';
import { runJob } from '../support/jobs';

// Load: many connections at once, every byte checked. A completion that rxe dropped shows up as a
// failure naming the connection and the message it belongs to, once the CQ has been silent for a bound
// (a minute here), never as a hang, and nothing is retried to cover it.
const HOST = '10.0.2.15';
const loadRank = join(__dirname, '..', 'support', 'load-rank.js');

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

interface RankOutcome {
  rank: number;
  rc: { sent: number; received: number; bytes: number };
  endpoints: { roundTrips: number; bytes: number };
  collectives: { iterations: number; checked: number };
  failures: string[];
}

test('8 processes × 64 RC connections (each to another rank), with endpoint and collective traffic at once: every byte verified, no completion lost', async (t) => {
  const [ranks, connections, messages, endpoints] = [8, 64, 16, 2];
  const listener = await listen(HOST, 22_002, { receiveDepth: 8, maxMessageSize: 4096 });
  const servers: Endpoint[] = [];
  void (async () => {
    for await (const endpoint of listener) {
      servers.push(endpoint);
      void echo(endpoint);
    }
  })();
  const { status, lines, stderr } = await runJob(['-np', String(ranks), loadRank, HOST, '22002', String(connections), String(messages), String(endpoints)]);
  listener.close();
  await Promise.all(servers.map((server) => server.close()));
  const outcomes = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as RankOutcome).sort((a, b) => a.rank - b.rank);
  const failures = outcomes.flatMap((o) => o.failures);
  assert.deepEqual(failures, [], `wrong or lost under load:\n${failures.join('\n')}\n${stderr.slice(-2000)}`);
  assert.equal(status, 0, stderr.slice(-3000));
  assert.deepEqual(outcomes.map((o) => o.rank), [...Array(ranks).keys()]);
  for (const o of outcomes) {
    assert.deepEqual([o.rc.sent, o.rc.received], [connections * messages, connections * messages], `rank ${o.rank}: every message sent and received intact`);
    assert.equal(o.endpoints.roundTrips, endpoints * 32, `rank ${o.rank}: every endpoint echo checked`);
    assert.ok(o.collectives.iterations >= 3, `rank ${o.rank}: collectives ran alongside (${o.collectives.iterations})`);
  }
  const sum = (f: (o: RankOutcome) => number): number => outcomes.reduce((n, o) => n + f(o), 0);
  t.diagnostic(`${sum((o) => o.rc.received)} RC messages (${(sum((o) => o.rc.bytes) / 2 ** 20).toFixed(1)} MiB) over ${ranks * connections} QPs, ${sum((o) => o.endpoints.roundTrips)} endpoint echoes and ${sum((o) => o.collectives.checked)} collectives, every byte checked`);
});

test('a completion that never comes is reported with its connection and messages once the CQ is silent, not waited for', async () => {
  // A real silent QP: the other side never posts a receive and retries RNR for ever, so none of these
  // sends completes and nothing arrives: what a dropped completion looks like from here.
  using resources = pair(); // connected with rnrRetry 7 (the default): RNR retried for ever
  const { pd, cqs, qps } = resources.pair;
  const traffic = new RcTraffic(pd, cqs[0], [{ qp: qps[0], name: 'connection 5', sendSeed: 1, recvSeed: 2 }], { messages: 3, window: 4, stallMs: 3000 });
  const result = await traffic.run();
  traffic.close();
  assert.equal(result.sent + result.received, 0);
  assert.deepEqual(result.failures, [
    'lost completion while traffic was under way (no completion for 3 s): connection 5: sends of messages 0, 1, 2 posted, never completed; messages 0..2 never received',
  ]);
});
