/**
 * UD receives: every receive buffer starts with 40 bytes where the device puts the Global Route Header
 * (present on RoCE, optional on InfiniBand), and the completion's byte_len counts them. These helpers
 * hide that layout.
 */
import type { Completion } from '../completion';
import { UD_GRH_BYTES, WcFlags } from '../constants';

/** How big a UD receive buffer must be for datagrams of up to `payload` bytes. */
export function udReceiveBytes(payload: number): number {
  return UD_GRH_BYTES + payload;
}

/**
 * Splits a completed UD receive: `payload` is the datagram, `grh` the header (undefined when none came).
 * Both are views of `buffer`, which must be the buffer the receive was posted with.
 */
export function splitUdReceive(buffer: Uint8Array, completion: Pick<Completion, 'byteLen' | 'wcFlags'>): { grh?: Uint8Array; payload: Uint8Array } {
  if (completion.byteLen < UD_GRH_BYTES || completion.byteLen > buffer.length) {
    throw new RangeError(`a UD receive of ${completion.byteLen} bytes does not fit this ${buffer.length}-byte buffer`);
  }
  return {
    grh: completion.wcFlags & WcFlags.GRH ? buffer.subarray(0, UD_GRH_BYTES) : undefined,
    payload: buffer.subarray(UD_GRH_BYTES, completion.byteLen),
  };
}
