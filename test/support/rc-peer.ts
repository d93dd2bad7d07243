/**
 * A raw RC peer for fault tests: `node rc-peer.js DEVICE`. Prints its QP address and a remotely writable
 * region as one JSON line, reads the other side's address as one JSON line from stdin, connects, and
 * waits to be killed.
 */
import { createInterface } from 'node:readline';

import { openDevice } from '../../lib';
import { remoteAccess } from './fixture';

const context = openDevice(process.argv[2]!);
const pd = context.allocPd();
const cq = context.createCq(16);
const qp = pd.createQp({ sendCq: cq, recvCq: cq });
const region = pd.registerMemory(Buffer.alloc(1 << 20), remoteAccess);
const { addr, rkey, length } = region.remote();
console.log(JSON.stringify({ address: qp.address(), region: { addr: String(addr), rkey, length } }));
createInterface({ input: process.stdin }).once('line', (line) => {
  qp.connect(JSON.parse(line));
  console.log('connected');
  setInterval(() => cq.poll(), 1000);
});
