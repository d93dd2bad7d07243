import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';

import { CreditWindow, MessageKind, decodeHello, decodeImm, encodeHello, encodeImm } from '../../lib/endpoint/protocol';
import { formatIpv6, parseGid } from '../../lib/core/gid';
import { flag, intOption, parseOptions, stringOption } from '../../lib/core/argv';
import { DEST_BYTES, formatDest, parseDest } from '../../lib/tools/pingpong-wire';
import { decodeInfo, encodeInfo, pingData } from '../../lib/tools/rping';
import { splitUdReceive, udReceiveBytes } from '../../lib/verbs/qp/ud';

const cli = resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');

test('endpoint hello survives the transport padding and rejects foreign private data', () => {
  const hello = { maxMessageSize: 65536, credits: 32 };
  const padded = Buffer.concat([encodeHello(hello), Buffer.alloc(46)]);
  assert.deepEqual(decodeHello(padded), hello);
  assert.equal(decodeHello(Buffer.alloc(56)), undefined);
  assert.equal(decodeHello(Buffer.from('short')), undefined);
});

test('immediate data carries the kind and up to 24 bits of credits', () => {
  assert.deepEqual(decodeImm(encodeImm(MessageKind.DATA, 5)), { kind: MessageKind.DATA, credits: 5 });
  assert.deepEqual(decodeImm(encodeImm(MessageKind.CREDITS, 0xffffff)), { kind: MessageKind.CREDITS, credits: 0xffffff });
  assert.throws(() => encodeImm(MessageKind.DATA, 1 << 24), RangeError);
});

test('credit window: sends stop at zero, credits come back, owed credits are returned alone at half the window', () => {
  const window = new CreditWindow(2, 4);
  assert.equal(window.take(), true);
  assert.equal(window.take(), true);
  assert.equal(window.take(), false, 'no credit left: the message waits');
  window.grant(3);
  assert.equal(window.available, 3);
  window.reposted();
  assert.equal(window.shouldReturnAlone(), false);
  window.reposted();
  assert.equal(window.shouldReturnAlone(), true);
  assert.equal(window.collect(), 2);
  assert.equal(window.owed, 0);
  const tiny = new CreditWindow(1, 1);
  tiny.reposted();
  assert.equal(tiny.shouldReturnAlone(), true, 'a window of one never stalls');
});

test('pingpong address messages match the C programs byte for byte', () => {
  const gid = parseGid('::ffff:10.0.2.15');
  const message = formatDest({ lid: 0x12, qpn: 0x11, psn: 0xabcdef, gid });
  assert.equal(message.length, DEST_BYTES);
  assert.equal(message.toString('latin1'), '0012:000011:abcdef:00000000000000000000ffff0a00020f\0');
  assert.deepEqual(parseDest(message), { lid: 0x12, qpn: 0x11, psn: 0xabcdef, gid: Buffer.from(gid) });
  assert.throws(() => parseDest(Buffer.from('garbage')), /malformed/);
});

test('GIDs print as inet_ntop does', () => {
  assert.equal(formatIpv6(parseGid('::ffff:10.0.2.15')), '::ffff:10.0.2.15');
  assert.equal(formatIpv6(parseGid('fe80::5054:ff:fe12:3456')), 'fe80::5054:ff:fe12:3456');
  assert.equal(formatIpv6(new Uint8Array(16)), '::');
  assert.equal(formatIpv6(parseGid('1:0:0:2:0:0:0:3')), '1:0:0:2::3');
  assert.equal(formatIpv6(parseGid('1:2:3:4:5:6:7:8')), '1:2:3:4:5:6:7:8');
});

test('getopt-style options: clusters, attached values, long forms, strtol numbers', () => {
  const specs = [{ short: 'p', long: 'port', value: true }, { short: 'e', long: 'events' }, { short: 'v' }, { short: 'n', long: 'iters', value: true }];
  const parsed = parseOptions(['-ev', '-p18515', '--iters=0x10', 'host'], specs);
  assert.equal(flag(parsed, 'e'), true);
  assert.equal(flag(parsed, 'v'), true);
  assert.equal(intOption(parsed, 'p', 0), 18515);
  assert.equal(intOption(parsed, 'n', 0), 16);
  assert.equal(stringOption(parsed, 'p'), '18515');
  assert.deepEqual(parsed.positionals, ['host']);
  assert.equal(intOption(parseOptions(['--port', '010'], specs), 'p', 0), 8);
  assert.throws(() => parseOptions(['-x'], specs), /invalid option/);
  assert.throws(() => parseOptions(['--nope'], specs), /unrecognized/);
  assert.throws(() => parseOptions(['-p'], specs), /requires an argument/);
  assert.throws(() => intOption(parseOptions(['-p', 'abc'], specs), 'p', 0), /invalid number/);
});

test('rping buffers: the advertisement layout and the ping text', () => {
  const info = encodeInfo(0x1122334455667788n, 0xabcd, 64);
  assert.equal(info.toString('hex'), '1122334455667788' + '0000abcd' + '00000040');
  assert.deepEqual(decodeInfo(info), { addr: 0x1122334455667788n, rkey: 0xabcd, size: 64 });
  const data = pingData(0, 30);
  assert.equal(data.toString('latin1', 0, 29), 'rdma-ping-0: ABCDEFGHIJKLMNOP');
  assert.equal(data[29], 0);
  assert.equal(pingData(1, 20).toString('latin1', 13, 16), 'BCD', 'each ping starts one letter later');
  assert.equal(pingData(57, 20).toString('latin1', 14, 17), 'zAB', 'letters wrap from z to A');
});

test('UD receives split into GRH and payload', () => {
  const buffer = new Uint8Array(udReceiveBytes(10));
  buffer.set([1, 2, 3], 40);
  const { grh, payload } = splitUdReceive(buffer, { byteLen: 43, wcFlags: 1 });
  assert.equal(grh!.length, 40);
  assert.deepEqual([...payload], [1, 2, 3]);
  assert.equal(splitUdReceive(buffer, { byteLen: 40, wcFlags: 0 }).grh, undefined);
  assert.throws(() => splitUdReceive(buffer, { byteLen: 39, wcFlags: 0 }), RangeError);
  assert.throws(() => splitUdReceive(buffer, { byteLen: 51, wcFlags: 0 }), RangeError);
});

test("rping's size range is exactly rdma-core's rping's (both programs asked, on this host)", () => {
  const refused = (command: string[]): boolean => {
    const run = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8', timeout: 20_000 });
    return /Invalid size/.test(`${run.stdout}${run.stderr}`);
  };
  for (const size of ['22', '23', '24', '65535', '65536']) {
    const c = refused(['rping', '-s', '-S', size]);
    const ts = refused([process.execPath, cli, 'rping', '-s', '-S', size]);
    assert.equal(ts, c, `size ${size}: rping ${c ? 'refuses' : 'accepts'} it`);
  }
  assert.ok(refused(['rping', '-s', '-S', '22']) && !refused(['rping', '-s', '-S', '23']), 'the C rping is the one measured');
});
