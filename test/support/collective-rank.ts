/**
 * A rank for the collectives tests, under `rdma-node run`, mpirun or srun (argv: a mode, and a device).
 *   check      every collective, every data type and reduction, sizes from 0 to past the large-message
 *              switch, then every type and reduction again with the large-message algorithms forced;
 *              random data from a seeded generator; each rank computes every rank's input itself and
 *              the reference in TypeScript, and checks every element: {"rank","size","checked","bad"}
 *   abort      rank 1 aborts an allreduce through an AbortSignal; rank 0 enters it late:
 *              {"rank","code","message","after"} (after: the code of the next collective)
 *   timeout    every rank but 0 enters an allreduce with timeoutMs 500; rank 0 enters it 2 s later
 *   kill       rank `size - 1` SIGKILLs itself in the middle of an allreduce (rank 0 enters it late)
 *   close      rank 0 closes its communicator during an allreduce; the others enter it a second later
 *   mismatch   rank 0 allreduces 100 elements, the others 200: {"rank","code","message"}
 *   truncated  rank 0 broadcasts 128 KiB, the others expect 64 KiB (their first 64 KiB chunks agree)
 *   misuse     (one rank) wrong arguments are TypeErrors and RangeErrors, a closed communicator a TypeError:
 *              {"rank","errors": [name of each error, in order]}
 */

import { communicator, joinJob, largeMessageAlgorithms, type Communicator, type DataTypeName, type Job, type ReduceOpName } from '../../lib';

type Values = number[] | bigint[];

/** mulberry32: the same numbers for the same seed on every rank. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const exact = [-2, -1, -0.5, 0.5, 1, 2]; // floats whose sums and products over 8 ranks are exact in float32
const arrays = { int32: Int32Array, int64: BigInt64Array, uint32: Uint32Array, uint64: BigUint64Array, float32: Float32Array, float64: Float64Array };
const opsFor = (type: DataTypeName): ReduceOpName[] => (type.startsWith('float') ? ['sum', 'prod', 'min', 'max'] : ['sum', 'prod', 'min', 'max', 'band', 'bor', 'bxor']);

function values(type: DataTypeName, op: ReduceOpName, count: number, seed: number): Values {
  const next = generator(seed);
  const word = (): number => Math.floor(next() * 2 ** 32);
  if (type.startsWith('float')) return Array.from({ length: count }, () => exact[Math.floor(next() * exact.length)]!);
  // Products of 32-bit randoms wrap to zero fast: small factors keep the check meaningful.
  const small = op === 'prod';
  if (type === 'int64' || type === 'uint64') {
    const big = (): bigint => (small ? BigInt(word() % 7) - 3n : (BigInt(word()) << 32n) | BigInt(word()));
    return Array.from({ length: count }, () => (type === 'int64' ? BigInt.asIntN(64, big()) : BigInt.asUintN(64, big())));
  }
  const w = (): number => (small ? (word() % 7) - 3 : word());
  return Array.from({ length: count }, () => (type === 'int32' ? w() | 0 : w() >>> 0));
}

function combine(type: DataTypeName, op: ReduceOpName, a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    const wrap = (x: bigint): bigint => (type === 'int64' ? BigInt.asIntN(64, x) : BigInt.asUintN(64, x));
    const r = { sum: a + b, prod: a * b, min: a < b ? a : b, max: a > b ? a : b, band: a & b, bor: a | b, bxor: a ^ b }[op];
    return wrap(r);
  }
  const x = a as number;
  const y = b as number;
  if (type === 'float32' || type === 'float64') {
    const r = { sum: x + y, prod: x * y, min: Math.min(x, y), max: Math.max(x, y) }[op as 'sum']!;
    return type === 'float32' ? Math.fround(r) : r;
  }
  const wrap = (v: number): number => (type === 'int32' ? v | 0 : v >>> 0);
  return wrap({ sum: x + y, prod: Math.imul(x, y), min: Math.min(x, y), max: Math.max(x, y), band: x & y, bor: x | y, bxor: x ^ y }[op]);
}

function reference(type: DataTypeName, op: ReduceOpName, inputs: Values[]): Values {
  return inputs[0]!.map((_, i) => inputs.slice(1).reduce((acc: number | bigint, input) => combine(type, op, acc, input[i]!), inputs[0]![i]!)) as Values;
}

const make = (type: DataTypeName, v: Values): ArrayBufferView => (arrays[type] as unknown as { from(v: Values): ArrayBufferView }).from(v);

/**
 * `forced`: a communicator whose thresholds are all 0, so every type and reduction also goes through the
 * large-message algorithms (ring allreduce and reduce, scatter + allgather broadcast, ring allgather,
 * pairwise alltoall), at small sizes (blocks of a few elements, some empty); the large sizes are left to
 * the default communicator, where they choose the same algorithms.
 */
async function check(comm: Communicator, forced = false): Promise<{ checked: number; bad: string[] }> {
  const { rank, size } = comm;
  const bad: string[] = [];
  let checked = 0;
  const expect = (what: string, got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>): void => {
    checked++;
    if (got.length !== want.length) return void bad.push(`${what}: ${got.length} elements, not ${want.length}`);
    for (let i = 0; i < want.length; i++) {
      if (!Object.is(got[i], want[i]) && got[i] !== want[i]) return void bad.push(`${what}: [${i}] is ${got[i]}, not ${want[i]}`);
    }
  };
  const all = <T>(f: (r: number) => T): T[] => Array.from({ length: size }, (_, r) => f(r));
  // A barrier first: the communicator's first collective moves no data (it crashed the process once).
  await comm.barrier();
  checked++;
  let seed = 1;
  // Every type and reduction, small (recursive doubling); int32 and float64 past the ring threshold.
  const cases: [DataTypeName, ReduceOpName, number][] = [];
  for (const type of Object.keys(arrays) as DataTypeName[]) for (const op of opsFor(type)) cases.push([type, op, 37]);
  cases.push(['uint64', 'bxor', 0], ['float32', 'max', 1]);
  if (!forced) cases.push(['int32', 'sum', 70_000], ['float64', 'sum', 20_000]);
  if (!forced && process.env.COLLECTIVES_BIG) cases.push(['float32', 'sum', 3 << 19]); // 6 MiB
  const small = (n: number): boolean => !forced || n < 1000;
  for (const [type, op, count] of cases) {
    const s = seed++;
    const inputs = all((r) => values(type, op, count, s * 100 + r));
    const got = await comm.allreduce(make(type, inputs[rank]!), undefined, op);
    expect(`allreduce ${type} ${op} ${count}`, got as unknown as ArrayLike<number>, reference(type, op, inputs) as ArrayLike<number>);
  }
  const reduceCases: [DataTypeName, ReduceOpName, number][] = forced ? cases : [['int64', 'max', 37], ['uint32', 'sum', 30_000], ['float32', 'prod', 5]];
  for (const [type, op, count] of reduceCases) {
    const root = (seed++ % size);
    const inputs = all((r) => values(type, op, count, seed * 100 + r));
    const dst = make(type, new Array(count).fill(type.endsWith('64') && !type.startsWith('float') ? 0n : 0) as Values);
    const got = await comm.reduce(make(type, inputs[rank]!), dst, op, root);
    if (rank === root) expect(`reduce ${type} ${op} ${count} root ${root}`, got as unknown as ArrayLike<number>, reference(type, op, inputs) as ArrayLike<number>);
  }
  const bytes = (n: number, s: number): Buffer => {
    const next = generator(s);
    return Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
  };
  for (const n of [0, 1, 100_000].filter(small)) {
    const root = size - 1;
    const s = seed++;
    const buffer = rank === root ? bytes(n, s) : Buffer.alloc(n);
    await comm.broadcast(buffer, root);
    expect(`broadcast ${n} root ${root}`, buffer, bytes(n, s));
  }
  for (const n of [13, 40_000].filter(small)) {
    const s = seed++;
    const got = await comm.allgather(bytes(n, s * 100 + rank));
    expect(`allgather ${n}`, got as Buffer, Buffer.concat(all((r) => bytes(n, s * 100 + r))));
  }
  for (const count of [5, 20_000].filter(small)) {
    const s = seed++;
    const inputs = all((r) => values('int32', 'sum', count * size, s * 100 + r));
    const got = await comm.reduceScatter(Int32Array.from(inputs[rank] as number[]), undefined, 'sum');
    expect(`reduceScatter int32 sum ${count}`, got, (reference('int32', 'sum', inputs) as number[]).slice(rank * count, (rank + 1) * count));
  }
  for (const n of [3, 10_000].filter(small)) {
    const s = seed++;
    const got = await comm.alltoall(bytes(n * size, s * 100 + rank));
    expect(`alltoall ${n}`, got as Buffer, Buffer.concat(all((r) => bytes(n * size, s * 100 + r).subarray(rank * n, (rank + 1) * n))));
  }
  for (let i = 0; i < 3; i++) await comm.barrier();
  checked++;
  return { checked, bad };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function failure(comm: Communicator, mode: string): Promise<{ code?: string; message?: string; after?: string }> {
  const { rank, size } = comm;
  const data = new Float64Array(1000).fill(1);
  const outcome = async (p: Promise<unknown>): Promise<{ code?: string; message?: string }> =>
    p.then(
      () => ({ code: 'resolved' }),
      (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }),
    );
  let result: { code?: string; message?: string };
  if (mode === 'abort') {
    if (rank === 0) await sleep(1000);
    const controller = new AbortController();
    if (rank === 1) setTimeout(() => controller.abort(), 300);
    result = await outcome(comm.allreduce(data, undefined, 'sum', { signal: controller.signal }));
  } else if (mode === 'timeout') {
    if (rank === 0) await sleep(2000);
    result = await outcome(comm.allreduce(data, undefined, 'sum', { timeoutMs: rank === 0 ? 0 : 500 }));
  } else if (mode === 'kill') {
    // Rank 0 enters late, so the others' allreduce is under way (its messages posted) and cannot end
    // before the last rank dies in the middle of it.
    process.on('SIGTERM', () => undefined); // the launcher ends the job once a rank died: report first
    if (rank === size - 1) setTimeout(() => process.kill(process.pid, 'SIGKILL'), 300);
    if (rank === 0) await sleep(2000);
    result = await outcome(comm.allreduce(data));
  } else if (mode === 'mismatch') {
    result = await outcome(comm.allreduce(new Float64Array(rank === 0 ? 100 : 200)));
  } else if (mode === 'truncated') {
    result = await outcome(comm.broadcast(Buffer.alloc(rank === 0 ? 128 << 10 : 64 << 10), 0));
  } else {
    // Rank 0 closes while its collective waits for the others, which enter it later.
    if (rank === 0) setTimeout(() => comm.close(), 300);
    else await sleep(1000);
    result = await outcome(comm.allreduce(data));
  }
  const after = comm.closed ? 'closed' : (await outcome(comm.barrier())).code;
  return { ...result, after };
}

async function misuse(comm: Communicator): Promise<{ errors: string[] }> {
  const f32 = new Float32Array(4);
  const calls: (() => Promise<unknown>)[] = [
    () => comm.allreduce(f32, undefined, 'band'), // bitwise on floats
    () => comm.allreduce(f32, undefined, 'avg' as ReduceOpName),
    () => comm.allreduce(Buffer.alloc(8)), // bytes without a type
    () => comm.allreduce(Buffer.alloc(6), undefined, 'sum', { type: 'int32' }), // not whole elements
    () => comm.allreduce(f32, new Float32Array(3)),
    () => comm.allreduce(f32, new Int32Array(4) as unknown as Float32Array),
    () => comm.allreduce('nope' as unknown as Float32Array),
    () => comm.broadcast(Buffer.alloc(4), 1),
    () => comm.broadcast(Buffer.alloc(4), -1),
    () => comm.reduce(f32, f32, 'sum', 0.5),
    () => comm.allgather(Buffer.alloc(4), Buffer.alloc(3)),
    () => comm.barrier({ timeoutMs: -1 }),
    () => comm.barrier({ signal: {} as AbortSignal }),
    () => {
      const detached = new Float64Array(4);
      structuredClone(detached.buffer, { transfer: [detached.buffer] });
      return comm.allreduce(detached);
    },
  ];
  const errors: string[] = [];
  for (const call of calls) errors.push(await call().then(() => 'resolved', (e: Error) => e.name));
  errors.push(await comm.allreduce(new Int32Array([7])).then((r) => String(r[0]), (e: Error) => e.name));
  comm.close();
  comm.close();
  errors.push(await comm.barrier().then(() => 'resolved', (e: Error) => e.name));
  return { errors };
}

/** check() with the default thresholds, then with the large-message algorithms forced. */
async function checkBoth(job: Job, comm: Communicator, device?: string): Promise<{ checked: number; bad: string[] }> {
  const usual = await check(comm);
  const large = await communicator(job, { device, thresholds: largeMessageAlgorithms });
  try {
    const forced = await check(large, true);
    return { checked: usual.checked + forced.checked, bad: [...usual.bad, ...forced.bad.map((b) => `large-message algorithms: ${b}`)] };
  } finally {
    large.close();
  }
}

async function main(mode = 'check', device?: string): Promise<void> {
  const job = await joinJob();
  const comm = await communicator(job, { device });
  const out = mode === 'check' ? await checkBoth(job, comm, device) : mode === 'misuse' ? await misuse(comm) : await failure(comm, mode);
  console.log(JSON.stringify({ rank: comm.rank, size: comm.size, ...out }));
  if (mode === 'check') await job.barrier(); // nobody leaves while a peer still needs it
  comm.close();
  job.close();
}

void main(process.argv[2], process.argv[3]);
