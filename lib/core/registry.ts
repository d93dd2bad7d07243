/** Finds the TypeScript object for a native handle (async events name QPs and CQs by native handle). */
const wrappers = new WeakMap<object, object>();

/** Records `wrapper` as the object for `handle`; returns the handle. */
export function register<H extends object>(handle: H, wrapper: object): H {
  wrappers.set(handle, wrapper);
  return handle;
}

export function wrapperOf<T>(handle: object | undefined): T | undefined {
  return handle === undefined ? undefined : (wrappers.get(handle) as T | undefined);
}
