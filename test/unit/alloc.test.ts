import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync } from 'node:fs';
import { test } from 'node:test';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';

import { RdmaError, allocate } from '../../lib';
import { memfds } from '../support/segment-peer';

// Mapped buffers need no RDMA device: these run on the host.

/** The /proc/self/maps line of the mapping starting at `address`, if any: none once it is unmapped. */
function mapping(address: bigint): string | undefined {
  const prefix = `${address.toString(16)}-`;
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .find((line) => line.startsWith(prefix));
}

/**
 * The line of the mapping holding `address`, if any: a live mapping may have been merged by the kernel with
 * an adjacent one of the same kind (the sanitizer runtime maps such neighbours: scripts/sanitize.sh).
 */
function mappingHolding(address: bigint): string | undefined {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .find((line) => {
      const [start, end] = line.split(' ', 1)[0].split('-').map((hex) => BigInt(`0x${hex}`));
      return start <= address && address < end;
    });
}

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    global.gc!();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('allocate maps zeroed, page-aligned memory seen as a Buffer and an ArrayBuffer', () => {
  using buffer = allocate(10_000);
  assert.equal(buffer.length, 10_000);
  assert.equal(buffer.pageSize, 4096);
  assert.equal(buffer.address % 4096n, 0n);
  assert.equal(buffer.bytes.length, 10_000);
  assert.equal(buffer.arrayBuffer.byteLength, 10_000);
  assert.ok(buffer.bytes.every((byte) => byte === 0));
  buffer.bytes.write('hello');
  assert.equal(Buffer.from(buffer.arrayBuffer, 0, 5).toString(), 'hello');
  assert.match(mappingHolding(buffer.address)!, / rw-p /);
  assert.throws(() => allocate(0), RangeError);
  assert.throws(() => allocate(1.5), RangeError);
  assert.throws(() => allocate(4096, { hugePages: 'giant' as never }), TypeError);
});

test('close() unmaps at once and leaves no way to reach the memory from JS', () => {
  const buffer = allocate(8192);
  const view = buffer.bytes;
  const typed = new Float64Array(buffer.arrayBuffer, 8, 4);
  const address = buffer.address;
  buffer.close();
  buffer.close(); // idempotent
  assert.equal(buffer.closed, true);
  assert.equal(buffer.mapped, false);
  assert.equal(view.length, 0);
  assert.equal(typed.length, 0);
  assert.equal(view[0], undefined);
  assert.throws(() => buffer.bytes, TypeError);
  assert.throws(() => buffer.remap(), TypeError);
  // The pages are gone: what stays until the last ArrayBuffer is collected is an inaccessible reservation.
  assert.match(mappingHolding(address)!, / ---p /);
});

test('garbage collection unmaps a buffer once neither it nor a view of its memory is reachable', async () => {
  let buffer: ReturnType<typeof allocate> | undefined = allocate(1 << 20);
  const address = buffer.address;
  let view: Buffer | undefined = buffer.bytes;
  view[0] = 1;
  buffer = undefined;
  await collect();
  assert.equal(view[0], 1, 'a view keeps the memory mapped');
  assert.match(mappingHolding(address)!, / rw-p /);
  view = undefined;
  await collect();
  assert.equal(mapping(address), undefined);
});

test('freed memory is released after its views are collected; the address range is then free again', async () => {
  const buffer = allocate(4 * 4096);
  const address = buffer.address;
  buffer.bytes.fill(1);
  buffer.close();
  await collect();
  assert.equal(mapping(address), undefined);
  // Nothing is left there: the same address can be mapped again (MAP_FIXED_NOREPLACE).
  using again = allocate(4 * 4096, { address });
  assert.equal(again.address, address);
  assert.ok(again.bytes.every((byte) => byte === 0));
  assert.throws(() => allocate(4096, { address }), (error: RdmaError) => error.code === 'EEXIST' && error.verb === 'mmap');
  assert.throws(() => allocate(4096, { address: address + 1n }), RangeError);
});

test('unmap, remap, discard and move change the pages and detach old views', () => {
  using buffer = allocate(3 * 4096);
  buffer.bytes.fill(7);
  const before = buffer.bytes;
  buffer.remap();
  assert.equal(before.length, 0);
  assert.ok(buffer.bytes.every((byte) => byte === 0), 'fresh pages');
  buffer.bytes.fill(8);
  buffer.unmap();
  assert.equal(buffer.mapped, false);
  assert.throws(() => buffer.bytes, TypeError);
  assert.throws(() => buffer.unmap(), TypeError);
  assert.match(mappingHolding(buffer.address)!, / ---p /);
  buffer.remap();
  assert.ok(buffer.bytes.every((byte) => byte === 0));
  buffer.bytes.fill(9);
  const kept = buffer.bytes;
  buffer.discard(4096, 4096);
  assert.equal(kept.length, 3 * 4096, 'discard keeps the mapping (and views)');
  assert.deepEqual([kept[0], kept[4096], kept[8192]], [9, 0, 9]);
  assert.throws(() => buffer.discard(100, 4096), RangeError);
  assert.throws(() => buffer.discard(0, 4 * 4096), RangeError);
  const address = buffer.address;
  buffer.move();
  assert.notEqual(buffer.address, address);
  assert.equal(kept.length, 0);
  assert.deepEqual([buffer.bytes[0], buffer.bytes[4096], buffer.bytes[8192]], [9, 0, 9], 'mremap moves the contents');
});

test('transparent huge pages: a 2 MiB-aligned mapping advised MADV_HUGEPAGE', () => {
  using buffer = allocate(3 << 20, { hugePages: 'transparent' });
  assert.equal(buffer.address % BigInt(2 << 20), 0n);
  assert.equal(buffer.pageSize, 4096);
  buffer.bytes.fill(1);
  const smaps = readFileSync('/proc/self/smaps', 'utf8');
  const start = smaps.indexOf(`${buffer.address.toString(16)}-`);
  assert.match(smaps.slice(start, smaps.indexOf('VmFlags', start) + 200), /VmFlags:.* hg/);
});

test('a shareable buffer is a shared mapping of its own sealed memfd, transparent huge pages included', () => {
  for (const hugePages of [undefined, 'transparent'] as const) {
    using buffer = allocate(3 << 20, { shareable: true, hugePages });
    if (hugePages) assert.equal(buffer.address % BigInt(2 << 20), 0n);
    buffer.bytes.fill(7);
    const line = readFileSync('/proc/self/maps', 'utf8').split('\n').find((l) => l.startsWith(`${buffer.address.toString(16)}-`));
    assert.match(line ?? '', /^\S+ rw-s .*\/memfd:rdma-node buffer/);
    // Sealed: whoever holds the file (a peer it was exported to) can neither shrink it under a mapping
    // or a registration nor grow it.
    const paths = memfds('rdma-node buffer').map((fd) => `/proc/self/fd/${fd}`);
    assert.ok(paths.length > 0);
    for (const path of paths) {
      const { size } = statSync(path);
      for (const length of [0, size - 4096, size + 4096]) assert.throws(() => truncateSync(path, length), { code: 'EPERM' }, `${path} to ${length}`);
    }
    assert.ok(buffer.bytes.every((b) => b === 7));
  }
  assert.throws(() => allocate(4096, { shareable: 1 as unknown as boolean }), TypeError);
});

test('a mapped buffer cannot be transferred to another thread: it is copied', () => {
  using buffer = allocate(4096);
  buffer.bytes[0] = 42;
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(buffer.arrayBuffer, [buffer.arrayBuffer]);
  const received = receiveMessageOnPort(port2)!.message as ArrayBuffer;
  assert.equal(buffer.arrayBuffer.byteLength, 4096, 'still attached here');
  assert.equal(new Uint8Array(received)[0], 42);
  buffer.bytes[0] = 43;
  assert.equal(new Uint8Array(received)[0], 42, 'a copy, not the memory');
  port1.close();
});

test('discard ranges are checked without overflow: a range wrapping past 2^64 never reaches the mapping before', () => {
  // Two adjacent mappings: a range of two pages given back, then mapped again page by page.
  const range = allocate(8192);
  const address = range.address;
  range.close();
  const before = allocate(4096, { address });
  const buffer = allocate(4096, { address: address + 4096n });
  before.bytes.fill(7);
  // offset + length wraps to 4096: without an overflow-safe check this is madvise(address - 4096, 8192).
  const discard = buffer.discard as unknown as (offset: bigint, length: bigint) => void;
  assert.throws(() => discard.call(buffer, 2n ** 64n - 4096n, 8192n), RangeError);
  assert.throws(() => buffer.discard(4096, 4096), RangeError);
  assert.equal(before.bytes.every((byte) => byte === 7), true, 'the neighbouring mapping keeps its bytes');
  buffer.close();
  before.close();
});
