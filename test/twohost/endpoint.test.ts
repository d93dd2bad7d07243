import assert from 'node:assert/strict';
import { test } from 'node:test';

import { listen } from '../../lib';
import { CONNECT_DEADLINE_MS, connectRetrying, pattern, role, side } from './sides';

// An RC connection over rdma_cm between the hosts with the friendly API: host 0 listens on its link
// address, host 1 connects (retrying while there is no listener yet). Messages of sizes around the MTU
// and the 64 KiB limit are echoed; then the client RDMA-reads a region of the server, writes another
// pattern over it and runs atomics on a counter, and both sides check every byte they can see.

const PORT = 18811;
const sizes = [1, 100, 1023, 1024, 1025, 4096, 9000, 32768, 65536, 7, 60000, 2048];
const REGION = 256 << 10;
const timeoutMs = 60_000;

const message = (i: number): Buffer => pattern(`message ${i}`, sizes[i]!);

async function server(): Promise<void> {
  using listener = await listen(role.address, PORT);
  const accepted = listener.accept();
  const timer = setTimeout(() => listener.close(), CONNECT_DEADLINE_MS + 30_000);
  await using endpoint = await accepted.finally(() => clearTimeout(timer));
  assert.equal(endpoint.remoteAddress?.address, role.peer);
  for (let i = 0; i < sizes.length; i++) {
    const got = await endpoint.receive({ timeoutMs });
    assert.ok(got.equals(message(i)), `message ${i} (${sizes[i]} bytes) arrived altered`);
    await endpoint.send(got);
  }
  const region = endpoint.registerMemory(pattern('region', REGION));
  const counter = endpoint.registerMemory(new BigUint64Array([1000n]));
  const describe = (r: { addr: bigint; rkey: number; length: number }) => ({ addr: String(r.addr), rkey: r.rkey, length: r.length });
  await endpoint.send(Buffer.from(JSON.stringify({ region: describe(region.remote()), counter: describe(counter.remote()) })));
  assert.equal((await endpoint.receive({ timeoutMs })).toString(), 'written');
  assert.ok(Buffer.from(region.bytes).equals(pattern('written', REGION)), 'the client\'s RDMA write did not land intact');
  assert.equal(Buffer.from(counter.bytes).readBigUInt64LE(0), 1000n + 1n + 2n + 3n + 1n);
  await endpoint.send(Buffer.from('verified'));
  // The client closes first; then the connection is over for this side too.
  await new Promise<void>((resolve) => (endpoint.closed ? resolve() : endpoint.once('close', () => resolve())));
}

async function client(): Promise<void> {
  await using endpoint = await connectRetrying(PORT, { timeoutMs: 20_000 });
  for (let i = 0; i < sizes.length; i++) {
    await endpoint.send(message(i));
    assert.ok((await endpoint.receive({ timeoutMs })).equals(message(i)), `echo of message ${i} (${sizes[i]} bytes) came back altered`);
  }
  const remote = JSON.parse((await endpoint.receive({ timeoutMs })).toString()) as Record<'region' | 'counter', { addr: string; rkey: number; length: number }>;
  const at = (r: { addr: string; rkey: number; length: number }) => ({ addr: BigInt(r.addr), rkey: r.rkey, length: r.length });
  const region = at(remote.region);
  const counter = at(remote.counter);
  assert.equal(region.length, REGION);
  const local = endpoint.registerMemory(Buffer.alloc(REGION));
  await endpoint.read(local, region, { timeoutMs });
  assert.ok(Buffer.from(local.bytes).equals(pattern('region', REGION)), 'the RDMA read brought back other bytes');
  await endpoint.write(endpoint.registerMemory(pattern('written', REGION)), region, { timeoutMs });
  assert.equal(await endpoint.fetchAndAdd(counter, 1n), 1000n);
  assert.equal(await endpoint.fetchAndAdd(counter, 2n), 1001n);
  assert.equal(await endpoint.fetchAndAdd(counter, 3n), 1003n);
  assert.equal(await endpoint.compareAndSwap(counter, 5n, 0n), 1006n, 'a failed compare leaves the value');
  assert.equal(await endpoint.compareAndSwap(counter, 1006n, 1007n), 1006n);
  await endpoint.send(Buffer.from('written'));
  assert.equal((await endpoint.receive({ timeoutMs })).toString(), 'verified');
}

test('endpoint across the two hosts: echoed messages, RDMA read and write of 256 KiB, atomics', { timeout: 120_000 }, () => side(server, client));
