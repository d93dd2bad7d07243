/**
 * A soak peer: `node peer.js DEVICE PORT CONNECTIONS MESSAGES WINDOW MAX_SIZE`, started (and SIGKILLed
 * at any moment) by soak.ts. It listens for endpoints on PORT (each gets a remotely readable and
 * writable region, whose descriptor is its first message, then every message is echoed), makes
 * CONNECTIONS RC QPs, prints one JSON line `{"hello": {"pid", "addresses"}}`, reads the soak's addresses
 * as one JSON line from stdin, connects, and runs rounds of verified RC traffic (soak's QP n sends
 * stream `its qpNum`, ours stream `our qpNum`) for ever: each round posts all its receives (WINDOW is
 * MESSAGES), says `{"posted": round}`, waits for the soak's same line on stdin, sends, and prints
 * `{"round": {...}}` at its end.
 */
import { createInterface } from 'node:readline';

import { listen } from '../../endpoint/endpoint';
import { openDevice } from '../../verbs/device';
import type { QpAddress } from '../../verbs/qp/qp';
import { RcTraffic, echo } from './traffic';

const [device, port, connections, messages, window, maxSize] = process.argv.slice(2);
const HOST = process.env.RDMA_NODE_SOAK_HOST ?? '10.0.2.15';
const REGION_BYTES = 64 << 10;

async function main(): Promise<void> {
  const context = openDevice(device);
  const pd = context.allocPd();
  const w = Number(window);
  const cq = context.createCq(Number(connections) * 2 * w + 16, { channel: true });
  const qps = Array.from({ length: Number(connections) }, () => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: w, maxRecvWr: w }));

  const listener = await listen(HOST, Number(port), { receiveDepth: 4, maxMessageSize: 4096, sendDepth: 8 });
  const regions = []; // held for as long as the peer lives: a collected region would be deregistered
  void (async () => {
    for await (const endpoint of listener) {
      const region = endpoint.registerMemory(Buffer.alloc(REGION_BYTES));
      regions.push(region);
      const { addr, rkey, length } = region.remote();
      await endpoint.send(Buffer.from(JSON.stringify({ addr: String(addr), rkey, length })));
      void echo(endpoint);
    }
  })();

  console.log(JSON.stringify({ hello: { pid: process.pid, addresses: qps.map((qp) => qp.address()) } }));
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const theirs = JSON.parse((await lines.next()).value as string) as QpAddress[];
  qps.forEach((qp, n) => qp.connect(theirs[n]!, { rnrRetry: 7 }));
  const links = qps.map((qp, n) => ({ qp, name: `peer ${process.pid} qp ${qp.qpNum} ← soak qp ${theirs[n]!.qpNum}`, sendSeed: qp.qpNum, recvSeed: theirs[n]!.qpNum }));
  for (let round = 0; ; round++) {
    // Every receive of the round is posted before either side sends (no sender waits at RNR).
    const traffic = new RcTraffic(pd, cq, links, { messages: Number(messages), window: w, maxSize: Number(maxSize), first: round * Number(messages) });
    traffic.postReceives();
    console.log(JSON.stringify({ posted: round }));
    const next = await lines.next();
    if (next.done || (JSON.parse(next.value) as { posted: number }).posted !== round) throw new Error(`the soak did not post round ${round}: ${next.value}`);
    const result = await traffic.run();
    traffic.close();
    console.log(JSON.stringify({ round: { round, sent: result.sent, received: result.received, bytes: result.bytes, failures: result.failures } }));
    if (result.failures.length > 0) process.exit(1);
  }
}

main().catch((error: Error) => {
  console.log(JSON.stringify({ round: { failures: [`peer ${process.pid}: ${error.stack ?? error.message}`] } }));
  process.exit(1);
});
