/**
 * Prepared work requests: a list marshalled once and posted many times, a slice at a time. Posting costs
 * one native call with two integers, so a TypeScript loop that reposts the same requests (a receive
 * ring, a benchmark) pays almost nothing for the binding.
 */
import type { NativePrepared } from '../../native';
import type { QueuePair } from './qp';

export class PreparedWorkRequests implements Disposable {
  readonly #native: NativePrepared;
  readonly qp: QueuePair;

  /** @internal Use qp.prepareSend() or qp.prepareRecv(). */
  constructor(handle: NativePrepared, qp: QueuePair) {
    this.#native = handle;
    this.qp = qp;
  }

  get length(): number {
    return this.#native.length;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Posts requests [first, first + count) as one list (all of them by default). */
  post(first?: number, count?: number): void {
    // Only the arguments given reach the native call (each one read costs time on the hot path).
    if (first === undefined) this.#native.post();
    else if (count === undefined) this.#native.post(first);
    else this.#native.post(first, count);
  }

  /** Releases the requests (and the MRs and AHs they held). Closing the QP closes them too. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
