/**
 * A rank of the load test, under `rdma-node run -np 8` (a power of two): `node load-rank.js HOST PORT
 * CONNECTIONS MESSAGES ENDPOINTS`. It makes CONNECTIONS RC QPs: QP j goes to QP j of rank
 * `rank XOR (1 + j mod (size - 1))`, so every rank talks to every other over several connections. At
 * once: MESSAGES verified SENDs each way on every connection, ENDPOINTS endpoints doing echo round trips
 * with the test process (which echoes on HOST:PORT), and collectives (allreduce and allgather, every
 * element checked) for as long as any rank's RC traffic runs. Prints one JSON line: its counts and every
 * failure (wrong bytes, failed completions, and completions missing after a minute of silence, each
 * naming its connection and message).
 */
import { communicator, connect, joinJob, openDevice, type Endpoint } from '../../lib';
import { RcTraffic, Stream, echoRounds } from '../../lib/tools/soak/traffic';

const [host, port, connections, messages, endpointCount] = process.argv.slice(2);
const STALL_MS = 60_000;
const WINDOW = 8;

async function main(): Promise<void> {
  const job = await joinJob();
  const { rank, size } = job;
  if ((size & (size - 1)) !== 0 || size < 2) throw new Error(`the load test pairs ranks by XOR: ${size} ranks is not a power of two`);
  const context = openDevice(process.env.RDMA_NODE_DEVICE);
  const pd = context.allocPd();
  const n = Number(connections);
  const cq = context.createCq(n * 2 * WINDOW + 16, { channel: true });
  const qps = Array.from({ length: n }, () => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: WINDOW, maxRecvWr: WINDOW }));
  const partner = (j: number): number => rank ^ (1 + (j % (size - 1)));
  const tables = (await job.allgather(Buffer.from(JSON.stringify(qps.map((qp) => qp.address()))))).map((b) => JSON.parse(b.toString()));
  const links = qps.map((qp, j) => {
    const theirs = tables[partner(j)][j];
    qp.connect(theirs, { rnrRetry: 7 });
    return { qp, name: `rank ${rank} connection ${j} (qp ${qp.qpNum} → rank ${partner(j)} qp ${theirs.qpNum})`, sendSeed: qp.qpNum, recvSeed: theirs.qpNum };
  });
  const traffic = new RcTraffic(pd, cq, links, { messages: Number(messages), window: WINDOW, maxSize: 4096, stallMs: STALL_MS });
  traffic.postReceives();
  const comm = await communicator(job);
  const endpoints: Endpoint[] = await Promise.all(Array.from({ length: Number(endpointCount) }, () => connect(host!, Number(port), { receiveDepth: 4, maxMessageSize: 4096, sendDepth: 8 })));
  await job.barrier(); // every rank's receives are posted

  const failures: string[] = [];
  let rcDone = false;
  const rc = traffic.run().finally(() => (rcDone = true));

  const endpointBytes = Promise.all(endpoints.map((endpoint, e) =>
    echoRounds(endpoint, new Stream(rank * 64 + e, 4096), 0, 32, `rank ${rank} endpoint ${e}`, STALL_MS).catch((error: Error) => {
      failures.push(error.message);
      return 0;
    })));

  // Collectives until every rank's RC traffic is over (agreed through an allreduce of "done" flags).
  const collectives = { iterations: 0, checked: 0 };
  const running = (async () => {
    for (let it = 0; ; it++) {
      const data = Int32Array.from({ length: 1024 }, (_, k) => rank * 1000 + k + it);
      const sum = await comm.allreduce(data, undefined, 'sum', { timeoutMs: STALL_MS });
      const base = (1000 * size * (size - 1)) / 2;
      for (let k = 0; k < sum.length; k++) if (sum[k] !== base + size * (k + it)) failures.push(`rank ${rank}: allreduce ${it} element ${k} is ${sum[k]}, not ${base + size * (k + it)}`);
      const mine = Buffer.alloc(256, (rank * 31 + it) & 0xff);
      const all = await comm.allgather(mine, undefined, { timeoutMs: STALL_MS });
      for (let r = 0; r < size; r++) if (!all.subarray(r * 256, (r + 1) * 256).every((b: number) => b === ((r * 31 + it) & 0xff))) failures.push(`rank ${rank}: allgather ${it} block of rank ${r} altered`);
      collectives.checked += 2;
      collectives.iterations++;
      const done = await comm.allreduce(Int32Array.of(rcDone && it >= 2 ? 1 : 0), undefined, 'sum', { timeoutMs: STALL_MS });
      if (done[0] === size) return;
    }
  })().catch((error: Error) => void failures.push(`rank ${rank}: collective: ${error.message}`));

  const result = await rc;
  const bytes = await endpointBytes;
  await running;
  traffic.close();
  console.log(JSON.stringify({
    rank,
    rc: { sent: result.sent, received: result.received, bytes: result.bytes },
    endpoints: { roundTrips: bytes.filter((b) => b > 0).length * 32, bytes: bytes.reduce((a, b) => a + b, 0) },
    collectives,
    failures: [...result.failures, ...failures],
  }));
  await job.barrier(); // nobody leaves while a peer still needs it
  comm.close();
  await Promise.all(endpoints.map((endpoint) => endpoint.close()));
  context.close();
  job.close();
}

main().catch((error: Error) => {
  console.log(JSON.stringify({ failures: [`load rank: ${error.stack ?? error.message}`] }));
  process.exitCode = 1;
});
