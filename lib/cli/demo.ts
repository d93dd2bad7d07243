/**
 * The main job (`npm start`): what RDMA devices there are, then a real exchange on one: an RC
 * ping-pong, an RDMA write/read integrity check and a short bandwidth run, printed for a person.
 */
import { randomBytes } from 'node:crypto';

import { Access, LinkLayer, PortState, WcStatus, WrOpcode, enumName, mtuBytes } from '../verbs/constants';
import type { Context } from '../verbs/context';
import { listDevices, openDevice } from '../verbs/device';
import { createLoopbackPair, type LoopbackPair } from '../endpoint/loopback';
import type { Completion } from '../verbs/completion';

function check(completions: Completion[], what: string): void {
  const failed = completions.find((c) => c.status !== WcStatus.SUCCESS);
  if (failed) throw new Error(`${what}: work request ${failed.wrId} completed with ${failed.statusName}`);
}

export function printDevices(): string[] {
  const devices = listDevices();
  if (devices.length === 0) console.log('No RDMA devices.');
  for (const info of devices) {
    console.log(`${info.name}  (${info.transportTypeName}, node ${info.nodeTypeName}, GUID ${info.guid})`);
    using context = openDevice(info.name);
    const device = context.queryDevice();
    for (let port = 1; port <= device.physPortCnt; port++) {
      const p = context.queryPort(port);
      console.log(
        `  port ${port}: ${enumName(PortState, p.state)}, MTU ${mtuBytes(p.activeMtu)} (max ${mtuBytes(p.maxMtu)}), ` +
          `link layer ${enumName(LinkLayer, p.linkLayer)}, LID ${p.lid}`,
      );
      for (const gid of context.gidTable().filter((g) => g.portNum === port)) {
        console.log(`    GID[${gid.index}] ${gid.gid}  ${gid.typeName}${gid.ipv4 ? `  ${gid.ipv4}` : ''}`);
      }
    }
  }
  return devices.map((d) => d.name);
}

async function pingPong(pair: LoopbackPair, iterations: number): Promise<void> {
  const { pd, cqs, qps } = pair;
  const size = 64;
  const mrs = [0, 1].map(() => pd.registerMemory(Buffer.alloc(2 * size), Access.LOCAL_WRITE));
  const recv = (side: 0 | 1): void => qps[side].postRecv({ wrId: 1, sgList: [{ mr: mrs[side]!, offset: size, length: size }] });
  recv(0);
  recv(1);
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    for (const [from, to] of [[0, 1], [1, 0]] as const) {
      new DataView(mrs[from]!.bytes.buffer, mrs[from]!.bytes.byteOffset).setUint32(0, i, true);
      qps[from].postSend({ wrId: 2, opcode: WrOpcode.SEND, sgList: [{ mr: mrs[from]!, length: size }] });
      const [first, second] = [await cqs[from].take(1, { timeoutMs: 10_000 }), await cqs[to].take(1, { timeoutMs: 10_000 })];
      check([...first, ...second], 'ping-pong');
      if (new DataView(mrs[to]!.bytes.buffer, mrs[to]!.bytes.byteOffset + size).getUint32(0, true) !== i) throw new Error(`ping-pong: message ${i} arrived corrupted`);
      recv(to);
    }
  }
  const micros = Number(process.hrtime.bigint() - started) / 1000 / iterations;
  console.log(`  RC ping-pong: ${iterations} round trips of ${size} B, ${micros.toFixed(1)} µs per round trip`);
  mrs.forEach((mr) => mr.close());
}

async function writeReadIntegrity(pair: LoopbackPair, size: number): Promise<void> {
  const { pd, cqs, qps } = pair;
  const remoteAccess = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;
  const source = pd.registerMemory(randomBytes(size), Access.LOCAL_WRITE);
  const target = pd.registerMemory(Buffer.alloc(size), remoteAccess);
  const readBack = pd.registerMemory(Buffer.alloc(size), Access.LOCAL_WRITE);
  qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
  check(await cqs[0].take(1, { timeoutMs: 60_000 }), 'RDMA write');
  const written = Buffer.compare(source.bytes, target.bytes) === 0;
  qps[1].postSend({ wrId: 2, opcode: WrOpcode.RDMA_READ, sgList: [{ mr: readBack }], remote: target.remote() });
  check(await cqs[1].take(1, { timeoutMs: 60_000 }), 'RDMA read');
  const read = Buffer.compare(source.bytes, readBack.bytes) === 0;
  console.log(`  RDMA write ${size >> 20} MiB of random data: ${written ? 'identical' : 'CORRUPTED'}; read back: ${read ? 'identical' : 'CORRUPTED'}`);
  [source, target, readBack].forEach((mr) => mr.close());
  if (!written || !read) throw new Error('RDMA write/read integrity check failed');
}

async function bandwidth(pair: LoopbackPair, size: number, seconds: number): Promise<void> {
  const { pd, cqs, qps } = pair;
  const depth = 16;
  const source = pd.registerMemory(Buffer.alloc(size), Access.LOCAL_WRITE);
  const target = pd.registerMemory(Buffer.alloc(size), Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  const write = { opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() };
  qps[0].postSend(Array.from({ length: depth }, () => write));
  let completed = 0;
  const started = process.hrtime.bigint();
  const until = started + BigInt(seconds * 1e9);
  while (process.hrtime.bigint() < until) {
    const batch = await cqs[0].wait({ timeoutMs: 30_000 });
    check(batch.toObjects(), 'bandwidth');
    completed += batch.count;
    qps[0].postSend(Array.from({ length: batch.count }, () => write));
  }
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  check(await cqs[0].take(depth, { timeoutMs: 30_000 }), 'bandwidth drain');
  console.log(`  RDMA write bandwidth, ${size >> 10} KiB messages, ${depth} in flight: ` +
    `${((completed * size) / elapsed / 1e6).toFixed(1)} MB/s, ${(completed / elapsed).toFixed(0)} msg/s`);
  [source, target].forEach((mr) => mr.close());
}

export async function runDemo(device?: string): Promise<void> {
  console.log('RDMA devices');
  const names = printDevices();
  const name = device ?? names[0];
  if (name === undefined) throw new Error('no RDMA device to run on');
  console.log(`\nRunning on ${name}`);
  const context: Context = openDevice(name);
  try {
    using pair = createLoopbackPair(context, { maxSendWr: 64, maxRecvWr: 64 });
    await pingPong(pair, 200);
    await writeReadIntegrity(pair, 4 << 20);
    await bandwidth(pair, 64 << 10, 2);
  } finally {
    context.close();
  }
  console.log('\nAll checks passed.');
}
