/**
 * `rdma-node rping`: librdmacm's rping in TypeScript, wire-compatible with it. Per ping the client
 * advertises its source buffer (be64 addr, be32 rkey, be32 size in a 16-byte SEND), the server RDMA-READs
 * it and answers "go ahead", the client advertises its sink, the server RDMA-WRITEs the data back and says
 * "go ahead" again; -V compares what came back. The client disconnects after -C pings.
 */
import { CmId } from '../cm/id';
import { CompletionBatch, type Completion } from '../verbs/completion';
import { Access, WcOpcode, WcStatus, WrOpcode, enumName } from '../verbs/constants';
import type { CompletionQueue } from '../verbs/cq';
import type { MemoryRegion } from '../verbs/mr';
import type { ProtectionDomain } from '../verbs/pd';
import type { QueuePair } from '../verbs/qp/qp';
import { flag, intOption, parseOptions, stringOption } from '../core/argv';

const INFO_BYTES = 16;
const SQ_DEPTH = 16;
// rping.c's RPING_MIN_BUFSIZE, sizeof(stringify(INT_MAX)) + sizeof(RPING_MSG_FMT): the macro stringifies the
// name, not the number, so 8 + 15 bytes. Its message names 65536 as the top of the range; 65535 is the largest it takes.
const MIN_SIZE = 'INT_MAX'.length + 1 + 'rdma-ping-%d: '.length + 1;
const MAX_SIZE = 64 * 1024 - 1;

interface RpingSettings {
  server: boolean;
  address: string;
  source?: string;
  port: number;
  size: number;
  count: number;
  verbose: boolean;
  validate: boolean;
}

function rpingSettings(argv: string[]): RpingSettings {
  const parsed = parseOptions(argv, ['a', 'I', 'p', 'C', 'S'].map((short) => ({ short, value: true }))
    .concat(['s', 'c', 'v', 'V', 'd', 'P', 'q'].map((short) => ({ short, value: false }))));
  const server = flag(parsed, 's');
  if (server === flag(parsed, 'c')) throw new Error('usage: rping -s|-c [-vV] [-S size] [-C count] [-a addr] [-p port]');
  if (flag(parsed, 'P') || flag(parsed, 'q')) throw new Error('-P (persistent server) and -q (self-created QP) are not supported');
  const size = intOption(parsed, 'S', 64);
  if (size < MIN_SIZE || size > MAX_SIZE) throw new Error(`Invalid size ${size} (valid range is ${MIN_SIZE} to ${MAX_SIZE})`);
  const count = intOption(parsed, 'C', 0);
  if (count < 0) throw new Error(`Invalid count ${count}`);
  return {
    server, address: stringOption(parsed, 'a') ?? (server ? '0.0.0.0' : ''), source: stringOption(parsed, 'I'),
    port: intOption(parsed, 'p', 7174), size, count, verbose: flag(parsed, 'v'), validate: flag(parsed, 'V'),
  };
}

/** The ping text: "rdma-ping-N: " then letters A..z cycling from a start that moves each ping, NUL-terminated. */
export function pingData(ping: number, size: number): Buffer {
  const data = Buffer.alloc(size);
  const header = Buffer.from(`rdma-ping-${ping}: `, 'latin1');
  header.copy(data, 0, 0, Math.min(header.length, size - 1));
  let c = 65 + (ping % 58);
  for (let i = header.length; i < size; i++) {
    data[i] = c;
    c = c === 122 ? 65 : c + 1;
  }
  data[size - 1] = 0;
  return data;
}

export function encodeInfo(addr: bigint, rkey: number, size: number): Buffer {
  const info = Buffer.alloc(INFO_BYTES);
  info.writeBigUInt64BE(addr, 0);
  info.writeUInt32BE(rkey, 8);
  info.writeUInt32BE(size, 12);
  return info;
}

export function decodeInfo(info: Uint8Array): { addr: bigint; rkey: number; size: number } {
  const view = Buffer.from(info.buffer, info.byteOffset, INFO_BYTES);
  return { addr: view.readBigUInt64BE(0), rkey: view.readUInt32BE(8), size: view.readUInt32BE(12) };
}

/** One rping connection's verbs: the receive and send info buffers and the RDMA buffer, as rping sets them up. */
class Connection {
  readonly recv: MemoryRegion;
  readonly send: MemoryRegion;
  readonly rdma: MemoryRegion;
  readonly #batch = new CompletionBatch(16);
  readonly #ready: Completion[] = [];
  readonly #disconnected: Promise<undefined>;

  constructor(readonly id: CmId, readonly pd: ProtectionDomain, readonly cq: CompletionQueue, readonly qp: QueuePair, size: number) {
    this.recv = pd.registerMemory(Buffer.alloc(INFO_BYTES), Access.LOCAL_WRITE);
    this.send = pd.registerMemory(Buffer.alloc(INFO_BYTES), 0);
    this.rdma = pd.registerMemory(Buffer.alloc(size), Access.LOCAL_WRITE | Access.REMOTE_READ | Access.REMOTE_WRITE);
    this.#disconnected = new Promise((resolve) => id.once('disconnected', () => resolve(undefined)));
    this.postRecv();
  }

  static create(id: CmId, size: number): Connection {
    const context = id.context!;
    const pd = context.allocPd();
    const cq = context.createCq(SQ_DEPTH * 2, { channel: true });
    const qp = id.createQp(pd, { sendCq: cq, maxSendWr: SQ_DEPTH, maxRecvWr: 2, maxRecvSge: 1, maxSendSge: 1 });
    return new Connection(id, pd, cq, qp, size);
  }

  postRecv(): void {
    this.qp.postRecv({ sgList: [{ mr: this.recv }] });
  }

  sendInfo(region: MemoryRegion, size: number): void {
    this.send.bytes.set(encodeInfo(region.addr, region.rkey, size));
    this.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: this.send }] });
  }

  /** The next completion of `opcode` (sends complete quietly on the way), or undefined on disconnect/flush. */
  async next(opcode: WcOpcode): Promise<Completion | undefined> {
    for (;;) {
      const completion = this.#ready.shift() ?? (await this.#poll());
      if (completion === undefined) return undefined;
      if (completion.status === WcStatus.WR_FLUSH_ERR) return undefined;
      if (completion.status !== WcStatus.SUCCESS) throw new Error(`cq completion failed status ${completion.status} (${enumName(WcStatus, completion.status)})`);
      if (completion.opcode === WcOpcode.RECV) {
        if (completion.byteLen !== INFO_BYTES) throw new Error(`Received bogus data, size ${completion.byteLen}`);
      }
      if (completion.opcode === opcode) return completion;
      if (completion.opcode !== WcOpcode.SEND) throw new Error(`unexpected ${completion.opcodeName} completion`);
    }
  }

  async #poll(): Promise<Completion | undefined> {
    const waiting = this.cq.wait({}, this.#batch);
    waiting.catch(() => undefined); // the CQ closes under a wait that lost the race to a disconnect
    const batch = await Promise.race([waiting, this.#disconnected]);
    if (batch === undefined) return undefined;
    this.#ready.push(...batch.toObjects());
    return this.#ready.shift();
  }

  close(): void {
    this.id.close();
    this.pd.close();
    this.cq.close();
  }
}

async function runServer(settings: RpingSettings): Promise<number> {
  const listener = CmId.create();
  await listener.bind(settings.address, settings.port);
  listener.listen(3);
  const [incoming] = (await new Promise<[CmId]>((resolve) => listener.once('connection', (id: CmId) => resolve([id]))));
  const connection = Connection.create(incoming, settings.size);
  let disconnected = false;
  incoming.on('disconnected', () => {
    disconnected = true;
    console.error('server DISCONNECT EVENT...');
  });
  await incoming.accept({});
  try {
    for (;;) {
      // The client's source buffer.
      if (!(await connection.next(WcOpcode.RECV))) break;
      const source = decodeInfo(connection.recv.bytes);
      connection.postRecv();
      connection.qp.postSend({ opcode: WrOpcode.RDMA_READ, sgList: [{ mr: connection.rdma, length: source.size }], remote: source });
      if (!(await connection.next(WcOpcode.RDMA_READ))) break;
      if (settings.verbose) console.log(`server ping data: ${cString(connection.rdma.bytes)}`);
      connection.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: connection.send }] }); // go ahead
      // The client's sink buffer: write the ping back.
      if (!(await connection.next(WcOpcode.RECV))) break;
      const sink = decodeInfo(connection.recv.bytes);
      connection.postRecv();
      const length = cString(connection.rdma.bytes).length + 1;
      connection.qp.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: connection.rdma, length }], remote: sink });
      if (!(await connection.next(WcOpcode.RDMA_WRITE))) break;
      connection.qp.postSend({ opcode: WrOpcode.SEND, sgList: [{ mr: connection.send }] }); // go ahead
    }
  } finally {
    connection.close();
    listener.close();
  }
  return disconnected ? 0 : 1;
}

async function runClient(settings: RpingSettings): Promise<number> {
  const id = CmId.create();
  await id.resolveAddr(settings.address, settings.port, { source: settings.source, timeoutMs: 2000 });
  await id.resolveRoute({ timeoutMs: 2000 });
  const connection = Connection.create(id, settings.size);
  const start = connection.pd.registerMemory(Buffer.alloc(settings.size), Access.LOCAL_WRITE | Access.REMOTE_READ | Access.REMOTE_WRITE);
  id.on('disconnected', () => console.error('client DISCONNECT EVENT...'));
  let status = 0;
  try {
    await id.connect({ responderResources: 1, initiatorDepth: 1, retryCount: 7, rnrRetryCount: 7 });
    for (let ping = 0; settings.count === 0 || ping < settings.count; ping++) {
      start.bytes.set(pingData(ping, settings.size));
      connection.sendInfo(start, settings.size);
      if (!(await connection.next(WcOpcode.RECV))) throw new Error('wait for RDMA_WRITE_ADV: disconnected');
      connection.postRecv();
      connection.rdma.bytes.fill(0);
      connection.sendInfo(connection.rdma, settings.size);
      if (!(await connection.next(WcOpcode.RECV))) throw new Error('wait for RDMA_WRITE_COMPLETE: disconnected');
      connection.postRecv();
      if (settings.validate && Buffer.compare(start.bytes, connection.rdma.bytes) !== 0) {
        console.error('data mismatch!');
        status = 1;
        break;
      }
      if (settings.verbose) console.log(`ping data: ${cString(connection.rdma.bytes)}`);
    }
    await id.disconnect().catch(() => undefined);
  } finally {
    connection.close();
  }
  return status;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return Buffer.from(bytes.subarray(0, end < 0 ? bytes.length : end)).toString('latin1');
}

export async function rping(argv: string[]): Promise<number> {
  const settings = rpingSettings(argv);
  if (!settings.server && !settings.address) throw new Error('rping -c needs -a <server address>');
  return settings.server ? runServer(settings) : runClient(settings);
}
