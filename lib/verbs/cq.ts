/**
 * Completion channels and completion queues. Waiting is event-driven: the channel fd is watched with
 * uv_poll, and wait() follows the request-notify → poll → sleep order, so a completion that arrives
 * between the poll and the sleep still wakes it.
 */
import { CompletionBatch, type Completion } from './completion';
import type { Context } from './context';
import { rdmaError } from '../core/errors';
import type { NativeCompletionChannel, NativeCq } from '../native';
import { NativeObject } from '../native/wrapper';

/** close(): closes the channel and the CQs that use it. Idempotent. */
export class CompletionChannel extends NativeObject<NativeCompletionChannel> {
  readonly context: Context;

  /** @internal Use context.createCompletionChannel(). */
  constructor(handle: NativeCompletionChannel, context: Context) {
    super(handle);
    this.context = context;
  }

  get fd(): number {
    return this.handle.fd;
  }
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Rejects with RdmaError ETIMEDOUT after this many milliseconds. */
  timeoutMs?: number;
  /** Wake only for solicited completions (and errors). */
  solicitedOnly?: boolean;
  /**
   * Busy-poll natively this many microseconds before sleeping on the channel (default 10): a completion
   * that comes that soon costs no event-loop turn.
   */
  spinUs?: number;
}

export interface PollOptions {
  /** Keep polling natively until a completion arrives or this many microseconds pass (default 0). */
  spinUs?: number;
}

const DEFAULT_WAIT_SPIN_US = 10;

export class CompletionQueue extends NativeObject<NativeCq> {
  readonly context: Context;
  readonly channel: CompletionChannel | undefined;
  readonly #ownsChannel: boolean;
  readonly #batch = new CompletionBatch(64);
  /** The one native wait in flight, shared by every concurrent wait(). */
  #event: Promise<boolean> | undefined;

  /** @internal Use context.createCq(). */
  constructor(handle: NativeCq, context: Context, channel: CompletionChannel | undefined, ownsChannel: boolean) {
    super(handle);
    this.context = context;
    this.channel = channel;
    this.#ownsChannel = ownsChannel;
  }

  /** The number of entries the CQ actually has (at least what was asked). */
  get cqe(): number {
    return this.handle.cqe;
  }

  /**
   * Polls up to batch.capacity completions into `batch` (reused storage); batch.count says how many. With
   * `spinUs`, the native side keeps polling until there is one or the time is up: one call per completion
   * for a latency-bound loop.
   */
  poll(batch: CompletionBatch = this.#batch, options?: PollOptions): CompletionBatch {
    const spinUs = options?.spinUs;
    batch.count = spinUs === undefined ? this.handle.poll(batch.words) : this.handle.poll(batch.words, spinUs);
    return batch;
  }

  /** Arms the CQ: the next completion (or solicited one) raises an event on its channel. */
  requestNotify(solicitedOnly = false): void {
    this.handle.requestNotify(solicitedOnly);
  }

  /**
   * Resolves with the next non-empty batch of completions: spins natively for `spinUs`, then sleeps on the
   * channel until there is one. The batch is reused by the next poll or wait on this CQ unless you pass
   * your own.
   */
  async wait(options: WaitOptions = {}, batch: CompletionBatch = this.#batch): Promise<CompletionBatch> {
    if (this.channel === undefined) throw new TypeError('this CQ has no completion channel; create it with { channel: true }');
    const solicitedOnly = options.solicitedOnly ?? false;
    // One call spins, arms the CQ and polls again; after each event, one call arms and polls.
    batch.count = this.handle.poll(batch.words, options.spinUs ?? DEFAULT_WAIT_SPIN_US, solicitedOnly);
    if (batch.count > 0) return batch;
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    for (;;) {
      await this.#nextEvent(options.signal, deadline);
      batch.count = this.handle.poll(batch.words, 0, solicitedOnly);
      if (batch.count > 0) return batch;
    }
  }

  /**
   * Resolves with exactly `count` completions (failed ones included: check `status`), never consuming
   * more than that from the CQ.
   */
  async take(count: number, options: WaitOptions = {}): Promise<Completion[]> {
    if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be a non-negative integer');
    const taken: Completion[] = [];
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    while (taken.length < count) {
      const timeoutMs = deadline === undefined ? undefined : Math.max(0, deadline - Date.now());
      const batch = await this.wait({ ...options, timeoutMs }, new CompletionBatch(Math.min(count - taken.length, 256)));
      taken.push(...batch.toObjects());
    }
    return taken;
  }

  /** Completions one by one, as they arrive; ends when the CQ is closed. */
  async *completions(options: Omit<WaitOptions, 'timeoutMs'> = {}): AsyncGenerator<Completion> {
    const batch = new CompletionBatch(64);
    for (;;) {
      try {
        await this.wait(options, batch);
      } catch (error) {
        if (this.closed) return;
        throw error;
      }
      for (const completion of batch.toObjects()) yield completion;
    }
  }

  /** Resizes to at least `cqe` entries; returns the new size. */
  resize(cqe: number): number {
    return this.handle.resize(cqe);
  }

  /** Closes the CQ (and the QPs using it, and a channel made just for it); pending waits reject. */
  override close(): void {
    this.handle.close();
    if (this.#ownsChannel) this.channel?.close();
  }

  [Symbol.asyncIterator](): AsyncGenerator<Completion> {
    return this.completions();
  }

  /** Sleeps until the channel's next event; a signal or deadline cancels the native wait and throws. */
  async #nextEvent(signal: AbortSignal | undefined, deadline: number | undefined): Promise<void> {
    signal?.throwIfAborted();
    const event = (this.#event ??= this.handle.nextEvent().finally(() => (this.#event = undefined)));
    if (signal === undefined && deadline === undefined) {
      await event;
      return;
    }
    // Stopping resolves the one native wait (every waiter then polls and sleeps again): no race of
    // promises per wait, which an event-driven loop would pay on every completion.
    let reason: unknown;
    const stop = (why: unknown): void => {
      if (reason !== undefined) return;
      reason = why;
      if (!this.closed) this.handle.cancelWait();
    };
    const onAbort = (): void => stop(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = deadline === undefined ? undefined
      : setTimeout(() => stop(rdmaError('wait for completion', 'ETIMEDOUT', 'no completion in time')), Math.max(0, deadline - Date.now()));
    try {
      await event;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    if (reason !== undefined) throw reason;
  }
}
