/**
 * Run by faults.test.ts in a process of its own, under limits the parent set (RLIMIT_MEMLOCK without
 * CAP_IPC_LOCK, an rdma cgroup), or to exit with everything open. Prints one JSON line.
 */
import { RdmaError, WrOpcode, createLoopbackPair, openDevice, type Context, type MemoryRegion, type QueuePair } from '../../lib';
import { kernelObjects, remoteAccess } from '../support/fixture';

const device = process.env.RDMA_NODE_DEVICE!;
const failure = (error: unknown) => (error instanceof RdmaError ? { code: error.code, errno: error.errno, verb: error.verb } : { other: String(error) });

function memlock(): object {
  using context = openDevice(device);
  const pd = context.allocPd();
  const before = kernelObjects();
  let refused: object | undefined;
  try {
    pd.registerMemory(Buffer.alloc(4 << 20));
  } catch (error) {
    refused = failure(error);
  }
  const after = kernelObjects();
  pd.registerMemory(Buffer.alloc(4096)); // what fits under the limit still registers
  return { refused, before, after, small: kernelObjects().mr };
}

/** Objects made until the cgroup refuses one: how many, what the refusal was, what the kernel holds. */
function objects(): object {
  const result: Record<string, unknown> = {};
  using context = openDevice(device);
  const pd = context.allocPd();
  const cq = context.createCq(4);
  const made = <T extends { close(): void }>(what: string, make: () => T): T[] => {
    const list: T[] = [];
    try {
      for (let i = 0; i < 200; i++) list.push(make());
    } catch (error) {
      result[what] = { count: list.length, refused: failure(error), kernel: kernelObjects() };
    }
    for (const item of list) item.close();
    return list;
  };
  made<QueuePair>('qp', () => pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 1, maxRecvWr: 1 }));
  made<MemoryRegion>('mr', () => pd.registerMemory(Buffer.alloc(64)));
  let second: Context | undefined;
  try {
    second = openDevice(device);
    second.allocPd();
  } catch (error) {
    result.context = failure(error);
  } finally {
    second?.close();
  }
  // Everything refused left nothing behind; what was closed can be made again.
  result.afterClose = kernelObjects();
  pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 1, maxRecvWr: 1 });
  result.again = kernelObjects();
  return result;
}

/** Traffic in flight, then process.exit() from a completion handler with everything open. */
async function exitDuringTraffic(): Promise<never> {
  const context = openDevice(device);
  const loop = createLoopbackPair(context);
  const source = loop.pd.registerMemory(Buffer.alloc(1 << 20, 7));
  const target = loop.pd.registerMemory(Buffer.alloc(1 << 20), remoteAccess);
  const post = (): void => loop.qps[0].postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote() });
  for (let i = 0; i < 16; i++) post();
  await loop.cqs[0].take(1);
  for (let i = 0; i < 16; i++) post();
  console.log(JSON.stringify({ pid: process.pid, kernel: kernelObjects() }));
  process.exit(0);
}

const mode = process.argv[2];
if (mode === 'exit') void exitDuringTraffic();
else console.log(JSON.stringify(mode === 'memlock' ? memlock() : objects()));
