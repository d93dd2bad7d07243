import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { benchRows as rows, ours, start, tcpPair, type Run } from '../support/processes';

// `rdma-node bench` as people run it: server and client in two processes on the rxe device, talking
// over TCP, checked on what they print (perftest's columns) rather than on how fast they are.
const host = '10.0.2.15';
let port = 18700;

function bench(test: string, args: string[], p: number, client: boolean): string[] {
  return ours('bench', test, ...(client ? [host] : []), '-x', '1', '-p', String(p), ...args);
}

async function pair(test: string, args: string[], serverArgs: string[] = []): Promise<[Run, Run]> {
  const p = ++port;
  const [server, client] = await tcpPair(bench(test, serverArgs, p, false), bench(test, args, p, true), p);
  assert.equal(server.status, 0, `server failed:\n${server.output}`);
  assert.equal(client.status, 0, `client failed:\n${client.output}`);
  return [server, client];
}

const number = /^\d+(\.\d+)?$/;

test('write_bw: perftest layout on both sides; the server prints the client\'s results', async () => {
  const [server, client] = await pair('write_bw', ['-s', '4096', '-n', '200']);
  assert.match(client.output, /^ {20}RDMA_Write BW Test$/m);
  assert.match(client.output, /^ TX depth {8}: 128$/m);
  assert.doesNotMatch(server.output, /TX depth/, 'only the client prints its TX depth');
  assert.match(server.output, /Waiting for client to connect/);
  assert.match(client.output, /^ local address: LID 0000 QPN 0x[0-9a-f]{4,} PSN 0x[0-9a-f]{6} RKey 0x[0-9a-f]{6,} VAddr 0x[0-9a-f]{14,}$/m);
  assert.match(client.output, /^ GID: 00:00:00:00:00:00:00:00:00:00:255:255:10:00:02:15$/m);
  assert.match(client.output, /^ #bytes {5}#iterations {4}BW peak\[MB\/sec\] {4}BW average\[MB\/sec\] {3}MsgRate\[Mpps\]$/m);
  const [row] = rows(client.output);
  assert.equal(row![0], '4096');
  assert.equal(row![1], '200');
  assert.ok(row!.slice(2).every((v) => number.test(v) && Number(v) > 0), row!.join(' '));
  assert.deepEqual(rows(server.output), rows(client.output));
});

test('send_lat over RC, TypeScript driver; read_lat and atomic_lat as JSON', async () => {
  const [server, client] = await pair('send_lat', ['-n', '100', '--driver', 'ts']);
  for (const run of [server, client]) {
    assert.match(run.output, /Driver {10}: TypeScript/);
    const [row] = rows(run.output);
    assert.equal(row!.length, 9, 'bytes, iterations and the seven latency columns');
    assert.deepEqual(row!.slice(0, 2), ['2', '100']);
    const [min, max, typical, avg] = row!.slice(2).map(Number);
    assert.ok(min! > 0 && min! <= typical! && typical! <= max! && min! <= avg!, row!.join(' '));
  }
  for (const test of ['read_lat', 'atomic_lat']) {
    const [, json] = await pair(test, ['-n', '50', '--json']);
    const report = JSON.parse(json.output) as { test: string; results: Array<{ kind: string; bytes: number; iterations: number; typical: number }> };
    assert.equal(report.test, test);
    assert.deepEqual([report.results[0]!.kind, report.results[0]!.bytes, report.results[0]!.iterations], ['latency', test === 'read_lat' ? 2 : 8, 50]);
    assert.ok(report.results[0]!.typical > 0);
  }
});

test('send over UD for every size up to the MTU, with an SVG plot; events; a timed run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  try {
    const plot = join(dir, 'lat.svg');
    const [, client] = await pair('send_lat', ['-c', 'UD', '-a', '-n', '20', '--plot', plot]);
    assert.deepEqual(rows(client.output).map((r) => r[0]), ['2', '4', '8', '16', '32', '64', '128', '256', '512', '1024']);
    const svg = readFileSync(plot, 'utf8');
    assert.match(svg, /^<svg /);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const [server, client] = await pair('send_bw', ['-s', '256', '-n', '300', '-e']);
  assert.match(client.output, /^ Test with events\.$/m);
  assert.deepEqual(rows(server.output)[0]!.slice(0, 2), ['256', '300'], 'the receiver counts every message');
  const [, timed] = await pair('write_lat', ['-D', '3']);
  assert.match(timed.output, /^ #bytes {8}#iterations {7}t_avg\[usec\] {4}tps average$/m);
  const [bytes, iterations, avg, tps] = rows(timed.output)[0]!.map(Number);
  assert.equal(bytes, 2);
  assert.ok(iterations! > 0 && avg! > 0 && tps! > 0);
});

test('UC writes, post lists, read and atomic bandwidth, rdma_cm, ODP as the device allows', async () => {
  const [, uc] = await pair('write_bw', ['-c', 'UC', '-s', '64', '-n', '400', '-l', '4']);
  assert.match(uc.output, /^ Connection type : UC/m);
  assert.match(uc.output, /^ Post List {7}: 4$/m);
  assert.deepEqual(rows(uc.output)[0]!.slice(0, 2), ['64', '400']);
  for (const test of ['read_bw', 'atomic_bw']) {
    const [, run] = await pair(test, ['-n', '200']);
    assert.match(run.output, /^ Outstand reads  : \d+$/m);
    assert.ok(Number(rows(run.output)[0]![3]) > 0);
  }
  const [, cm] = await pair('write_lat', ['-R', '-n', '100']);
  assert.match(cm.output, /^ rdma_cm QPs\t : ON$/m);
  assert.match(cm.output, /^ Data ex\. method : rdma_cm$/m);
  assert.deepEqual(rows(cm.output)[0]!.slice(0, 2), ['2', '100']);
  const p = ++port;
  const [server, client] = await tcpPair(bench('write_bw', [], p, false), bench('write_bw', ['--odp', '-n', '100'], p, true), p);
  if (client.status === 0) {
    assert.equal(server.status, 0, server.output);
    assert.deepEqual(rows(client.output)[0]!.slice(0, 2), ['65536', '100']);
  } else {
    // bookworm's rxe (the VM's fallback kernel) has no ODP: the bench says so instead of failing oddly.
    assert.match(client.output, /--odp: rxe0 has no on-demand paging for write_bw over RC/);
  }
});

test('perftest\'s ib_write_bw and rdma-node bench, one after the other on the same device, print alike', async () => {
  // One pair at a time: two pairs at once on the VM's two emulated CPUs measure the emulator, and a
  // failure of either is read with both of its sides' outputs.
  const ib = ++port;
  const [ibServer, ibClient] = await tcpPair(['ib_write_bw', '-d', 'rxe0', '-x', '1', '-p', String(ib), '-s', '4096', '-n', '300'],
    ['ib_write_bw', '-d', 'rxe0', '-x', '1', '-p', String(ib), '-s', '4096', '-n', '300', host], ib);
  const nb = ++port;
  const [server, client] = await tcpPair(bench('write_bw', ['-s', '4096', '-n', '300'], nb, false), bench('write_bw', ['-s', '4096', '-n', '300'], nb, true), nb);
  for (const [a, b] of [[ibServer!, ibClient!], [server!, client!]]) {
    assert.ok(a.status === 0 && b.status === 0, `server (${a.status}):\n${a.output}\nclient (${b.status}):\n${b.output}`);
  }
  // Same columns, same settings line for line: the outputs parse alike.
  for (const run of [ibClient, client]) {
    assert.match(run.output, /^ #bytes {5}#iterations {4}BW peak\[MB\/sec\] {4}BW average\[MB\/sec\] {3}MsgRate\[Mpps\]$/m);
    assert.deepEqual(rows(run.output)[0]!.slice(0, 2), ['4096', '300']);
    assert.match(run.output, /^ CQ Moderation   : 100$/m);
    assert.match(run.output, /^ Mtu             : 1024\[B\]$/m);
  }
});

test('devinfo and bench usage errors', async () => {
  const info = await start(ours('devinfo', '-v')).done;
  assert.equal(info.status, 0, info.output);
  assert.match(info.output, /^hca_id:\trxe0$/m);
  assert.match(info.output, /^\tatomic_cap:\t\t\tATOMIC_HCA \(1\)$/m);
  assert.match(info.output, /^\t\t\tGID\[ {2}1\]:\t\t::ffff:10\.0\.2\.15, RoCE v2$/m);
  for (const command of [['devinfo', '--json'], ['devices', '--json']]) {
    const json = await start(ours(...(command as [string, string]))).done;
    const [device] = JSON.parse(json.output) as Array<{ device: string; ports: Array<{ gids: Array<{ ipv4?: string }> }> }>;
    assert.equal(device!.device, 'rxe0');
    assert.ok(device!.ports[0]!.gids.some((g) => g.ipv4 === '10.0.2.15'));
  }
  const wrong = await start(ours('bench', 'read_bw', host, '-c', 'UD')).done;
  assert.equal(wrong.status, 1);
  assert.match(wrong.output, /read_bw runs over RC, not UD/);
});
