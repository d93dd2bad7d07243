import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatGid, formatGuid, gidIpv4, isZeroGid, parseGid } from '../../lib/core/gid';

test('formatGid prints eight 4-digit groups', () => {
  const gid = new Uint8Array([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0x12, 0x34, 0x56]);
  assert.equal(formatGid(gid), 'fe80:0000:0000:0000:5054:00ff:fe12:3456');
  assert.throws(() => formatGid(new Uint8Array(4)), RangeError);
});

test('parseGid reads the printed form, IPv6 shorthand, IPv4-mapped and 32 hex digits', () => {
  const text = 'fe80:0000:0000:0000:5054:00ff:fe12:3456';
  assert.equal(formatGid(parseGid(text)), text);
  assert.equal(formatGid(parseGid('fe80::5054:ff:fe12:3456')), text);
  assert.equal(formatGid(parseGid('::ffff:10.0.2.15')), '0000:0000:0000:0000:0000:ffff:0a00:020f');
  assert.equal(formatGid(parseGid('fe80000000000000505400fffe123456')), text);
  assert.equal(formatGid(parseGid('::')), '0000:0000:0000:0000:0000:0000:0000:0000');
  for (const bad of ['', 'fe80', '1::2::3', 'g::1', '::ffff:300.1.1.1', '1:2:3:4:5:6:7:8:9']) {
    assert.throws(() => parseGid(bad), RangeError, bad);
  }
});

test('gidIpv4 recognizes only IPv4-mapped GIDs', () => {
  assert.equal(gidIpv4(parseGid('::ffff:192.168.1.2')), '192.168.1.2');
  assert.equal(gidIpv4(parseGid('fe80::1')), undefined);
  assert.equal(gidIpv4(parseGid('::1:ffff:0:0')), undefined);
  assert.equal(isZeroGid(new Uint8Array(16)), true);
  assert.equal(isZeroGid(parseGid('::1')), false);
});

test('formatGuid prints four groups', () => {
  assert.equal(formatGuid(0x505400fffe123456n), '5054:00ff:fe12:3456');
  assert.equal(formatGuid(1n), '0000:0000:0000:0001');
});
