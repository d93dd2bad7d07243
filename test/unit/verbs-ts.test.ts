import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, flagNames } from '../../lib';
import { toByteRange } from '../../lib/core/buffers';
import { CompletionBatch, WC_WORDS } from '../../lib/verbs/completion';
import { Mtu, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode, enumName, mtuBytes, mtuFromBytes } from '../../lib/verbs/constants';
import { RdmaError, errnoName, rdmaError } from '../../lib/core/errors';
import { toNativeRecvWr, toNativeSendWr, type RecvWorkRequest } from '../../lib/verbs/qp/work-request';

test('toByteRange normalizes every buffer kind and checks bounds', () => {
  const ab = new ArrayBuffer(100);
  assert.deepEqual(toByteRange(ab), { arrayBuffer: ab, offset: 0, length: 100 });
  assert.deepEqual(toByteRange(new Uint32Array(ab, 8, 4)), { arrayBuffer: ab, offset: 8, length: 16 });
  assert.deepEqual(toByteRange(new Uint32Array(ab, 8, 4), 4, 8), { arrayBuffer: ab, offset: 12, length: 8 });
  assert.deepEqual(toByteRange(new DataView(ab, 50), 50), { arrayBuffer: ab, offset: 100, length: 0 });
  assert.throws(() => toByteRange(ab, 101), RangeError);
  assert.throws(() => toByteRange(ab, 10, 91), RangeError);
  assert.throws(() => toByteRange(ab, 1.5), RangeError);
  assert.throws(() => toByteRange('x' as never), TypeError);
  assert.throws(() => toByteRange(new Uint8Array(new SharedArrayBuffer(8))), TypeError);
});

test('CompletionBatch reads the native layout and builds objects', () => {
  const batch = new CompletionBatch(2);
  assert.equal(batch.capacity, 2);
  assert.equal(batch.words.length, 2 * WC_WORDS);
  const w = batch.words;
  const second = WC_WORDS;
  w[second] = 0x89abcdef; // wr_id low
  w[second + 1] = 0x01234567; // wr_id high
  w[second + 2] = WcStatus.REM_ACCESS_ERR;
  w[second + 3] = WcOpcode.RECV_RDMA_WITH_IMM;
  w[second + 4] = 0x81;
  w[second + 5] = 4096;
  w[second + 6] = 0xcafe;
  w[second + 7] = 17;
  w[second + 9] = WcFlags.WITH_IMM;
  batch.count = 2;
  const c = batch.get(1);
  assert.equal(c.wrId, 0x0123456789abcdefn);
  assert.equal(batch.wrId(1), 0x0123456789abcdefn);
  w[second + 1] = 0x00012345; // within 2^53: exact as a number
  assert.equal(batch.wrIdNumber(1), Number(0x0001234589abcdefn));
  w[second + 1] = 0x01234567;
  assert.equal(c.statusName, 'REM_ACCESS_ERR');
  assert.equal(c.opcodeName, 'RECV_RDMA_WITH_IMM');
  assert.equal(c.vendorErr, 0x81);
  assert.equal(c.byteLen, 4096);
  assert.equal(c.immData, 0xcafe);
  assert.equal(c.invalidatedRkey, undefined);
  assert.equal(c.qpNum, 17);
  assert.equal(batch.get(0).immData, undefined);
  assert.equal(batch.toObjects().length, 2);
  assert.equal([...batch].length, 2);
  assert.throws(() => batch.get(2), RangeError);
  assert.throws(() => new CompletionBatch(0), RangeError);
});

test('send work requests translate flags, remote and atomics', () => {
  const remote = { addr: 0x1000n, rkey: 42 };
  const wr = toNativeSendWr({ wrId: 3n, opcode: WrOpcode.RDMA_WRITE, inline: true, fence: true, solicited: true, remote, sgList: [{ addr: 1n, length: 2, lkey: 3 }] });
  assert.equal(wr.sendFlags, SendFlags.SIGNALED | SendFlags.INLINE | SendFlags.FENCE | SendFlags.SOLICITED);
  assert.equal(wr.remoteAddr, 0x1000n);
  assert.equal(wr.rkey, 42);
  assert.deepEqual(wr.sgList, [{ addr: 1n, length: 2, lkey: 3 }]);
  assert.equal(toNativeSendWr({ opcode: WrOpcode.SEND, signaled: false }).sendFlags, 0);
  assert.equal(toNativeSendWr({ opcode: WrOpcode.SEND }).wrId, 0);
  const atomic = toNativeSendWr({ opcode: WrOpcode.ATOMIC_CMP_AND_SWP, compareAdd: 1n, swap: 2n, remote });
  assert.deepEqual([atomic.compareAdd, atomic.swap], [1n, 2n]);
  const inline = toNativeSendWr({ opcode: WrOpcode.SEND, inline: true, sgList: [{ buffer: new Uint8Array(new ArrayBuffer(10), 2, 5) }] });
  assert.deepEqual({ ...inline.sgList[0], buffer: undefined }, { buffer: undefined, offset: 2, length: 5 });
  assert.throws(() => toNativeSendWr(null as never), TypeError);
  assert.deepEqual(toNativeRecvWr({ wrId: 9, sgList: [] }), { wrId: 9, sgList: [] });
});

test('enum names, MTU conversions and errors', () => {
  assert.equal(enumName(WcStatus, 5), 'WR_FLUSH_ERR');
  assert.equal(enumName(WcStatus, 999), '(999)');
  assert.equal(mtuBytes(Mtu.MTU_1024), 1024);
  assert.equal(mtuFromBytes(1500), Mtu.MTU_1024);
  assert.equal(mtuFromBytes(4096), Mtu.MTU_4096);
  assert.equal(mtuFromBytes(100), undefined);
  const error = rdmaError('wait', 'ETIMEDOUT', 'late');
  assert.ok(error instanceof RdmaError && error instanceof Error);
  assert.deepEqual([error.code, error.errno, error.verb, error.name], ['ETIMEDOUT', 110, 'wait', 'RdmaError']);
  // The one errno table, both ways (the CM's and PMIx's errnos are named through it).
  assert.deepEqual([104, 99, 95, 11, 35, 9999].map(errnoName), ['ECONNRESET', 'EADDRNOTAVAIL', 'EOPNOTSUPP', 'EAGAIN', 'EDEADLK', 'E9999']);
  assert.equal(rdmaError('x', 'EPROTO', 'y').errno, 71);
});

test('flagNames names the set bits and refuses what is not an integer with a TypeError', () => {
  assert.deepEqual(flagNames(Access, Access.LOCAL_WRITE | Access.REMOTE_READ), ['LOCAL_WRITE', 'REMOTE_READ']);
  assert.deepEqual(flagNames(Access, BigInt(Access.REMOTE_WRITE)), ['REMOTE_WRITE']);
  for (const bad of ['x', '1', 1.5, -1, NaN, null, undefined, {}]) {
    assert.throws(() => flagNames(Access, bad as unknown as number), TypeError, String(bad));
  }
});

test('a receive work request needs an sgList: {} is a TypeError, not an empty receive', () => {
  for (const bad of [{}, { wrId: 1 }, { sgList: 'x' }, { sgList: null }]) {
    assert.throws(() => toNativeRecvWr(bad as unknown as RecvWorkRequest), TypeError, JSON.stringify(bad));
  }
  assert.deepEqual(toNativeRecvWr({ wrId: 7, sgList: [] }), { wrId: 7, sgList: [] });
});
