import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

import { RdmaError, ptraceScope, readFrom, writeTo, type PeerMemoryDescriptor } from '../../lib';
import { patternByte } from '../support/cma-peer';

// Single-copy transfers with another process's private memory (process_vm_readv/writev), every byte
// checked, and the permission rules: another user's process, and Yama's scope 1 with and without the
// peer's PR_SET_PTRACER. In the VM (whose kernel has Yama) as root, with peers run as nobody.
const peer = join(__dirname, '..', 'support', 'cma-peer.js');
const NOBODY = 65_534;

interface Publisher {
  child: ChildProcessWithoutNullStreams;
  descriptor: PeerMemoryDescriptor;
  ask(line: string): Promise<string>;
}

async function publish(size: number, seed: number, allow: 'allow' | 'deny', uid?: number): Promise<Publisher> {
  const child = spawn(process.execPath, [peer, 'publish', String(size), String(seed), allow], { stdio: 'pipe', uid });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`the publisher exited: ${child.stderr.read() ?? ''}`);
  return {
    child,
    descriptor: JSON.parse(first.value as string) as PeerMemoryDescriptor,
    ask: async (line) => {
      child.stdin.write(`${line}\n`);
      return (await lines.next()).value as string;
    },
  };
}

async function stop(publisher: Publisher): Promise<void> {
  publisher.child.stdin.write('exit\n');
  await once(publisher.child, 'exit');
}

test('a peer\'s private 1 MiB Buffer is read in one copy and written back, every byte checked', async () => {
  const size = 1 << 20;
  const publisher = await publish(size, 3, 'allow');
  try {
    const { pid } = publisher.descriptor;
    const target = Buffer.alloc(size);
    assert.equal(readFrom(pid, publisher.descriptor, target), size);
    let wrong = 0;
    for (let i = 0; i < size; i++) if (target[i] !== patternByte(3, i)) wrong++;
    assert.equal(wrong, 0);

    const source = Buffer.alloc(size);
    for (let i = 0; i < size; i++) source[i] = patternByte(9, i);
    assert.equal(writeTo(pid, publisher.descriptor, source), size);
    assert.equal(await publisher.ask('check 9'), 'ok');
  } finally {
    await stop(publisher);
  }
});

test('several remote ranges gather into one buffer; a range in unmapped memory makes a partial transfer', async () => {
  const publisher = await publish(8192, 5, 'allow');
  try {
    const { pid, addr } = publisher.descriptor;
    const base = BigInt(addr);
    const target = Buffer.alloc(200);
    // 100 bytes from offset 4000, then 100 from offset 0: one call, two iovecs.
    assert.equal(readFrom(pid, [{ addr: base + 4000n, length: 100 }, { addr: base, length: 100 }], target), 200);
    for (let i = 0; i < 100; i++) {
      assert.equal(target[i], patternByte(5, 4000 + i));
      assert.equal(target[100 + i], patternByte(5, i));
    }
    // The second range is unmapped (the zero page of the address space): only the first arrives.
    assert.equal(readFrom(pid, [{ addr: base, length: 100 }, { addr: 0x1000n, length: 100 }], target), 100);
  } finally {
    await stop(publisher);
  }
});

test('CMA refusals are RdmaErrors: no such process, wrong arguments, another user\'s memory', async () => {
  assert.throws(() => readFrom(2 ** 22 + 17, { addr: 0x1000n, length: 1 }, Buffer.alloc(1)), (e: RdmaError) => e.code === 'ESRCH' && e.verb === 'process_vm_readv');
  assert.throws(() => readFrom(1, [], Buffer.alloc(1)), RangeError);
  assert.throws(() => readFrom(1, { addr: -1n, length: 1 }, Buffer.alloc(1)), RangeError);
  assert.throws(() => readFrom(0, { addr: 0n, length: 1 }, Buffer.alloc(1)), RangeError);
  // nobody may not read root's memory, whatever Yama says.
  const ours = Buffer.from('root only');
  const descriptor = { pid: process.pid, addr: `0x${(await import('../../lib/native')).native.addressOf(ours.buffer as ArrayBuffer, ours.byteOffset).toString(16)}`, length: ours.length };
  const run = spawnSync(process.execPath, [peer, 'read', JSON.stringify(descriptor)], { uid: NOBODY, encoding: 'utf8' });
  const outcome = JSON.parse(run.stdout) as { code?: string; message?: string };
  assert.equal(outcome.code, 'EPERM', run.stdout + run.stderr);
});

// Each scope the VM can be set to and back (3 cannot be undone until reboot), as root.
const scopeFile = '/proc/sys/kernel/yama/ptrace_scope';

async function readAsNobody(allow: 'allow' | 'deny'): Promise<{ copied?: number; sum?: number; code?: string; message?: string }> {
  const publisher = await publish(4096, 7, allow, NOBODY);
  try {
    const run = spawnSync(process.execPath, [peer, 'read', JSON.stringify(publisher.descriptor)], { uid: NOBODY, encoding: 'utf8' });
    return JSON.parse(run.stdout) as { copied?: number; sum?: number; code?: string; message?: string };
  } finally {
    await stop(publisher);
  }
}

test('Yama: scope 0 lets a same-user peer in; scope 1 only once the peer allows it (PR_SET_PTRACER); scope 2 not without CAP_SYS_PTRACE', async () => {
  const original = ptraceScope();
  assert.notEqual(original, undefined, 'the VM kernel has Yama');
  const expected = Buffer.from(Array.from({ length: 4096 }, (_, i) => patternByte(7, i))).reduce((a, b) => (a + b) % 65_521, 0);
  const read = { copied: 4096, sum: expected };
  try {
    writeFileSync(scopeFile, '0');
    assert.deepEqual(await readAsNobody('deny'), read);
    writeFileSync(scopeFile, '1');
    const denied = await readAsNobody('deny');
    assert.equal(denied.code, 'EPERM');
    assert.match(denied.message!, /ptrace_scope 1: process \d+ must call allowPeerAccess/);
    assert.deepEqual(await readAsNobody('allow'), read);
    writeFileSync(scopeFile, '2');
    const refused = await readAsNobody('allow');
    assert.equal(refused.code, 'EPERM');
    assert.match(refused.message!, /ptrace_scope 2 allows it only with CAP_SYS_PTRACE/);
  } finally {
    writeFileSync(scopeFile, String(original));
  }
});
