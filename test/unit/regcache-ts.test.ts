import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Access, OdpTransportCaps, RdmaError } from '../../lib';
import { odpMissing, odpNeeds } from '../../lib/verbs/odp';
import { chooseStrategy } from '../../lib/memory/registration-cache';

const rxe = { generalCaps: 1n, rcOdpCaps: 0x3f, ucOdpCaps: 0, udOdpCaps: 0x23 };
const none = { generalCaps: 0n, rcOdpCaps: 0, ucOdpCaps: 0, udOdpCaps: 0 };

test('odpNeeds: sends and receives always; RC adds write and read, and atomics when granted', () => {
  const { SEND, RECV, WRITE, READ, ATOMIC } = OdpTransportCaps;
  assert.equal(odpNeeds('ud', Access.REMOTE_ATOMIC), SEND | RECV);
  assert.equal(odpNeeds('rc', Access.LOCAL_WRITE), SEND | RECV | WRITE | READ);
  assert.equal(odpNeeds('rc', Access.REMOTE_ATOMIC), SEND | RECV | WRITE | READ | ATOMIC);
});

test('odpMissing says why ODP cannot serve the memory, or nothing when it can', () => {
  assert.equal(odpMissing(rxe), undefined);
  assert.equal(odpMissing(rxe, 'rc', Access.REMOTE_WRITE | Access.REMOTE_ATOMIC), undefined);
  assert.equal(odpMissing(rxe, 'ud'), undefined);
  assert.equal(odpMissing(none), 'the device does not report On-Demand Paging');
  assert.equal(odpMissing({ ...rxe, rcOdpCaps: 0x07 }, 'rc', Access.REMOTE_ATOMIC), 'the device has no ODP READ, ATOMIC on RC');
  assert.equal(odpMissing({ ...rxe, udOdpCaps: 0 }, 'ud'), 'the device has no ODP SEND, RECV on UD');
});

test("chooseStrategy: 'auto' takes ODP that passes the probe, then the monitor, then no caching; explicit choices are kept", () => {
  const misplaces = () => 'ODP misplaces data';
  let probes = 0;
  const counted = () => (probes++, undefined);
  assert.deepEqual(chooseStrategy('auto', undefined, undefined, counted), { strategy: 'odp', reason: "the device has On-Demand Paging and it placed the probe's data right" });
  assert.equal(probes, 1);
  assert.deepEqual(chooseStrategy('auto', undefined, undefined, misplaces), { strategy: 'monitor', reason: 'userfaultfd monitors the memory; no ODP (ODP misplaces data)' });
  assert.equal(chooseStrategy('auto', 'no odp', undefined, counted).strategy, 'monitor');
  assert.equal(probes, 1, 'no probe without ODP capabilities');
  assert.deepEqual(chooseStrategy('auto', undefined, 'userfaultfd: EPERM', misplaces), {
    strategy: 'uncached',
    reason: 'no userfaultfd (userfaultfd: EPERM) and no ODP (ODP misplaces data)',
  });
  assert.deepEqual(chooseStrategy('auto', 'no odp', 'userfaultfd: EPERM'), {
    strategy: 'uncached',
    reason: 'no userfaultfd (userfaultfd: EPERM) and no ODP (no odp)',
  });
  assert.equal(chooseStrategy('odp', undefined, undefined, misplaces).strategy, 'odp', 'an explicit choice is not probed');
  for (const strategy of ['monitor', 'uncached', 'unsafe-unmonitored'] as const) {
    assert.deepEqual(chooseStrategy(strategy, 'no odp', 'no uffd'), { strategy, reason: 'requested' });
  }
  assert.equal(chooseStrategy('odp', undefined, 'no uffd').strategy, 'odp');
  assert.throws(() => chooseStrategy('odp', 'no odp', undefined), (error: RdmaError) => error.code === 'EOPNOTSUPP' && error.verb === 'ibv_reg_mr');
  assert.throws(() => chooseStrategy('fast' as never, undefined, undefined), TypeError);
});
