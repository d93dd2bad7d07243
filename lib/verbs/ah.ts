/** Address handles: the destination of UD sends. */
import type { NativeAh } from '../native';
import type { ProtectionDomain } from './pd';
import type { AddressVector } from './qp/qp';
import { NativeObject } from '../native/wrapper';

export class AddressHandle extends NativeObject<NativeAh> {
  readonly pd: ProtectionDomain;

  /** @internal Use pd.createAh() or pd.createAhFromCompletion(). */
  constructor(handle: NativeAh, pd: ProtectionDomain) {
    super(handle);
    this.pd = pd;
  }

  /** The address vector it was made from. */
  get attr(): AddressVector {
    return this.handle.attr as AddressVector;
  }
}
