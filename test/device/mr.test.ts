import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, RdmaError } from '../../lib';
import { open } from '../support/fixture';

test('memory regions over Buffer, ArrayBuffer and typed arrays, with offset and length', () => {
  using context = open();
  const pd = context.allocPd();
  const backing = new ArrayBuffer(16384);
  const cases = [
    { source: Buffer.alloc(100), length: 100 },
    { source: backing, length: 16384 },
    { source: new Float64Array(backing, 8, 10), length: 80 },
    { source: new Uint8Array(4096), length: 4096 },
  ];
  for (const { source, length } of cases) {
    const mr = pd.registerMemory(source, Access.LOCAL_WRITE);
    assert.equal(mr.length, length);
    assert.equal(mr.bytes.byteLength, length);
    assert.ok(mr.lkey !== 0 || mr.rkey !== 0);
    mr.close();
  }
  const part = pd.registerMemory(backing, Access.LOCAL_WRITE, { offset: 4096, length: 100 });
  assert.equal(part.length, 100);
  assert.equal(part.bytes.byteOffset, 4096);
  const whole = pd.registerMemory(backing);
  assert.equal(part.addr - whole.addr, 4096n);
  assert.deepEqual(part.remote(10, 20), { addr: part.addr + 10n, rkey: part.rkey, length: 20 });
  assert.throws(() => part.remote(90, 20), RangeError);
  assert.throws(() => part.remote(0, 'x' as unknown as number), TypeError);
  assert.throws(() => part.remote('1' as unknown as number), TypeError);
  assert.throws(() => part.remote(0, 1.5), RangeError);
  assert.throws(() => part.remote(0, NaN), RangeError);
});

test('every access flag combination the device accepts registers; invalid ones are EINVAL', () => {
  using context = open();
  const pd = context.allocPd();
  const buffer = Buffer.alloc(4096);
  for (const access of [
    0,
    Access.LOCAL_WRITE,
    Access.LOCAL_WRITE | Access.REMOTE_WRITE,
    Access.REMOTE_READ,
    Access.LOCAL_WRITE | Access.REMOTE_ATOMIC,
    Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC,
    Access.LOCAL_WRITE | Access.MW_BIND,
  ]) {
    pd.registerMemory(buffer, access).close();
  }
  // Remote write without local write is forbidden by the verbs spec.
  assert.throws(() => pd.registerMemory(buffer, Access.REMOTE_WRITE), (e: RdmaError) => e.code === 'EINVAL' && e.verb === 'ibv_reg_mr');
});

test('ODP registration works where queryDevice reports ODP, and is a clear error where not', () => {
  using context = open();
  const pd = context.allocPd();
  const odp = (context.queryDevice().odpCaps.generalCaps & 1n) !== 0n;
  const register = () => pd.registerMemory(Buffer.alloc(8192), Access.LOCAL_WRITE | Access.ON_DEMAND);
  if (odp) register().close();
  else assert.throws(register, (e: RdmaError) => e instanceof RdmaError && ['EOPNOTSUPP', 'EINVAL'].includes(e.code));
});

test('deregistration is idempotent and the region is unusable after it', () => {
  using context = open();
  const mr = context.allocPd().registerMemory(Buffer.alloc(64));
  mr.close();
  mr.close();
  assert.equal(mr.closed, true);
  assert.throws(() => mr.rkey, TypeError);
});
