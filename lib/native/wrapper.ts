/**
 * The TypeScript face of a native object, written once: its handle, `closed`, `close()` and `using`.
 * Parents and children are the native side's business (a child holds its parent; closing a parent closes
 * its children first; close() is idempotent), so nothing here tracks them. Each wrapper is recorded as the
 * object for its handle, which is how asynchronous events that name a native QP, CQ or CM id find it.
 * Objects that emit events extend NativeEmitter: a class has one base, so it is EventEmitter with
 * NativeObject's members installed on it (the same functions, not copies).
 */
import { EventEmitter } from 'node:events';
import type { NativeResource } from './resource';

const wrappers = new WeakMap<object, object>();

/** @internal Where a wrapper keeps its native object. */
export const kNative: unique symbol = Symbol('native');

/** The wrapper made for a native handle, if any. */
export function wrapperOf<T>(handle: object | undefined): T | undefined {
  return handle === undefined ? undefined : (wrappers.get(handle) as T | undefined);
}

function adopt<N extends object>(wrapper: { [kNative]: N }, native: N): void {
  wrappers.set(native, wrapper);
  wrapper[kNative] = native;
}

export abstract class NativeObject<N extends NativeResource> implements Disposable {
  /** @internal */
  declare [kNative]: N;

  /** `record`: whether wrapperOf(native) finds this wrapper (events name QPs, CQs, CM ids: not MRs). */
  protected constructor(native: N, record = true) {
    if (record) adopt(this, native);
    else this[kNative] = native;
  }

  /** @internal The native object, for this package's own layers. */
  get handle(): N {
    return this[kNative];
  }

  get closed(): boolean {
    return this[kNative].closed;
  }

  /** Closes this object and everything made from it, children first. Idempotent. */
  close(): void {
    this[kNative].close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface NativeEmitter<N extends NativeResource> {
  /** @internal */
  readonly handle: N;
  readonly closed: boolean;
  close(): void;
  [Symbol.dispose](): void;
}

export abstract class NativeEmitter<N extends NativeResource> extends EventEmitter implements Disposable {
  /** @internal */
  declare [kNative]: N;

  protected constructor(native: N) {
    super();
    adopt(this, native);
  }
}

for (const key of ['handle', 'closed', 'close', Symbol.dispose] as const) {
  Object.defineProperty(NativeEmitter.prototype, key, Object.getOwnPropertyDescriptor(NativeObject.prototype, key)!);
}
