/**
 * Memory windows: remote access to part of an MR that can be granted and revoked without
 * re-registering. Type 1 binds with qp.bindMw(); type 2 with a BIND_MW work request whose rkey comes
 * from nextRkey(), and is revoked by LOCAL_INV or a peer's SEND_WITH_INV.
 */
import type { NativeMw } from '../native';
import type { ProtectionDomain } from './pd';
import { NativeObject } from '../native/wrapper';

export enum MwType { TYPE_1 = 1, TYPE_2 = 2 }

export class MemoryWindow extends NativeObject<NativeMw> {
  readonly pd: ProtectionDomain;

  /** @internal Use pd.allocMw(). */
  constructor(handle: NativeMw, pd: ProtectionDomain) {
    super(handle);
    this.pd = pd;
  }

  get type(): MwType {
    return this.handle.type;
  }

  /** The rkey of the current binding (the last one bound or posted). */
  get rkey(): number {
    return this.handle.rkey;
  }

  /** The rkey for the next type-2 bind: same window index, next key byte (ibv_inc_rkey). */
  nextRkey(): number {
    const rkey = this.rkey;
    return ((rkey & ~0xff) | ((rkey + 1) & 0xff)) >>> 0;
  }
}
