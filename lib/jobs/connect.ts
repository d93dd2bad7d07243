/**
 * job.connect(): an RC queue pair to every other rank, all at once. Each rank makes one QP per peer on its
 * device, the QP numbers travel in one allgather of the job's bootstrap (PMIx or the ring), every QP is
 * brought to RTS, and a barrier makes sure no rank sends before its peers can receive.
 */
import { openDevice } from '../verbs/device';
import type { Context } from '../verbs/context';
import type { CompletionQueue } from '../verbs/cq';
import type { ProtectionDomain } from '../verbs/pd';
import type { QpAddress, QueuePair } from '../verbs/qp/qp';
import type { Job } from './join';

export interface ConnectOptions {
  /** The RDMA device (default RDMA_NODE_DEVICE, else the first). */
  device?: string;
  portNum?: number;
  gidIndex?: number;
  /** Entries of the shared CQ (default 256 per peer, at least 1024). */
  cqe?: number;
  maxSendWr?: number;
  maxRecvWr?: number;
}

export interface JobConnections extends Disposable {
  readonly context: Context;
  readonly pd: ProtectionDomain;
  /** The completion queue every peer QP shares (send and receive), with a completion channel. */
  readonly cq: CompletionQueue;
  /** The QP to each rank; undefined for this rank. */
  readonly qps: (QueuePair | undefined)[];
  close(): void;
}

export async function connectJob(job: Job, options: ConnectOptions = {}): Promise<JobConnections> {
  const { rank, size } = job;
  const context = openDevice(options.device ?? process.env.RDMA_NODE_DEVICE);
  const pd = context.allocPd();
  const cq = context.createCq(options.cqe ?? Math.max(1024, 256 * size), { channel: true });
  const close = (): void => context.close(); // its PD, QPs and CQ first
  try {
    const qps = Array.from({ length: size }, (_, peer) =>
      peer === rank ? undefined : pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: options.maxSendWr ?? 128, maxRecvWr: options.maxRecvWr ?? 128 }),
    );
    const mine = qps.map((qp) => qp?.address({ portNum: options.portNum, gidIndex: options.gidIndex }) ?? null);
    const tables = (await job.allgather(Buffer.from(JSON.stringify(mine)))).map((bytes) => JSON.parse(bytes.toString()) as (QpAddress | null)[]);
    qps.forEach((qp, peer) => qp?.connect(tables[peer]![rank]!, { portNum: options.portNum, gidIndex: options.gidIndex }));
    await job.barrier();
    return { context, pd, cq, qps, close, [Symbol.dispose]: close };
  } catch (error) {
    close();
    throw error;
  }
}
