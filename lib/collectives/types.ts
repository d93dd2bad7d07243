/**
 * The data types and reductions the collectives know, with the codes the C core uses
 * (native/collectives/reduce.h), and the typed arrays they come in.
 */
export type DataTypeName = 'int32' | 'int64' | 'uint32' | 'uint64' | 'float32' | 'float64';
export type ReduceOpName = 'sum' | 'prod' | 'min' | 'max' | 'band' | 'bor' | 'bxor';

export const dataTypes: Record<DataTypeName, { code: number; bytes: number }> = {
  int32: { code: 0, bytes: 4 },
  int64: { code: 1, bytes: 8 },
  uint32: { code: 2, bytes: 4 },
  uint64: { code: 3, bytes: 8 },
  float32: { code: 4, bytes: 4 },
  float64: { code: 5, bytes: 8 },
};

export const reduceOps: Record<ReduceOpName, { code: number; integersOnly: boolean }> = {
  sum: { code: 0, integersOnly: false },
  prod: { code: 1, integersOnly: false },
  min: { code: 2, integersOnly: false },
  max: { code: 3, integersOnly: false },
  band: { code: 4, integersOnly: true },
  bor: { code: 5, integersOnly: true },
  bxor: { code: 6, integersOnly: true },
};

/** What a reduction may be given: a typed array of one of the types, or bytes with a named type. */
export type ReducibleArray = Int32Array | BigInt64Array | Uint32Array | BigUint64Array | Float32Array | Float64Array;

const byConstructor = new Map<unknown, DataTypeName>([
  [Int32Array, 'int32'],
  [BigInt64Array, 'int64'],
  [Uint32Array, 'uint32'],
  [BigUint64Array, 'uint64'],
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
]);

/** The data type of a typed array, or `named` for plain bytes (Buffer, Uint8Array, DataView). */
export function dataTypeOf(view: ArrayBufferView, named: DataTypeName | undefined, what: string): DataTypeName {
  const own = byConstructor.get(view.constructor);
  if (own !== undefined) {
    if (named !== undefined && named !== own) throw new TypeError(`${what} is a ${view.constructor.name}, not ${named}`);
    return own;
  }
  if (named === undefined) throw new TypeError(`${what}: give a typed array of a reducible type, or { type } for bytes`);
  if (!(named in dataTypes)) throw new TypeError(`unknown data type ${String(named)}: ${Object.keys(dataTypes).join(', ')}`);
  return named;
}

export function reduceOpOf(name: unknown, type: DataTypeName): number {
  const op = typeof name === 'string' ? reduceOps[name as ReduceOpName] : undefined;
  if (op === undefined) throw new TypeError(`unknown reduction ${String(name)}: ${Object.keys(reduceOps).join(', ')}`);
  if (op.integersOnly && type.startsWith('float')) throw new TypeError(`${String(name)} is for integers, not ${type}`);
  return op.code;
}
