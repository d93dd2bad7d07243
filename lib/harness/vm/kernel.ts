/**
 * A Debian kernel with rdma_rxe, fetched once and cached by suite and version. sid moves, so its version
 * is resolved against package lists at most a day old; without network, the newest cached kernel of the
 * suite is used.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { parseDepends, parseSize, PrivateApt, systemMirror, updateTriedWithin } from './apt';
import { cacheRoot, stderrLog, type Log } from './paths';
import { requireTools, tool } from './tools';

const run = promisify(execFile);

/** sid: the newest kernel, whose rxe has ODP. bookworm: 6.1, the fallback (no ODP). */
export type Suite = 'sid' | 'bookworm';

export interface Kernel {
  suite: Suite;
  version: string;
  /** The cache directory of this kernel. */
  dir: string;
  vmlinuz: string;
  /** lib/modules/<version> with modules.dep. */
  modulesDir: string;
  /** An rdma_rxe.ko to load instead of the kernel's own (the patched one, rxe-module.ts). */
  rxeModule?: string;
  /**
   * A chroot of the kernel's suite with that suite's rdma-core (rxe-module.ts), for running the binding
   * against a newer rdma-core than the host's; the command sees its path as RDMA_NODE_SUITE_ROOT.
   */
  suiteRoot?: string;
}

const day = 24 * 3600_000;
const kernelsDir = (): string => join(cacheRoot(), 'kernels');

/** The kernel unpacked in `dir`, if its fetch completed (the `ready` file is written last). */
function kernelAt(suite: Suite, version: string, dir: string): Kernel | undefined {
  if (!existsSync(join(dir, 'ready'))) return undefined;
  // sid installs modules and vmlinuz under /usr/lib/modules; bookworm under /lib/modules and /boot.
  for (const base of [join(dir, 'root', 'usr', 'lib', 'modules', version), join(dir, 'root', 'lib', 'modules', version)]) {
    const vmlinuz = [join(base, 'vmlinuz'), join(dir, 'root', 'boot', `vmlinuz-${version}`)].find(existsSync);
    if (vmlinuz && existsSync(join(base, 'modules.dep'))) return { suite, version, dir, vmlinuz, modulesDir: base };
  }
  return undefined;
}

/** Complete cached kernels, newest fetch first. */
export function cachedKernels(): Kernel[] {
  const dir = kernelsDir();
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => {
      const suite = name.split('-')[0] as Suite;
      return (suite === 'sid' || suite === 'bookworm') && !name.includes('.partial') ? kernelAt(suite, name.slice(suite.length + 1), join(dir, name)) : undefined;
    })
    .filter((kernel): kernel is Kernel => kernel !== undefined)
    .sort((a, b) => statSync(join(b.dir, 'ready')).mtimeMs - statSync(join(a.dir, 'ready')).mtimeMs);
}

/** The version in `linux-image-<version>` among the meta package's dependencies. */
export function imageVersion(depends: string[]): string | undefined {
  const image = depends.find((d) => d.startsWith('linux-image-') && d !== 'linux-image-amd64');
  return image?.slice('linux-image-'.length);
}

/**
 * The current kernel of `suite`, downloaded if needed. `refresh` re-reads the package lists even when
 * they are recent (`vm --fetch` does).
 */
export async function ensureKernel(suite: Suite, log: Log = stderrLog, { refresh = false } = {}): Promise<Kernel> {
  const aptDir = join(cacheRoot(), `apt-${suite}`);
  const newest = cachedKernels().find((kernel) => kernel.suite === suite);
  // Lists read today name the kernel fetched today (or the network was down today): no network needed.
  if (newest && !refresh && updateTriedWithin(aptDir, day)) return newest;

  requireTools(['apt-get', 'apt-cache', 'dpkg-deb', 'depmod']);
  log(`resolving Debian ${suite}'s current kernel`);
  let apt: PrivateApt;
  let version: string | undefined;
  try {
    apt = new PrivateApt(aptDir, suite, systemMirror());
    await apt.update();
    version = imageVersion(parseDepends((await apt.show(['linux-image-amd64'])).get('linux-image-amd64') ?? ''));
  } catch (error) {
    const reason = (error as Error).message.split('\n').find((line) => line.startsWith('E:')) ?? (error as Error).message.split('\n')[0];
    if (newest) {
      log(`cannot update the package lists (${reason}); using cached ${newest.version}`);
      return newest;
    }
    throw new Error(`cannot fetch Debian ${suite}'s kernel: ${reason}`);
  }
  if (!version) throw new Error(`Debian ${suite}: linux-image-amd64 names no kernel image`);
  const dir = join(kernelsDir(), `${suite}-${version}`);
  const kernel = kernelAt(suite, version, dir) ?? (await download(apt, suite, version, dir, log));
  // Older kernels of this suite are never booted again.
  for (const old of cachedKernels()) if (old.suite === suite && old.dir !== dir) rmSync(old.dir, { recursive: true, force: true });
  return kernel;
}

async function download(apt: PrivateApt, suite: Suite, version: string, dir: string, log: Log): Promise<Kernel> {
  // Build in a private directory, rename when complete: an interrupted fetch is never a cache hit.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  const debs = join(partial, 'debs');
  mkdirSync(debs, { recursive: true });
  try {
    const image = `linux-image-${version}`;
    // sid splits the image into binary, modules and base packages; bookworm ships one package.
    const parts = parseDepends((await apt.show([image])).get(image) ?? '').filter((d) => /^linux-(binary|modules|base)-/.test(d) && d.endsWith(version));
    const packages = [image, ...parts];
    const controls = await apt.show(packages);
    const total = packages.reduce((sum, p) => sum + parseSize(controls.get(p) ?? ''), 0);
    const mb = (bytes: number): string => (bytes / 1e6).toFixed(0);
    log(`downloading kernel ${version}: ${mb(total)} MB (${packages.join(', ')})`);
    const started = Date.now();
    const progress = setInterval(() => {
      const done = readdirSync(debs).reduce((sum, name) => sum + (statSync(join(debs, name), { throwIfNoEntry: false })?.size ?? 0), 0);
      log(`  ${mb(done)} of ${mb(total)} MB`);
    }, 10_000);
    try {
      await apt.download(packages, debs);
    } finally {
      clearInterval(progress);
    }
    log(`downloaded in ${((Date.now() - started) / 1000).toFixed(0)} s; unpacking`);
    for (const deb of readdirSync(debs)) await run('dpkg-deb', ['-x', join(debs, deb), join(partial, 'root')]);
    rmSync(debs, { recursive: true, force: true });
    const usrMerged = existsSync(join(partial, 'root', 'usr', 'lib', 'modules', version));
    await run(tool('depmod'), ['-b', usrMerged ? join(partial, 'root', 'usr') : join(partial, 'root'), version]);
    writeFileSync(join(partial, 'ready'), `${new Date().toISOString()}\n`);
    try {
      renameSync(partial, dir);
    } catch (error) {
      // Another process fetched the same version first; theirs is just as good.
      if (!['ENOTEMPTY', 'EEXIST'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
      rmSync(partial, { recursive: true, force: true });
    }
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  }
  const kernel = kernelAt(suite, version, dir);
  if (!kernel) throw new Error(`kernel ${version} unpacked without vmlinuz or modules.dep`);
  return kernel;
}
