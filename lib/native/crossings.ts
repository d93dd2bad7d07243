/**
 * A count of the calls from JavaScript into the addon: what an operation costs is mostly how many times
 * it crosses into C++ (each crossing costs far more than a JS call), so benchmarks print "calls per op"
 * next to their TypeScript rows and tests assert how many calls a path makes. A diagnostic hook: while
 * watching, each watched native object gets counting own properties over its class's methods and
 * accessors (which the addon defines unconfigurable); they slow it, so count in a separate pass from the
 * one that is timed.
 */
export class CrossingCounter implements Disposable {
  /** Calls seen since watching began (or since reset()). */
  count = 0;
  readonly #watched = new Set<object>();
  readonly #restore: Array<() => void> = [];

  /** Counts the calls of every method and accessor of these native handles. */
  watch(...handles: object[]): this {
    for (const handle of handles) {
      if (this.#watched.has(handle)) continue;
      this.#watched.add(handle);
      const prototype = Object.getPrototypeOf(handle) as object;
      for (const key of Reflect.ownKeys(prototype)) {
        if (key === 'constructor') continue;
        const counted = this.#counted(Object.getOwnPropertyDescriptor(prototype, key)!);
        if (counted === undefined) continue;
        Object.defineProperty(handle, key, { ...counted, configurable: true });
        this.#restore.push(() => delete (handle as Record<PropertyKey, unknown>)[key]);
      }
    }
    return this;
  }

  reset(): void {
    this.count = 0;
  }

  /** Stops counting: the classes get their own methods back. */
  close(): void {
    for (const restore of this.#restore.splice(0)) restore();
    this.#watched.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #counted(descriptor: PropertyDescriptor): PropertyDescriptor | undefined {
    const count = (): void => {
      this.count++;
    };
    if (typeof descriptor.value === 'function') {
      const method = descriptor.value as (...args: unknown[]) => unknown;
      return { ...descriptor, value: function counted(this: unknown, ...args: unknown[]) { count(); return method.apply(this, args); } };
    }
    if (descriptor.get === undefined) return undefined;
    const get = descriptor.get;
    return { ...descriptor, get: function counted(this: unknown) { count(); return get.call(this); } };
  }
}
