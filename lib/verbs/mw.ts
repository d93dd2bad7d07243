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
  #rkey: number;

  /** @internal Use pd.allocMw(). */
  constructor(handle: NativeMw, pd: ProtectionDomain) {
    super(handle);
    this.pd = pd;
    this.#rkey = handle.rkey;
  }

  get type(): MwType {
    return this.handle.type;
  }

  /** The rkey of the current binding (the last one bound or posted). */
  get rkey(): number {
    return this.#rkey;
  }

  /** The rkey for the next type-2 bind: same window index, next key byte (ibv_inc_rkey). */
  nextRkey(): number {
    return ((this.#rkey & ~0xff) | ((this.#rkey + 1) & 0xff)) >>> 0;
  }

  /** @internal Records the rkey a bind gave the window. */
  bound(rkey: number): void {
    this.#rkey = rkey;
  }
}
