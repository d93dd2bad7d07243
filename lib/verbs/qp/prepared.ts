/**
 * Prepared work requests: a list marshalled once and posted many times, a slice at a time. Posting costs
 * one native call with two integers, so a TypeScript loop that reposts the same requests (a receive
 * ring, a benchmark) pays almost nothing for the binding.
 */
import type { NativePrepared } from '../../native';
import type { CompletionBatch } from '../completion';
import type { CompletionQueue } from '../cq';
import type { QueuePair } from './qp';
import { NativeObject } from '../../native/wrapper';

/**
 * close(): releases the requests (and the MRs and AHs they held). Closing the QP closes them too.
 * Idempotent.
 */
export class PreparedWorkRequests extends NativeObject<NativePrepared> {
  readonly qp: QueuePair;

  /** @internal Use qp.prepareSend() or qp.prepareRecv(). */
  constructor(handle: NativePrepared, qp: QueuePair) {
    super(handle);
    this.qp = qp;
  }

  get length(): number {
    return this.handle.length;
  }

  /** Posts requests [first, first + count) as one list (all of them by default). */
  post(first?: number, count?: number): void {
    // Only the arguments given reach the native call (each one read costs time on the hot path).
    if (first === undefined) this.handle.post();
    else if (count === undefined) this.handle.post(first);
    else this.handle.post(first, count);
  }

  /**
   * Posts every request and polls `cq` into `batch` in the same native call, spinning there up to
   * `spinUs` microseconds for a first completion (0: one poll). A ping-pong step in one crossing.
   */
  postAndPoll(cq: CompletionQueue, batch: CompletionBatch, spinUs?: number): CompletionBatch {
    batch.count = spinUs === undefined ? this.handle.postAndPoll(cq.handle, batch.words) : this.handle.postAndPoll(cq.handle, batch.words, spinUs);
    return batch;
  }
}

/** qp.createReceiveRing(): receives the CQ reposts by itself. close() stops reposting. */
export class ReceiveRing extends PreparedWorkRequests {
  /** Refused: the ring posts its own receives. */
  override post(): never {
    throw new TypeError('a receive ring posts its own receives');
  }
}
