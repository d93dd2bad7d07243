/**
 * xsrq_pingpong without a device: its 66-byte address message and its address lines against a C program
 * compiled here with ibv_xsrq_pingpong's format strings and pingpong.c's wire GID conversion, the message
 * read back both ways, the usage text against the installed C program's, and its flags.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';

import { parseGid } from '../../lib/core/gid';
import { Mtu } from '../../lib/verbs/constants';
import { XRC_DEST_BYTES, formatXrcDest, parseXrcDest, type XrcPingpongDest } from '../../lib/tools/pingpong-wire';
import { describeXrcDest, xsrqSettings, xsrqUsage } from '../../lib/tools/xsrq-pingpong';

const cli = resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');

// "fmt LID RQPN SQPN PSN SRQN GIDHEX": the message as hex, then the local and remote address lines.
// "scan MSGHEX": the message read back as the C program reads it: the five numbers and the GID in hex.
const reference = String.raw`
#include <arpa/inet.h>
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_FORMAT "%04x:%06x:%06x:%06x:%06x:%32s"
#define MSG_SIZE   66
#define MSG_SSCAN  "%x:%x:%x:%x:%x:%s"
#define ADDR_FORMAT \
	"%8s: LID %04x, QPN RECV %06x SEND %06x, PSN %06x, SRQN %06x, GID %s\n"

static void gid_to_wire_gid(const unsigned char *gid, char wgid[]) {
  uint32_t tmp_gid[4];
  memcpy(tmp_gid, gid, sizeof(tmp_gid));
  for (int i = 0; i < 4; ++i) sprintf(&wgid[i * 8], "%08x", htobe32(tmp_gid[i]));
}

static void wire_gid_to_gid(const char *wgid, unsigned char *gid) {
  char tmp[9];
  uint32_t v32, tmp_gid[4];
  tmp[8] = 0;
  for (int i = 0; i < 4; ++i) {
    memcpy(tmp, wgid + i * 8, 8);
    sscanf(tmp, "%x", &v32);
    tmp_gid[i] = be32toh(v32);
  }
  memcpy(gid, tmp_gid, 16);
}

static void from_hex(const char *hex, unsigned char *out, size_t n) {
  for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

int main(int argc, char **argv) {
  unsigned char gid[16];
  char msg[MSG_SIZE], wgid[33], text[INET6_ADDRSTRLEN];
  if (!strcmp(argv[1], "fmt")) {
    int v[5];
    for (int i = 0; i < 5; i++) v[i] = strtol(argv[2 + i], NULL, 0);
    from_hex(argv[7], gid, 16);
    gid_to_wire_gid(gid, wgid);
    memset(msg, 0x55, sizeof msg);
    sprintf(msg, MSG_FORMAT, v[0], v[1], v[2], v[3], v[4], wgid);
    for (int i = 0; i < MSG_SIZE; i++) printf("%02x", (unsigned char)msg[i]);
    printf("\n");
    inet_ntop(AF_INET6, gid, text, sizeof text);
    printf(ADDR_FORMAT, "local", v[0], v[1], v[2], v[3], v[4], text);
    printf(ADDR_FORMAT, "remote", v[0], v[1], v[2], v[3], v[4], text);
  } else {
    int lid, rqpn, sqpn, psn, srqn;
    from_hex(argv[2], (unsigned char *)msg, MSG_SIZE);
    sscanf(msg, MSG_SSCAN, &lid, &rqpn, &sqpn, &psn, &srqn, wgid);
    wire_gid_to_gid(wgid, gid);
    printf("%x %x %x %x %x ", lid, rqpn, sqpn, psn, srqn);
    for (int i = 0; i < 16; i++) printf("%02x", gid[i]);
    printf("\n");
  }
  return 0;
}
`;

const dir = mkdtempSync(join(tmpdir(), 'xsrq-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let compiled: string | undefined;
function c(...args: string[]): string {
  if (compiled === undefined) {
    writeFileSync(join(dir, 'xsrq.c'), reference);
    execFileSync('cc', ['-O0', '-o', join(dir, 'xsrq'), join(dir, 'xsrq.c')]);
    compiled = join(dir, 'xsrq');
  }
  return execFileSync(compiled, args, { encoding: 'utf8' });
}

const cases: XrcPingpongDest[] = [
  { lid: 0, recvQpn: 0x11, sendQpn: 0x12, psn: 0xabcdef, srqn: 0x3, gid: parseGid('::ffff:10.0.2.15') },
  { lid: 0xffff, recvQpn: 0xffffff, sendQpn: 0x1, psn: 0, srqn: 0xffffff, gid: parseGid('fe80::5054:ff:fe12:3456') },
  { lid: 0x1a2, recvQpn: 0x4d2, sendQpn: 0x4d3, psn: 0x10, srqn: 0x80, gid: new Uint8Array(16) },
  { lid: 7, recvQpn: 0x123456, sendQpn: 0x654321, psn: 0x7fffff, srqn: 0x2a, gid: parseGid('2001:db8:1:2:3:4:5:6') },
];

test('the 66-byte XRC address message and the address lines match ibv_xsrq_pingpong byte for byte', () => {
  for (const dest of cases) {
    const [message, local, remote] = c('fmt', ...[dest.lid, dest.recvQpn, dest.sendQpn, dest.psn, dest.srqn].map(String), Buffer.from(dest.gid).toString('hex')).split('\n');
    const ours = formatXrcDest(dest);
    assert.equal(ours.length, XRC_DEST_BYTES);
    assert.equal(ours.toString('hex'), message, `message for ${JSON.stringify({ ...dest, gid: Buffer.from(dest.gid).toString('hex') })}`);
    assert.equal(ours[XRC_DEST_BYTES - 1], 0, 'NUL-terminated in the last byte');
    assert.equal(describeXrcDest('local', dest), local);
    assert.equal(describeXrcDest('remote', dest), remote);
  }
});

test('the C program reads our message back, and we read it back, to the same values', () => {
  for (const dest of cases) {
    const message = formatXrcDest(dest);
    const expected = [dest.lid, dest.recvQpn, dest.sendQpn, dest.psn, dest.srqn].map((v) => v.toString(16)).join(' ') + ` ${Buffer.from(dest.gid).toString('hex')}\n`;
    assert.equal(c('scan', message.toString('hex')), expected);
    assert.deepEqual(parseXrcDest(message), { ...dest, gid: Buffer.from(dest.gid) });
  }
  assert.throws(() => parseXrcDest(Buffer.from('0000:000011:abcdef:00000000000000000000ffff0a00020f\0')), /malformed XRC/);
  assert.throws(() => formatXrcDest({ ...cases[0]!, lid: 0x10000 }), RangeError);
  assert.throws(() => formatXrcDest({ ...cases[0]!, srqn: 1 << 24 }), RangeError);
  assert.throws(() => formatXrcDest({ ...cases[0]!, gid: new Uint8Array(4) }), RangeError);
});

test('usage: the C program\'s text on stdout, getopt\'s complaint on stderr, exit status 1', () => {
  const ours = spawnSync(process.execPath, [cli, 'xsrq_pingpong', '-x'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(ours.status, 1);
  assert.equal(ours.stdout, xsrqUsage());
  assert.equal(ours.stderr, "rdma-node xsrq_pingpong: invalid option -- 'x'\n");
  for (const args of [['a', 'b'], ['-m', '100'], ['-p', '65536'], ['-i', '-1'], ['--num_tests']]) {
    const run = spawnSync(process.execPath, [cli, 'xsrq_pingpong', ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 1, args.join(' '));
    assert.equal(run.stdout, xsrqUsage(), args.join(' '));
  }
  const theirs = spawnSync('ibv_xsrq_pingpong', ['-x'], { encoding: 'utf8', timeout: 20_000 });
  if (theirs.error) return; // rdma-core's ibverbs-utils not on this host: the text above is the C one's as written
  assert.equal(theirs.status, 1);
  assert.equal(theirs.stdout, xsrqUsage('ibv_xsrq_pingpong'));
  assert.equal(theirs.stderr, "ibv_xsrq_pingpong: invalid option -- 'x'\n");
});

test('flags: the C program\'s defaults, long forms, and one client when a server is named', () => {
  assert.deepEqual(xsrqSettings([]), {
    server: undefined, port: 18515, device: undefined, ibPort: 1, size: 4096, mtu: Mtu.MTU_1024,
    numQp: 1, rxDepth: 1, iters: 5, sl: 0, events: false, odp: false, gidIndex: -1,
  });
  const server = xsrqSettings(['-p', '18600', '-d', 'mlx5_0', '-i2', '-s', '64', '-m', '4096', '-c', '3', '-n', '0x10', '-l', '1', '-eo', '-g', '3']);
  assert.deepEqual(server, {
    server: undefined, port: 18600, device: 'mlx5_0', ibPort: 2, size: 64, mtu: Mtu.MTU_4096,
    numQp: 3, rxDepth: 3, iters: 16, sl: 1, events: true, odp: true, gidIndex: 3,
  });
  const long = xsrqSettings(['--port=1', '--ib-dev', 'x', '--ib-port=1', '--size=8', '--mtu=256', '--clients=4', '--num_tests=2', '--sl=2', '--events', '--odp', '--gid-idx=0', 'host']);
  assert.equal(long.server, 'host');
  assert.equal(long.numQp, 1, '-c is for the server only: a client is always one');
  assert.deepEqual([long.port, long.device, long.size, long.mtu, long.iters, long.sl, long.events, long.odp, long.gidIndex], [1, 'x', 8, Mtu.MTU_256, 2, 2, true, true, 0]);
  for (const bad of [['-m', '1000'], ['-p', '-1'], ['a', 'b'], ['-r', '1'], ['-q', '2']]) assert.throws(() => xsrqSettings(bad), bad.join(' '));
});
