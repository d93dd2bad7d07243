/** Address handles: the destination of UD sends. */
import type { NativeAh } from '../native';
import type { ProtectionDomain } from './pd';
import type { AddressVector } from './qp/qp';

export class AddressHandle implements Disposable {
  readonly #native: NativeAh;
  readonly pd: ProtectionDomain;

  /** @internal Use pd.createAh() or pd.createAhFromCompletion(). */
  constructor(handle: NativeAh, pd: ProtectionDomain) {
    this.#native = handle;
    this.pd = pd;
  }

  /** @internal */
  get handle(): NativeAh {
    return this.#native;
  }

  get closed(): boolean {
    return this.#native.closed;
  }

  /** The address vector it was made from. */
  get attr(): AddressVector {
    return this.#native.attr as AddressVector;
  }

  close(): void {
    this.#native.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
