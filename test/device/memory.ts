/** Helpers for the memory tests: one RDMA write, waited for by polling (fast in the TCG VM). */
import { WcStatus, WrOpcode, type CompletionBatch, type LoopbackPair, type MemoryRegion, type RemoteRegion } from '../../lib';

/** Polls the first side's CQ until one completion arrives; throws after `timeoutMs`. */
export function pollOne(loop: LoopbackPair, timeoutMs = 30_000): CompletionBatch {
  const deadline = Date.now() + timeoutMs;
  for (let spins = 0; ; spins++) {
    const batch = loop.cqs[0].poll();
    if (batch.count > 0) return batch;
    if (spins % 1024 === 0 && Date.now() > deadline) throw new Error('no completion within the timeout');
  }
}

/** RDMA-writes `source` (or its first `length` bytes) to `target` from the first QP; returns the status name. */
export function rdmaWrite(loop: LoopbackPair, source: MemoryRegion, target: RemoteRegion, length = target.length): string {
  loop.qps[0].postSend({ wrId: 1, opcode: WrOpcode.RDMA_WRITE, sgList: [{ mr: source, length }], remote: target });
  const batch = pollOne(loop);
  return WcStatus[batch.status(0)] ?? `status ${batch.status(0)}`;
}

/** How many bytes differ between two equally long byte arrays (native comparison first, then a count). */
export function differingBytes(actual: Uint8Array, expected: Uint8Array): number {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} and ${b.length}`);
  if (a.equals(b)) return 0;
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) count++;
  return count;
}
