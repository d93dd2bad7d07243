/**
 * rdma_rxe with this repository's fixes (kernel/patches), built from the Debian source of the VM's own
 * kernel (only drivers/infiniband/sw/rxe is extracted) against that kernel's headers, in a chroot of the
 * kernel's suite made with debootstrap: the sid kernel's gcc, objtool and modpost need sid's glibc, which
 * the host's cannot give them. The chroot is cached by kernel version, the module by kernel version and
 * patch set. Needs root (debootstrap, chroot, a private mount of /proc for objtool).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

import { PrivateApt, systemMirror } from './apt';
import type { Kernel } from './kernel';
import { cacheRoot, readIfExists, type Log } from './paths';
import { requireTools } from './tools';

const run = promisify(execFile);
const big = { maxBuffer: 1 << 26 };

export const patchesDir = join(__dirname, '..', '..', '..', '..', 'kernel', 'patches');

function patches(): string[] {
  return readdirSync(patchesDir).filter((name) => name.endsWith('.patch')).sort().map((name) => join(patchesDir, name));
}

/** The patched module for `kernel`, built on first use (about a minute and a half with a fast mirror). */
export async function ensurePatchedRxe(kernel: Kernel, log: Log): Promise<string> {
  const files = patches();
  const key = createHash('sha256').update(files.map((file) => readFileSync(file)).join('\0')).digest('hex').slice(0, 12);
  const module = join(kernel.dir, `rdma_rxe-patched-${key}.ko`);
  if (existsSync(module)) return module;
  if (process.getuid?.() !== 0) throw new Error('building the patched rdma_rxe needs root (debootstrap and chroot)');
  requireTools(['debootstrap', 'unshare', 'chroot', 'patch', 'dpkg-deb', 'tar', 'xz']);
  const started = Date.now();
  const root = await ensureChroot(kernel, log);
  const build = join(root, 'build', key);
  rmSync(build, { recursive: true, force: true });
  mkdirSync(build, { recursive: true });
  try {
    await extractRxeSource(kernel, build, log);
    for (const file of files) await run('patch', ['-p1', '--forward', '--batch', '--quiet', '-d', build, '-i', file]);
    log(`building rdma_rxe with ${files.length} patches (${files.map((file) => basename(file).slice(0, 4)).join(', ')})`);
    const inside = `/build/${key}/drivers/infiniband/sw/rxe`;
    const script = [
      'mount -t proc proc "$1/proc"',
      'chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root make -s -C "/usr/src/linux-headers-$2" M="$3" -j"$(nproc)" modules',
      'chroot "$1" objcopy --strip-debug "$3/rdma_rxe.ko"',
    ].join(' && ');
    await run('unshare', ['--mount', '--fork', 'sh', '-c', script, 'sh', root, kernel.version, inside], big);
    const partial = `${module}.partial-${process.pid}`;
    writeFileSync(partial, readFileSync(join(root, inside, 'rdma_rxe.ko')));
    renameSync(partial, module);
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  log(`patched rdma_rxe built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return module;
}

/**
 * What the chroot holds: the module's build tools, and the suite's rdma-core (with what the addon links)
 * for running this binding against a newer rdma-core than the host's (RDMA_NODE_SUITE_ROOT in the VM).
 */
const chrootPackages = (kernel: Kernel): string[] => [
  'make', 'binutils', `linux-headers-${kernel.version}`,
  'libibverbs1', 'ibverbs-providers', 'librdmacm1t64', 'libpmix2t64',
];

/** A chroot of the kernel's suite, made once per kernel version (and package list). */
export async function ensureChroot(kernel: Kernel, log: Log): Promise<string> {
  const root = join(cacheRoot(), `chroot-${kernel.suite}-${kernel.version}`);
  const packages = chrootPackages(kernel).join(',');
  if (readIfExists(join(root, 'ready'))?.split('\n')[1] === packages) return root;
  if (process.getuid?.() !== 0) throw new Error(`making a ${kernel.suite} chroot needs root (debootstrap)`);
  requireTools(['debootstrap']);
  for (const name of readdirSync(cacheRoot())) {
    // Chroots of older kernels (or package lists) are never used again.
    if (name.startsWith(`chroot-${kernel.suite}-`)) rmSync(join(cacheRoot(), name), { recursive: true, force: true });
  }
  log(`making a Debian ${kernel.suite} chroot with linux-headers-${kernel.version} and rdma-core (debootstrap, once per kernel)`);
  const partial = `${root}.partial-${process.pid}`;
  try {
    await run('debootstrap', ['--variant=minbase', `--include=${packages}`, kernel.suite, partial, systemMirror()], big);
    // Mount points for running this project's node and checkout inside (the cache is read-only in the VM).
    mkdirSync(join(partial, 'project'));
    writeFileSync(join(partial, 'usr', 'local', 'bin', 'node'), '');
    writeFileSync(join(partial, 'ready'), `${new Date().toISOString()}\n${packages}\n`);
    renameSync(partial, root);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw new Error(`debootstrap of ${kernel.suite} failed: ${(error as { stderr?: string }).stderr?.trim().split('\n').at(-1) ?? (error as Error).message}`);
  }
  return root;
}

/** drivers/infiniband/sw/rxe of linux-source-X.Y, checked to be the kernel's own upstream version. */
async function extractRxeSource(kernel: Kernel, into: string, log: Log): Promise<void> {
  const upstream = kernel.version.split(/[+-]/)[0]!;
  const name = `linux-source-${upstream.split('.').slice(0, 2).join('.')}`;
  const apt = new PrivateApt(join(cacheRoot(), `apt-${kernel.suite}`), kernel.suite, systemMirror());
  const version = /^Version:\s*(\S+)/m.exec((await apt.show([name])).get(name) ?? '')?.[1];
  if (!version?.startsWith(`${upstream}-`)) throw new Error(`${name} is ${version ?? 'missing'}, not the source of kernel ${kernel.version}`);
  log(`fetching ${name} ${version} (only drivers/infiniband/sw/rxe is kept)`);
  const debs = join(into, '.debs');
  mkdirSync(debs);
  await apt.download([name], debs);
  const deb = join(debs, readdirSync(debs)[0]!);
  await run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards "*.tar.xz" | tar -xJ -C "$2" --strip-components=1 --wildcards "*/drivers/infiniband/sw/rxe/*"', 'sh', deb, into], big);
  rmSync(debs, { recursive: true, force: true });
}
