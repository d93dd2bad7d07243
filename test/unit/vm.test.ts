import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { parseDepends, parseMirror, parseSize, parseStanzas } from '../../lib/harness/vm/apt';
import { parseVmArgs } from '../../lib/harness/vm/cli';
import { guestInit, LINK_PARAMETER, NONCE_PARAMETER, parseConsoleLine } from '../../lib/harness/vm/guest-init';
import { jobScript, shellQuote } from '../../lib/harness/vm/job';
import { cachedKernels, imageVersion } from '../../lib/harness/vm/kernel';
import { moduleName, resolveModules } from '../../lib/harness/vm/modules';
import { pairHosts } from '../../lib/harness/vm/pair';
import { cacheRoot } from '../../lib/harness/vm/paths';
import { qemuArgs } from '../../lib/harness/vm/qemu';
import { findTool } from '../../lib/harness/vm/tools';

test('parseMirror takes the main suite of deb822 or one-line sources', () => {
  const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
`;
  assert.equal(parseMirror(deb822, undefined), 'http://mirror.example/debian');
  assert.equal(parseMirror('Types: deb\nURIs: http://s/debian-security\nSuites: bookworm-security\n', 'deb [arch=amd64] http://one/debian bookworm main\n'), 'http://one/debian');
  assert.equal(parseMirror(undefined, 'deb-src http://src/debian bookworm main\ndeb http://one/debian bookworm main\n'), 'http://one/debian');
  assert.equal(parseMirror(undefined, 'deb http://one/debian bookworm-updates main\n'), undefined);
  assert.equal(parseMirror(undefined, undefined), undefined);
});

test('apt-cache show output: stanzas by package, dependencies, sizes and the image version', () => {
  const show = [
    'Package: linux-image-amd64\nDepends: linux-base-amd64 (= 7.2.13-1), linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)\nSize: 1500',
    'Package: linux-modules-7.2.13+deb14-amd64\nSize: 99000000',
    '',
  ].join('\n\n');
  const stanzas = parseStanzas(show);
  assert.deepEqual([...stanzas.keys()], ['linux-image-amd64', 'linux-modules-7.2.13+deb14-amd64']);
  const depends = parseDepends(stanzas.get('linux-image-amd64')!);
  assert.deepEqual(depends, ['linux-base-amd64', 'linux-image-7.2.13+deb14-amd64']);
  assert.equal(imageVersion(depends), '7.2.13+deb14-amd64');
  assert.equal(parseSize(stanzas.get('linux-modules-7.2.13+deb14-amd64')!), 99_000_000);
  assert.equal(parseSize('Package: x\n'), 0);
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
  assert.throws(() => jobScript({ command: ['x'], cwd: '/', env: { 'A B': '1' } }), /invalid environment/);
});

test('a job script hands sh exactly the words and environment it was given', () => {
  const words = ["it's", 'a b', '$(false)', '`x`', '"q"', '\\', '*', '', 'new\nline', '-e', 'ü'];
  const dir = mkdtempSync(join(tmpdir(), 'vm-test-'));
  try {
    const script = join(dir, 'run.sh');
    writeFileSync(script, jobScript({ command: ['printf', '<%s>', ...words], cwd: dir, env: { V: words.join(' '), PATH: process.env.PATH ?? '' } }));
    const run = spawnSync('sh', [script], { encoding: 'utf8', env: {} });
    assert.equal(run.stdout, words.map((w) => `<${w}>`).join(''));
    writeFileSync(script, jobScript({ command: ['sh', '-c', 'printf %s "$V|$PWD"'], cwd: dir, env: { V: "x 'y' $z", PATH: process.env.PATH ?? '' } }));
    assert.equal(spawnSync('sh', [script], { encoding: 'utf8', env: {} }).stdout, `x 'y' $z|${dir}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('console lines: markers of this run only, also after output that had no newline', () => {
  const nonce = 'rdma-node-vm-0123456789ab';
  assert.deepEqual(parseConsoleLine('hello', nonce), { text: 'hello' });
  assert.deepEqual(parseConsoleLine(`${nonce} ready`, nonce), { text: '', marker: { kind: 'ready', detail: '' } });
  assert.deepEqual(parseConsoleLine(`${nonce} ready rxe1 on eth1`, nonce), { text: '', marker: { kind: 'ready', detail: 'rxe1 on eth1' } });
  assert.deepEqual(parseConsoleLine(`${nonce} exit 7`, nonce), { text: '', marker: { kind: 'exit', status: 7 } });
  assert.deepEqual(parseConsoleLine(`no newline${nonce} exit 0`, nonce), { text: 'no newline', marker: { kind: 'exit', status: 0 } });
  assert.deepEqual(parseConsoleLine(`${nonce} failed insmod 9p.ko failed`, nonce), { text: '', marker: { kind: 'failed', reason: 'insmod 9p.ko failed' } });
  // Another run's marker, or a malformed one, is plain output.
  assert.deepEqual(parseConsoleLine('rdma-node-vm-ffffffffffff exit 3', nonce), { text: 'rdma-node-vm-ffffffffffff exit 3' });
  assert.deepEqual(parseConsoleLine(`${nonce} exit x`, nonce), { text: `${nonce} exit x` });
});

test('the guest init is valid sh and reads the nonce from the kernel command line', () => {
  assert.equal(spawnSync('sh', ['-n'], { input: guestInit }).status, 0);
  assert.match(guestInit, new RegExp(`M="\\$${NONCE_PARAMETER}"`));
  assert.match(guestInit, /DEV=rxe0/);
  assert.match(guestInit, /rdma link add \$DEV type rxe netdev \$NET/);
});

test('the guest init finds the link NIC by MAC and takes its address and device from the kernel command line', () => {
  // The parsing lines of init, run against a fake /sys/class/net.
  const dir = mkdtempSync(join(tmpdir(), 'vm-init-'));
  try {
    for (const [name, mac] of [['eth0', '52:54:00:12:34:56'], ['eth1', '52:54:00:77:00:02']]) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'address'), `${mac}\n`);
    }
    const lines = guestInit.split('\n');
    const from = lines.findIndex((l) => l.startsWith('  mac='));
    const script = [`L="$${LINK_PARAMETER}"`, lines[from]!, lines[from + 1]!.replace('/sys/class/net', dir), 'echo "$NET $addr $DEV"'].join('\n');
    const run = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { [LINK_PARAMETER]: '52:54:00:77:00:02,10.77.0.2/24,rxe1' } });
    assert.equal(run.stdout, 'eth1 10.77.0.2/24 rxe1\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vm arguments: options, then the command after -- or the first word', () => {
  assert.deepEqual(parseVmArgs(['--kernel', 'bookworm', '--timeout', '60', '--', 'ls', '-l']), {
    options: { kernel: 'bookworm', timeoutMs: 60_000 }, command: ['ls', '-l'], fetch: false, help: false,
  });
  assert.deepEqual(parseVmArgs(['--memory', '2048', '--cpus', '1', 'sh', '-c', 'exit 3']), {
    options: { memoryMiB: 2048, cpus: 1 }, command: ['sh', '-c', 'exit 3'], fetch: false, help: false,
  });
  assert.deepEqual(parseVmArgs(['--', '--kernel']).command, ['--kernel']);
  assert.deepEqual(parseVmArgs(['--hosts', '2', '--', 'node', 't.js']), { options: { hosts: 2 }, command: ['node', 't.js'], fetch: false, help: false });
  assert.throws(() => parseVmArgs(['--hosts', '3', 'ls']), /1 or 2/);
  assert.equal(parseVmArgs(['--fetch']).fetch, true);
  assert.throws(() => parseVmArgs(['--kernel', 'trixie']), /auto, sid or bookworm/);
  assert.throws(() => parseVmArgs(['--timeout', '-1', 'ls']), /positive/);
  assert.throws(() => parseVmArgs(['--cpus', '1.5', 'ls']), /positive integer/);
  assert.throws(() => parseVmArgs(['--memory']), /requires an argument/);
  assert.throws(() => parseVmArgs(['--bogus']), /unrecognized option '--bogus'/);
});

test('qemu runs under TCG with the shares, the nonce and a restricted user network', () => {
  const args = qemuArgs({
    vmlinuz: '/k', initramfs: '/i', jobDir: '/tmp/j', projectDir: '/work/a,b', memoryMiB: 2048, cpus: 2, timeoutMs: 1,
    nonce: 'N', output: () => {}, log: () => {},
  });
  const joined = args.join(' ');
  assert.match(joined, /-accel tcg,thread=multi/);
  assert.match(joined, /path=\/,mount_tag=hostroot,.*readonly=on/);
  assert.match(joined, /path=\/work\/a,,b,mount_tag=project/);
  assert.match(joined, /user,id=n0,restrict=on/);
  assert.match(args[args.indexOf('-append') + 1]!, new RegExp(` ${NONCE_PARAMETER}=N$`));
  assert.doesNotMatch(joined, /kvm/);
  assert.doesNotMatch(joined, /n1|rdma_node_link/);
});

test('qemu for a pair host: a second NIC on UDP to the peer\'s port, with its MAC; the link on the kernel command line', () => {
  const [, host1] = pairHosts([5000, 5001]);
  const args = qemuArgs({
    vmlinuz: '/k', initramfs: '/i', jobDir: '/tmp/j', memoryMiB: 2048, cpus: 1, timeoutMs: 1, nonce: 'N', link: host1.link, output: () => {}, log: () => {},
  });
  const joined = args.join(' ');
  assert.match(joined, /-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0 /);
  assert.match(joined, /-netdev socket,id=n1,udp=127\.0\.0\.1:5000,localaddr=127\.0\.0\.1:5001 -device virtio-net-pci,netdev=n1,mac=52:54:00:77:00:02$/);
  assert.match(args[args.indexOf('-append') + 1]!, new RegExp(` ${NONCE_PARAMETER}=N ${LINK_PARAMETER}=52:54:00:77:00:02,10\\.77\\.0\\.2/24,rxe1$`));
  assert.equal(args[args.indexOf('-smp') + 1], '1');
});

test('the cache: its root, and only completely fetched kernels count', () => {
  assert.equal(cacheRoot({ RDMA_NODE_CACHE: '/c' }), '/c/vm');
  assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }), '/x/rdma-node/vm');
  const root = mkdtempSync(join(tmpdir(), 'vm-cache-'));
  const saved = process.env.RDMA_NODE_CACHE;
  process.env.RDMA_NODE_CACHE = root;
  try {
    const unpack = (name: string, version: string, ready: boolean, age: number): void => {
      const modules = join(root, 'vm', 'kernels', name, 'root', 'usr', 'lib', 'modules', version);
      mkdirSync(modules, { recursive: true });
      writeFileSync(join(modules, 'vmlinuz'), '');
      writeFileSync(join(modules, 'modules.dep'), '');
      if (!ready) return;
      const stamp = join(root, 'vm', 'kernels', name, 'ready');
      writeFileSync(stamp, '');
      utimesSync(stamp, Date.now() / 1000 - age, Date.now() / 1000 - age);
    };
    unpack('sid-7.1.0-amd64', '7.1.0-amd64', true, 100);
    unpack('sid-7.2.0-amd64', '7.2.0-amd64', true, 10);
    unpack('sid-7.3.0-amd64', '7.3.0-amd64', false, 0); // interrupted: no ready file
    unpack('sid-7.3.0-amd64.partial-123', '7.3.0-amd64', true, 0);
    assert.deepEqual(cachedKernels().map((k) => `${k.suite} ${k.version}`), ['sid 7.2.0-amd64', 'sid 7.1.0-amd64']);
    assert.equal(cachedKernels()[0]!.vmlinuz, join(root, 'vm', 'kernels', 'sid-7.2.0-amd64', 'root', 'usr', 'lib', 'modules', '7.2.0-amd64', 'vmlinuz'));
  } finally {
    if (saved === undefined) delete process.env.RDMA_NODE_CACHE;
    else process.env.RDMA_NODE_CACHE = saved;
    rmSync(root, { recursive: true, force: true });
  }
});

test('findTool looks on the PATH and in the sbin directories', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vm-tools-'));
  try {
    writeFileSync(join(dir, 'mytool'), '#!/bin/sh\n');
    chmodSync(join(dir, 'mytool'), 0o755);
    writeFileSync(join(dir, 'notexec'), '');
    assert.equal(findTool('mytool', `/nonexistent:${dir}`), join(dir, 'mytool'));
    assert.equal(findTool('notexec', dir), undefined);
    assert.equal(findTool('no-such-tool-anywhere', dir), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
