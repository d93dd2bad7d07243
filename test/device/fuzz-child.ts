/**
 * One fuzz target per process (argv[2]): every public method and getter of one kind of object, called with
 * a matrix of wrong arguments, then again after the object (or its parent) is closed, and after its
 * parents were dropped and collected. Each call is printed before it is made, so a crash names it; the
 * last line is a JSON summary of the error classes seen. fuzz.test.ts runs each target and checks both.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import * as rdma from '../../lib';
import { CmId } from '../../lib/cm/id';
import { pair } from '../support/fixture';

const allowed = new Set(['TypeError', 'RangeError', 'RdmaError', 'CompletionError']);
const seen: Record<string, number> = {};
const wrong: string[] = [];
const pending: { call: string; promise: Promise<unknown> }[] = [];

function record(call: string, error: unknown): void {
  const name = error instanceof Error ? error.constructor.name : typeof error;
  seen[name] = (seen[name] ?? 0) + 1;
  if (!allowed.has(name)) wrong.push(`${call}: ${name}: ${(error as Error)?.message ?? String(error)}`);
}

/** A detached ArrayBuffer: its memory was given away. */
function detached(): ArrayBuffer {
  const buffer = new ArrayBuffer(64);
  structuredClone(buffer, { transfer: [buffer] });
  return buffer;
}

/** The wrong values every argument position gets. `closer` closes the object under test when read. */
function badValues(closer: () => void, otherWrapper: object): [string, () => unknown][] {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  return [
    ['undefined', () => undefined],
    ['null', () => null],
    ['true', () => true],
    ['-1', () => -1],
    ['1.5', () => 1.5],
    ['NaN', () => NaN],
    ['2**53', () => 2 ** 53],
    ['string', () => 'x'],
    ['symbol', () => Symbol('x')],
    ['bigint -1', () => -1n],
    ['bigint 2**64', () => 2n ** 64n],
    ['{}', () => ({})],
    ['[]', () => []],
    ['array of 100 000 holes', () => new Array(100_000)],
    ['function', () => () => 0],
    ['detached ArrayBuffer', detached],
    ['zero-length Buffer', () => Buffer.alloc(0)],
    ['SharedArrayBuffer', () => new SharedArrayBuffer(64)],
    ['Uint8Array over a SharedArrayBuffer', () => new Uint8Array(new SharedArrayBuffer(64))],
    ['object of another class', () => otherWrapper],
    ['Proxy that throws', () => new Proxy({}, { get: () => { throw new TypeError('trap'); }, has: () => { throw new TypeError('trap'); } })],
    ['revoked Proxy', () => revoked.proxy],
    ['getter that closes the object', () => new Proxy({}, { get: () => { closer(); return undefined; } })],
    ['list of getters that close the object', () => [new Proxy({}, { get: () => { closer(); return 0; } })]],
    // Shaped like what some methods take, wrong inside.
    ['work request naming another class as MR', () => [{ opcode: 0, sgList: [{ mr: otherWrapper }], remote: { addr: 1n, rkey: 1 } }]],
    ['work request with a raw SGE at address -1', () => [{ opcode: 2, sgList: [{ addr: -1n, length: 1, lkey: 1 }] }]],
    ['attributes with a state out of range', () => ({ qpState: 99, maxWr: -1, srqLimit: 2 ** 40 })],
  ];
}

/** What earlier positions get while a later one is wrong: a few values a method might accept there. */
const plausible: [string, () => unknown][] = [
  ['_', () => undefined],
  ['buffer', () => Buffer.alloc(4096)],
  ['1', () => 1],
];

/** Every method and getter name of `target` up to Object.prototype / EventEmitter.prototype. */
function members(target: object): string[] {
  const names = new Set<string>();
  for (let proto = Object.getPrototypeOf(target); proto && proto !== Object.prototype && proto.constructor.name !== 'EventEmitter'; proto = Object.getPrototypeOf(proto)) {
    for (const name of Object.getOwnPropertyNames(proto)) if (name !== 'constructor' && !name.startsWith('_')) names.add(name);
  }
  return [...names].filter((name) => !['close', 'handle', 'closeSync'].includes(name)).sort();
}

function call(label: string, run: () => unknown): void {
  console.log(label);
  try {
    const result = run();
    if (result instanceof Promise) {
      pending.push({ call: label, promise: result });
      result.catch((error: unknown) => record(label, error));
    }
  } catch (error) {
    record(label, error);
  }
}

/** Each member with no arguments, then each bad value in each of the first three positions. */
function fuzzObject(name: string, target: object, closer: () => void, other: object): void {
  for (const member of members(target)) {
    const descriptor = findDescriptor(target, member);
    if (descriptor?.get) {
      call(`${name}.${member} (get)`, () => (target as Record<string, unknown>)[member]);
      continue;
    }
    const method = (target as Record<string, (...args: unknown[]) => unknown>)[member];
    if (typeof method !== 'function') continue;
    call(`${name}.${member}()`, () => method.call(target));
    for (const [valueName, make] of badValues(closer, other)) {
      call(`${name}.${member}(${valueName})`, () => method.call(target, make()));
      for (const [prefixName, prefix] of plausible) {
        for (let position = 1; position < 3; position++) {
          const args = Array.from({ length: position + 1 }, (_, i) => (i === position ? make() : prefix()));
          call(`${name}.${member}(${`${prefixName}, `.repeat(position)}${valueName})`, () => method.apply(target, args));
        }
      }
    }
  }
}

function findDescriptor(target: object, member: string): PropertyDescriptor | undefined {
  for (let proto = Object.getPrototypeOf(target); proto; proto = Object.getPrototypeOf(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, member);
    if (descriptor) return descriptor;
  }
  return undefined;
}

type Fixture = ReturnType<typeof pair>;
type Target = { make(t: Fixture): { object: object & { close(): unknown }; parent?: () => void } };

// Each target makes a fresh object of its kind from a fresh loopback pair.
const targets: Record<string, Target> = {
  Context: { make: (t) => ({ object: t.context }) },
  ProtectionDomain: { make: (t) => ({ object: t.pair.pd, parent: () => t.context.close() }) },
  MemoryRegion: { make: (t) => ({ object: t.pair.pd.registerMemory(Buffer.alloc(4096), rdma.Access.LOCAL_WRITE | rdma.Access.REMOTE_WRITE), parent: () => t.pair.pd.close() }) },
  MemoryWindow: { make: (t) => ({ object: t.pair.pd.allocMw(rdma.MwType.TYPE_2), parent: () => t.pair.pd.close() }) },
  CompletionChannel: { make: (t) => ({ object: t.context.createCompletionChannel(), parent: () => t.context.close() }) },
  CompletionQueue: { make: (t) => ({ object: t.pair.cqs[0], parent: () => t.context.close() }) },
  QueuePair: { make: (t) => ({ object: t.pair.qps[0], parent: () => t.pair.pd.close() }) },
  UdQueuePair: { make: (t) => ({ object: t.pair.pd.createQp({ qpType: rdma.QpType.UD, sendCq: t.pair.cqs[0] }), parent: () => t.pair.cqs[0].close() }) },
  SharedReceiveQueue: { make: (t) => ({ object: t.pair.pd.createSrq({ maxWr: 8 }), parent: () => t.pair.pd.close() }) },
  AddressHandle: {
    make: (t) => {
      const gid = t.context.gidTable()[0]!;
      return { object: t.pair.pd.createAh({ portNum: 1, grh: { dgid: gid.raw, sgidIndex: gid.index } }), parent: () => t.pair.pd.close() };
    },
  },
  PreparedWorkRequests: {
    make: (t) => {
      const mr = t.pair.pd.registerMemory(Buffer.alloc(64));
      return { object: t.pair.qps[1].prepareRecv([{ sgList: [{ mr }] }]), parent: () => t.pair.qps[1].close() };
    },
  },
  RegistrationCache: { make: (t) => ({ object: t.pair.pd.createRegistrationCache(), parent: () => t.pair.pd.close() }) },
  MappedBuffer: { make: () => ({ object: rdma.allocate(8192) }) },
  CmId: { make: () => ({ object: CmId.create() }) },
  Segment: { make: () => ({ object: rdma.makeSegment(16_384) }) },
  SegmentAccess: {
    make: () => {
      const segment = rdma.makeSegment(16_384);
      return { object: rdma.getSegment(segment.id, { access: 'rdwr' }), parent: () => segment.close() };
    },
  },
};

/** The package's functions, with the same matrix. */
function fuzzFunctions(): void {
  using t = pair();
  for (const [name, fn] of Object.entries(rdma)) {
    if (typeof fn !== 'function' || /^[A-Z]/.test(name)) continue; // classes and enums are covered through their objects
    for (const [valueName, make] of badValues(() => undefined, t.pair.pd)) {
      for (const [prefixName, prefix] of plausible) {
        call(`${name}(${prefixName}, ${valueName})`, () => (fn as (...args: unknown[]) => unknown)(prefix(), make()));
      }
      call(`${name}(${valueName})`, () => (fn as (...args: unknown[]) => unknown)(make()));
    }
  }
}

async function main(name: string): Promise<void> {
  if (name === 'functions') {
    fuzzFunctions();
    return finish();
  }
  const target = targets[name]!;
  {
    using t = pair();
    const { object } = target.make(t);
    const other = name === 'Context' ? t.pair.pd : t.context;
    fuzzObject(name, object, () => object.close(), other);
    call(`${name}.close()`, () => object.close());
    call(`${name}.close() again`, () => object.close());
    fuzzObject(`${name} (closed)`, object, () => undefined, other);
  }
  {
    using t = pair();
    const { object, parent } = target.make(t);
    if (parent) {
      call(`${name}: parent closed`, parent);
      fuzzObject(`${name} (parent closed)`, object, () => undefined, t.context);
    }
  }
  {
    // Parents dropped and collected while the child lives: the child holds them.
    let t: Fixture | undefined = pair();
    const { object } = target.make(t);
    const context = t.context;
    t = undefined;
    for (let i = 0; i < 3; i++) {
      global.gc!();
      await sleep(10);
    }
    fuzzObject(`${name} (parents collected)`, object, () => undefined, context);
    context.close();
  }
  await finish();
}

/** Closing settled what was pending: nothing may still wait. Prints the summary. */
async function finish(): Promise<void> {
  const unsettled = await Promise.race([
    Promise.allSettled(pending.map((p) => p.promise)).then(() => []),
    sleep(20_000).then(() => pending.map((p) => p.call)),
  ]);
  console.log(JSON.stringify({ calls: pending.length, seen, wrong, unsettled: unsettled.slice(0, 5) }));
}

const name = process.argv[2];
if (name === undefined || !(name in targets || name === 'functions')) {
  console.log(JSON.stringify({ targets: [...Object.keys(targets), 'functions'] }));
} else {
  main(name).then(() => process.exit(0), (error: Error) => {
    console.log(JSON.stringify({ fatal: `${error.constructor.name}: ${error.message}` }));
    process.exit(1);
  });
}
