/**
 * Whether a device's On-Demand Paging puts RDMA data where it belongs, tried once per device in this
 * process. rxe's ODP copy in Linux 6.15 to 7.3 puts every packet at the start of its page (fixed by
 * kernel/patches/0001), so a registration cache must not choose ODP on a version check or on the
 * capability bits alone: it writes through a loopback RC pair and looks.
 */
import { Access, QpType, WcStatus, WrOpcode } from '../verbs/constants';
import type { Context } from '../verbs/context';
import { allocate } from './mapped';

/** A write of several packets (at the smallest MTU) starting mid-page and crossing a page boundary. */
const OFFSET = 1000;
const LENGTH = 3 * 1024 + 100;
const TIMEOUT_MS = 5000;

const verdicts = new Map<string, string | undefined>();
const pause = new Int32Array(new SharedArrayBuffer(4));

/** Why ODP registrations on `context`'s device cannot be trusted with data (undefined when they can). */
export function odpMisplaces(context: Context): string | undefined {
  if (!verdicts.has(context.name)) verdicts.set(context.name, probe(context));
  return verdicts.get(context.name);
}

function probe(context: Context): string | undefined {
  const pd = context.allocPd();
  const cq = context.createCq(4);
  const buffer = allocate(2 * 4096);
  try {
    const [a, b] = [0, 1].map(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, maxSendWr: 1, maxRecvWr: 1 }));
    a!.connect(b!.address(), { accessFlags: Access.LOCAL_WRITE });
    b!.connect(a!.address(), { accessFlags: Access.LOCAL_WRITE | Access.REMOTE_WRITE });
    const target = pd.registerMemory(buffer.bytes, Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.ON_DEMAND);
    const source = pd.registerMemory(Buffer.alloc(LENGTH, 0x5a));
    a!.postSend({ opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source }], remote: target.remote(OFFSET, LENGTH) });
    const deadline = Date.now() + TIMEOUT_MS;
    let batch = cq.poll();
    while (batch.count === 0) {
      if (Date.now() > deadline) return 'the ODP probe got no completion';
      Atomics.wait(pause, 0, 0, 0.05); // a spinning poll would starve rxe's kernel threads on a small machine
      batch = cq.poll();
    }
    if (batch.status(0) !== WcStatus.SUCCESS) return `the ODP probe's write completed with ${WcStatus[batch.status(0)]}`;
    const misplaced = buffer.bytes.reduce((count, byte, at) => count + Number(byte !== (at >= OFFSET && at < OFFSET + LENGTH ? 0x5a : 0)), 0);
    return misplaced === 0 ? undefined : `ODP misplaces data on this device: ${misplaced} of ${LENGTH} bytes of a write starting mid-page were elsewhere (the rxe bug of Linux 6.15 to 7.3)`;
  } catch (error) {
    return `the ODP probe failed: ${(error as Error).message}`;
  } finally {
    pd.close();
    cq.close();
    buffer.close();
  }
}
