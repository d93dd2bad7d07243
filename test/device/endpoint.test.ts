import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';

import { CompletionError, connect, listen, type Endpoint, type Listener, type RdmaError } from '../../lib';
import { random } from '../support/fixture';
import { start, waitFor } from '../support/processes';

const HOST = '10.0.2.15';
let nextPort = 21_000 + (process.pid % 1000) * 10;
const peerScript = resolve(__dirname, '..', 'support', 'peer.js');

async function connected(options = {}): Promise<{ listener: Listener; client: Endpoint; server: Endpoint } & AsyncDisposable> {
  const listener = await listen(HOST, nextPort++, options);
  const [client, server] = await Promise.all([connect(HOST, listener.address!.port, options), listener.accept()]);
  return {
    listener, client, server,
    [Symbol.asyncDispose]: async () => {
      await Promise.all([client.close(), server.close()]);
      listener.close();
    },
  };
}

test('messages of many sizes arrive intact and in order, past the credit window', async () => {
  await using pair = await connected({ receiveDepth: 4, maxMessageSize: 8192 });
  const sent = Array.from({ length: 40 }, (_, i) => random(1 + ((i * 997) % 8192)));
  const sending = (async () => { for (const message of sent) await pair.client.send(message); })();
  const received: Buffer[] = [];
  for await (const message of pair.server) {
    received.push(message);
    if (received.length === sent.length) break;
  }
  await sending;
  assert.deepEqual(received, sent);
  await assert.rejects(pair.client.send(Buffer.alloc(8193)), RangeError);
});

test('a reader that does not read holds the sender at the credit window, and nothing is lost', async () => {
  await using pair = await connected({ receiveDepth: 4 });
  let sent = 0;
  const sending = (async () => {
    for (let i = 0; i < 12; i++) {
      await pair.client.send(Buffer.from(`m${i}`));
      sent++;
    }
  })();
  // However long it waits, the sender cannot get past the 4 receives the reader granted.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(sent, 4);
  const received: string[] = [];
  for (let i = 0; i < 12; i++) received.push((await pair.server.receive({ timeoutMs: 30_000 })).toString());
  await sending;
  assert.deepEqual(received, Array.from({ length: 12 }, (_, i) => `m${i}`));
});

test('a send waiting for a credit rejects when the connection ends, as does a receive', async () => {
  await using pair = await connected({ receiveDepth: 2 });
  for (let i = 0; i < 2; i++) await pair.client.send(Buffer.from(`m${i}`));
  const waiting = pair.client.send(Buffer.from('no credit'));
  const receiving = pair.client.receive();
  await pair.server.close();
  await Promise.all([waiting, receiving].map((pending) => assert.rejects(pending, (error: RdmaError) => error.code === 'ECONNRESET')));
});

test('write, read, compareAndSwap and fetchAndAdd against a peer region', async () => {
  await using pair = await connected();
  const region = pair.server.registerMemory(new BigUint64Array(8));
  const words = new BigUint64Array(region.bytes.buffer, region.bytes.byteOffset, 8);
  const descriptor = region.remote();
  const data = pair.client.registerMemory(random(64));
  await pair.client.write(data, descriptor);
  assert.deepEqual(region.bytes, data.bytes);
  words[0] = 5n;
  const back = pair.client.registerMemory(new Uint8Array(64));
  await pair.client.read(back, descriptor);
  assert.deepEqual(Buffer.from(back.bytes.subarray(0, 8)).readBigUInt64LE(0), 5n);
  assert.equal(await pair.client.fetchAndAdd({ addr: descriptor.addr, rkey: descriptor.rkey }, 10n), 5n);
  assert.equal(words[0], 15n);
  assert.equal(await pair.client.compareAndSwap({ addr: descriptor.addr, rkey: descriptor.rkey }, 15n, 99n), 15n);
  assert.equal(await pair.client.compareAndSwap({ addr: descriptor.addr, rkey: descriptor.rkey }, 15n, 1n), 99n);
  assert.equal(words[0], 99n);
  // Concurrent atomics each get their own old value.
  words[1] = 0n;
  const olds = await Promise.all(Array.from({ length: 10 }, () => pair.client.fetchAndAdd({ addr: descriptor.addr + 8n, rkey: descriptor.rkey }, 1n)));
  assert.deepEqual([...olds].sort((a, b) => Number(a - b)), Array.from({ length: 10 }, (_, i) => BigInt(i)));
  // A bad rkey fails that operation with its completion status, and ends the connection.
  await assert.rejects(pair.client.write(data, { addr: descriptor.addr, rkey: descriptor.rkey ^ 0xff00 }), (e: Error) =>
    e instanceof CompletionError && e.completion.statusName === 'REM_ACCESS_ERR');
  await assert.rejects(pair.client.receive(), (e: RdmaError) => e.code === 'ECONNRESET');
});

test('timeouts and AbortSignal end a wait without ending the connection', async () => {
  await using pair = await connected();
  await assert.rejects(pair.server.receive({ timeoutMs: 100 }), (e: RdmaError) => e.code === 'ETIMEDOUT');
  const controller = new AbortController();
  const receiving = pair.server.receive({ signal: controller.signal });
  controller.abort();
  await assert.rejects(receiving, { name: 'AbortError' });
  await assert.rejects(pair.server.receive({ signal: AbortSignal.abort() }), { name: 'AbortError' });
  await pair.client.send(Buffer.from('still here'));
  assert.equal((await pair.server.receive({ timeoutMs: 10_000 })).toString(), 'still here');
});

test('close() settles everything pending on both sides with typed errors', async () => {
  const pair = await connected();
  const pendingHere = assert.rejects(pair.client.receive(), (e: RdmaError) => e.code === 'ECANCELED');
  const pendingThere = assert.rejects(pair.server.receive(), (e: RdmaError) => e.code === 'ECONNRESET');
  await pair.client.close();
  await pair.client.close();
  await Promise.all([pendingHere, pendingThere]);
  await assert.rejects(pair.client.send(Buffer.from('late')), (e: RdmaError) => e.code === 'ECANCELED');
  assert.equal(pair.server.closed, true);
  await pair.server.close();
  pair.listener.close();
  await assert.rejects(pair.listener.accept(), (e: RdmaError) => e.code === 'ECANCELED');
});

test('connection refused and unreachable peers reject connect()', async () => {
  await assert.rejects(connect(HOST, nextPort++), (e: RdmaError) => e.code === 'ECONNREFUSED');
  await assert.rejects(connect('192.0.2.1', 1, { timeoutMs: 1000 }), (e: RdmaError) => typeof e.code === 'string' && e.code !== 'ECONNREFUSED');
});

test('a peer process killed mid-transfer makes pending operations reject within a bounded time', async () => {
  const listener = await listen(HOST, nextPort++);
  const peer = start([process.execPath, peerScript, 'stream', HOST, String(listener.address!.port)]);
  const endpoint = await listener.accept();
  for (let i = 0; i < 20; i++) assert.equal((await endpoint.receive({ timeoutMs: 30_000 })).toString(), `message ${i}`);
  // Drain, then wait with nothing in flight from a peer about to die.
  const started = Date.now();
  peer.kill('SIGKILL');
  await assert.rejects((async () => { for (;;) await endpoint.receive(); })(), (e: RdmaError) => e.code === 'ECONNRESET');
  assert.ok(Date.now() - started < 60_000, 'noticed the dead peer in bounded time');
  await peer.done;
  await endpoint.close();
  listener.close();
});

test('bad operation options reject before anything is posted; the connection and its slots stay whole', async () => {
  await using pair = await connected({ sendDepth: 2 });
  const region = pair.server.registerMemory(new BigUint64Array(1));
  const local = pair.client.registerMemory(new ArrayBuffer(8));
  const bad = [null, { signal: 'x' }, { signal: {} }, { timeoutMs: -1 }, { timeoutMs: 'soon' }] as never[];
  for (const options of bad) {
    await assert.rejects(pair.client.send(Buffer.from('x'), options), (e: Error) => e instanceof TypeError || e instanceof RangeError);
    await assert.rejects(pair.client.write(local, region.remote(), options), (e: Error) => e instanceof TypeError || e instanceof RangeError);
    await assert.rejects(pair.client.fetchAndAdd(region.remote(), 1n, options), (e: Error) => e instanceof TypeError || e instanceof RangeError);
    await assert.rejects(pair.server.receive(options), (e: Error) => e instanceof TypeError || e instanceof RangeError);
  }
  // Atomics the QP refuses give their send slot back: more of them than the send depth, then real work.
  for (let i = 0; i < 5; i++) {
    await assert.rejects(pair.client.fetchAndAdd({ addr: -1n, rkey: region.rkey }, 1n), (e: Error) => e instanceof TypeError || e instanceof RangeError);
  }
  assert.equal(await pair.client.fetchAndAdd(region.remote(), 5n), 0n);
  await pair.client.send(Buffer.from('still here'));
  assert.equal((await pair.server.receive({ timeoutMs: 30_000 })).toString(), 'still here');
});

test('a host name that does not resolve is an RdmaError naming the verb', async () => {
  await assert.rejects(connect('no-such-host.invalid', 1), (e: RdmaError) => e.name === 'RdmaError' && e.code === 'EHOSTUNREACH' && e.verb === 'rdma_resolve_addr');
  await assert.rejects(listen('no-such-host.invalid', 1), (e: RdmaError) => e.name === 'RdmaError' && e.code === 'EHOSTUNREACH' && e.verb === 'rdma_bind_addr');
});

// A listener nobody references keeps serving (and the process alive) until closed, as a net.Server does;
// unref() lets the process exit.
const lib = resolve(__dirname, '..', '..', 'lib');
const listenerScript = (port: number, unref: boolean) => `
  const { listen } = require(${JSON.stringify(lib)});
  listen(${JSON.stringify(HOST)}, ${port}).then(async (listener) => {
    ${unref ? 'listener.unref();' : ''}
    listener.accept().then(async (endpoint) => {
      await endpoint.send(Buffer.from('served'));
      setTimeout(() => process.exit(0), 500);
    });
    listener = undefined;
    for (let i = 0; i < 10; i++) { global.gc(); await new Promise((r) => setTimeout(r, 20)); }
    console.log('listening');
  });`;

test('a listener the program holds no reference to survives garbage collection and serves', async () => {
  const port = nextPort++;
  const server = start([process.execPath, '--expose-gc', '-e', listenerScript(port, false)]);
  await waitFor(() => server.output().includes('listening'), 'the listener');
  await using client = await connect(HOST, port);
  assert.equal((await client.receive({ timeoutMs: 30_000 })).toString(), 'served');
  assert.equal((await server.done).status, 0, server.output());
});

test('an unref()ed listener lets the process exit', async () => {
  const server = start([process.execPath, '--expose-gc', '-e', listenerScript(nextPort++, true)], 30_000);
  const { status, output } = await server.done;
  assert.equal(status, 0, output);
  assert.match(output, /listening/);
});
