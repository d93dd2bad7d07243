/**
 * The TypeScript face of a native object, written once: its handle, `closed`, `close()` and `using`.
 * Parents and children are the native side's business (a child holds its parent; closing a parent closes
 * its children first; close() is idempotent), so nothing here tracks them. Each wrapper is recorded as the
 * object for its handle, which is how asynchronous events that name a native QP, CQ or CM id find it.
 * Objects that emit events extend NativeEmitter, the same over EventEmitter (a class has one base).
 */
import { EventEmitter } from 'node:events';
import type { NativeResource } from './index';

const wrappers = new WeakMap<object, object>();

/** The wrapper made for a native handle, if any. */
export function wrapperOf<T>(handle: object | undefined): T | undefined {
  return handle === undefined ? undefined : (wrappers.get(handle) as T | undefined);
}

export abstract class NativeObject<N extends NativeResource> implements Disposable {
  readonly #native: N;

  protected constructor(native: N) {
    wrappers.set(native, this);
    this.#native = native;
  }

  /** @internal The native object, for this package's own layers. */
  get handle(): N {
    return this.#native;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Closes this object and everything made from it, children first. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export abstract class NativeEmitter<N extends NativeResource> extends EventEmitter implements Disposable {
  readonly #native: N;

  protected constructor(native: N) {
    super();
    wrappers.set(native, this);
    this.#native = native;
  }

  /** @internal The native object, for this package's own layers. */
  get handle(): N {
    return this.#native;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** Closes this object and everything made from it, children first. Idempotent. */
  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
