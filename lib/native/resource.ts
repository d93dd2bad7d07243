/** The base of every native handle: what close() and closed mean on each. */
export interface NativeResource {
  close(): void;
  readonly closed: boolean;
}
