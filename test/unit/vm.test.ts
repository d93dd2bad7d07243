import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseDepends, parseMirror } from '../../lib/vm/apt';
import { parseVmArgs } from '../../lib/vm/cli';
import { jobScript, shellQuote } from '../../lib/vm/job';
import { imageVersion } from '../../lib/vm/kernel';
import { moduleName, resolveModules } from '../../lib/vm/modules';
import { qemuArgs } from '../../lib/vm/qemu';

test('parseMirror takes the main suite of deb822 or one-line sources', () => {
  const deb822 = `Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
`;
  assert.equal(parseMirror(deb822, undefined), 'http://mirror.example/debian');
  assert.equal(parseMirror('Types: deb\nURIs: http://s/debian-security\nSuites: bookworm-security\n', 'deb [arch=amd64] http://one/debian bookworm main\n'), 'http://one/debian');
  assert.equal(parseMirror(undefined, 'deb http://one/debian bookworm-updates main\n'), undefined);
  assert.equal(parseMirror(undefined, undefined), undefined);
});

test('kernel package names: dependencies and the image version', () => {
  const control = 'Package: linux-image-amd64\nDepends: linux-base-amd64 (= 7.2.13-1), linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)\nSize: 1\n';
  const depends = parseDepends(control);
  assert.deepEqual(depends, ['linux-base-amd64', 'linux-image-7.2.13+deb14-amd64']);
  assert.equal(imageVersion(depends), '7.2.13+deb14-amd64');
  assert.deepEqual(parseDepends('Depends: dracut | initramfs-tools (>= 0.120), kmod\n'), ['dracut', 'kmod']);
  assert.equal(imageVersion(['linux-base-amd64']), undefined);
});

test('modules load after their dependencies, each once; built-ins are skipped', () => {
  const dep = [
    'kernel/drivers/infiniband/core/ib_core.ko.xz:',
    'kernel/net/ipv4/udp_tunnel.ko.xz:',
    'kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko.xz: kernel/drivers/infiniband/core/ib_core.ko.xz kernel/net/ipv4/udp_tunnel.ko.xz',
    'kernel/drivers/infiniband/core/ib_uverbs.ko.xz: kernel/drivers/infiniband/core/ib_core.ko.xz',
    'kernel/crypto/crc32-generic.ko:',
  ].join('\n');
  const order = resolveModules(dep, 'kernel/drivers/virtio/virtio_pci.ko\n', ['virtio_pci', 'crc32_generic', 'rdma_rxe', 'ib_uverbs'], []);
  assert.deepEqual(order, [
    'kernel/crypto/crc32-generic.ko',
    'kernel/drivers/infiniband/core/ib_core.ko.xz',
    'kernel/net/ipv4/udp_tunnel.ko.xz',
    'kernel/drivers/infiniband/sw/rxe/rdma_rxe.ko.xz',
    'kernel/drivers/infiniband/core/ib_uverbs.ko.xz',
  ]);
  assert.deepEqual(resolveModules(dep, '', ['ib_core', 'nope'], ['nope']), ['kernel/drivers/infiniband/core/ib_core.ko.xz']);
  assert.throws(() => resolveModules(dep, '', ['nope']), /nope/);
  assert.equal(moduleName('kernel/net/9p/9pnet-virtio.ko.zst'), '9pnet_virtio');
});

test('job scripts quote every word and reject bad variable names', () => {
  assert.equal(shellQuote('plain/path-1.js'), 'plain/path-1.js');
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(shellQuote('a b;$(rm)'), "'a b;$(rm)'");
  assert.equal(shellQuote(''), "''");
  const script = jobScript({ command: ['node', '-e', 'console.log("x y")'], cwd: '/work/my dir', env: { A: "1 '2'" } });
  assert.equal(script, `#!/bin/sh\nexport A='1 '\\''2'\\'''\ncd '/work/my dir' || exit 125\nexec node -e 'console.log("x y")'\n`);
  assert.throws(() => jobScript({ command: [], cwd: '/', env: {} }), /no command/);
  assert.throws(() => jobScript({ command: ['x'], cwd: '/', env: { 'A B': '1' } }), /invalid environment/);
});

test('vm arguments: options, then the command after -- or the first word', () => {
  assert.deepEqual(parseVmArgs(['--kernel', 'bookworm', '--timeout', '60', '--', 'ls', '-l']), {
    options: { kernel: 'bookworm', timeoutMs: 60_000 }, command: ['ls', '-l'], fetch: false, help: false,
  });
  assert.deepEqual(parseVmArgs(['sh', '-c', 'exit 3']).command, ['sh', '-c', 'exit 3']);
  assert.equal(parseVmArgs(['--fetch']).fetch, true);
  assert.throws(() => parseVmArgs(['--kernel', 'trixie']), /auto, sid or bookworm/);
  assert.throws(() => parseVmArgs(['--timeout', '-1', 'ls']), /positive/);
  assert.throws(() => parseVmArgs(['--bogus']), /unknown option/);
});

test('qemu runs under TCG with the shares and a restricted user network', () => {
  const args = qemuArgs({ vmlinuz: '/k', initramfs: '/i', jobDir: '/tmp/j', projectDir: '/work/p', memoryMiB: 2048, cpus: 2, timeoutMs: 1, output: () => {}, log: () => {} });
  const joined = args.join(' ');
  assert.match(joined, /-accel tcg,thread=multi/);
  assert.match(joined, /path=\/,mount_tag=hostroot,.*readonly=on/);
  assert.match(joined, /path=\/work\/p,mount_tag=project/);
  assert.match(joined, /user,id=n0,restrict=on/);
  assert.doesNotMatch(joined, /kvm/);
});
