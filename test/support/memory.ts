/** Helpers for the memory tests: RDMA writes waited for by polling (faster than a completion channel in the TCG VM). */
import { WcStatus, WrOpcode, type CompletionBatch, type LoopbackPair, type MemoryRegion, type RemoteRegion } from '../../lib';

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Polls the first side's CQ until `count` completions arrived; returns their status names by wrId. Throws
 * after `timeoutMs`. Between polls it sleeps 20 µs: rxe works in kernel threads that a spinning poller
 * would starve on a small VM.
 */
export function pollCompletions(loop: LoopbackPair, count: number, timeoutMs = 30_000): string[] {
  const statuses: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (let seen = 0; ; ) {
    const batch: CompletionBatch = loop.cqs[0].poll();
    for (let i = 0; i < batch.count; i++, seen++) statuses[Number(batch.wrId(i))] = WcStatus[batch.status(i)] ?? `status ${batch.status(i)}`;
    if (seen === count) return statuses;
    if (Date.now() > deadline) throw new Error('no completion within the timeout');
    Atomics.wait(pause, 0, 0, 0.02);
  }
}

export interface Write {
  source: MemoryRegion;
  target: RemoteRegion;
  /** Of the source (default 0). */
  offset?: number;
  /** Default: the target's length. */
  length?: number;
}

/** RDMA-writes each source range to its target from the first QP, in one posted list; returns the status names. */
export function rdmaWrites(loop: LoopbackPair, writes: Write[]): string[] {
  loop.qps[0].postSend(
    writes.map(({ source, target, offset = 0, length = target.length }, i) => ({
      wrId: i,
      opcode: WrOpcode.RDMA_WRITE,
      sgList: [{ mr: source, offset, length }],
      remote: target,
    })),
  );
  return pollCompletions(loop, writes.length);
}

/** One RDMA write of `source` (or its first `length` bytes) to `target`; returns its status name. */
export function rdmaWrite(loop: LoopbackPair, source: MemoryRegion, target: RemoteRegion, length = target.length): string {
  return rdmaWrites(loop, [{ source, target, length }])[0]!;
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

/**
 * Waits until `bytes[0]`, set nonzero before another thread replaced the pages, reads as a fresh zero: the
 * old pages are gone then, whatever that thread is still doing in the kernel.
 */
export function waitForFreshPage(bytes: Uint8Array, timeoutMs = 10_000): void {
  const deadline = Date.now() + timeoutMs;
  while (bytes[0] !== 0) if (Date.now() > deadline) throw new Error('the thread never replaced the pages');
}
