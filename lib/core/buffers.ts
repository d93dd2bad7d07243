/** Normalizing the buffer kinds JS has into (ArrayBuffer, offset, length). */
export type BufferSource = ArrayBuffer | ArrayBufferView;

export interface ByteRange {
  arrayBuffer: ArrayBuffer;
  offset: number;
  length: number;
}

/** The bytes of `source` from `offset` (default 0) for `length` (default: to the end), bounds-checked. */
export function toByteRange(source: BufferSource, offset = 0, length?: number): ByteRange {
  let arrayBuffer: ArrayBuffer;
  let base = 0;
  let size: number;
  if (source instanceof ArrayBuffer) {
    arrayBuffer = source;
    size = source.byteLength;
  } else if (ArrayBuffer.isView(source) && source.buffer instanceof ArrayBuffer) {
    arrayBuffer = source.buffer;
    base = source.byteOffset;
    size = source.byteLength;
  } else {
    throw new TypeError('expected an ArrayBuffer, Buffer or typed array (SharedArrayBuffer is not supported)');
  }
  // Memory the device or the CPU is told to use must stay: a resizable buffer could shrink under it.
  if ((arrayBuffer as { resizable?: boolean }).resizable) throw new TypeError('a resizable ArrayBuffer cannot be used for RDMA: it could shrink under the registration');
  if (!Number.isInteger(offset) || offset < 0 || offset > size) throw new RangeError(`offset ${offset} is outside the ${size}-byte buffer`);
  const count = length ?? size - offset;
  if (!Number.isInteger(count) || count < 0 || offset + count > size) throw new RangeError(`length ${count} at offset ${offset} exceeds the ${size}-byte buffer`);
  return { arrayBuffer, offset: base + offset, length: count };
}
