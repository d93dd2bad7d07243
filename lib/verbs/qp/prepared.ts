/**
 * Prepared work requests: a list marshalled once and posted many times, a slice at a time. Posting costs
 * one native call with two integers, so a TypeScript loop that reposts the same requests (a receive
 * ring, a benchmark) pays almost nothing for the binding.
 */
import type { NativePrepared } from '../../native';
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
}
