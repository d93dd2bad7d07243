/**
 * A Debian kernel with rdma_rxe, fetched once and cached by suite and version. sid moves, so its version
 * is resolved at each fetch; without network, the newest cached kernel of the suite is used.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { PrivateApt, systemMirror } from './apt';
import { cacheRoot, stderrLog, type Log } from './paths';

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
}

function kernelAt(suite: Suite, version: string, dir: string): Kernel | undefined {
  if (!existsSync(join(dir, 'ready'))) return undefined;
  for (const base of [join(dir, 'root', 'usr', 'lib', 'modules', version), join(dir, 'root', 'lib', 'modules', version)]) {
    const vmlinuz = [join(base, 'vmlinuz'), join(dir, 'root', 'boot', `vmlinuz-${version}`)].find(existsSync);
    if (vmlinuz && existsSync(join(base, 'modules.dep'))) return { suite, version, dir, vmlinuz, modulesDir: base };
  }
  return undefined;
}

function newestCached(suite: Suite): Kernel | undefined {
  const dir = join(cacheRoot(), 'kernels');
  if (!existsSync(dir)) return undefined;
  const candidates = readdirSync(dir)
    .filter((name) => name.startsWith(`${suite}-`) && !name.includes('.partial'))
    .sort((a, b) => statSync(join(dir, b)).mtimeMs - statSync(join(dir, a)).mtimeMs);
  for (const name of candidates) {
    const kernel = kernelAt(suite, name.slice(suite.length + 1), join(dir, name));
    if (kernel) return kernel;
  }
  return undefined;
}

/** The version in `linux-image-<version>` among the meta package's dependencies. */
export function imageVersion(depends: string[]): string | undefined {
  const image = depends.find((d) => d.startsWith('linux-image-') && d !== 'linux-image-amd64');
  return image?.slice('linux-image-'.length);
}

export async function ensureKernel(suite: Suite, log: Log = stderrLog): Promise<Kernel> {
  const root = cacheRoot();
  const apt = new PrivateApt(join(root, `apt-${suite}`), suite, systemMirror());
  log(`resolving Debian ${suite}'s kernel`);
  let version: string | undefined;
  try {
    await apt.update();
    version = imageVersion(await apt.depends('linux-image-amd64'));
  } catch (error) {
    const cached = newestCached(suite);
    if (cached) {
      log(`cannot reach the Debian mirror (${(error as Error).message.split('\n')[0]}); using cached ${cached.version}`);
      return cached;
    }
    throw new Error(`cannot fetch Debian ${suite}'s kernel: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!version) throw new Error(`Debian ${suite}: linux-image-amd64 names no kernel image`);
  const dir = join(root, 'kernels', `${suite}-${version}`);
  const cached = kernelAt(suite, version, dir);
  if (cached) return cached;

  // Build in a private directory, rename when complete: an interrupted fetch is never a cache hit.
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  const debs = join(partial, 'debs');
  mkdirSync(debs, { recursive: true });
  try {
    const image = `linux-image-${version}`;
    // sid splits the image into binary, modules and base packages; bookworm ships one package.
    const parts = (await apt.depends(image)).filter((d) => /^linux-(binary|modules|base)-/.test(d) && d.endsWith(version));
    const packages = [image, ...parts];
    const bytes = (await Promise.all(packages.map((p) => apt.size(p)))).reduce((a, b) => a + b, 0);
    log(`downloading kernel ${version} (${(bytes / 1e6).toFixed(0)} MB: ${packages.join(', ')})`);
    await apt.download(packages, debs);
    log('unpacking kernel and modules');
    for (const deb of readdirSync(debs)) await run('dpkg-deb', ['-x', join(debs, deb), join(partial, 'root')]);
    rmSync(debs, { recursive: true, force: true });
    const usrMerged = existsSync(join(partial, 'root', 'usr', 'lib', 'modules', version));
    await run('depmod', ['-b', usrMerged ? join(partial, 'root', 'usr') : join(partial, 'root'), version]);
    writeFileSync(join(partial, 'ready'), `${new Date().toISOString()}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  }
  const kernel = kernelAt(suite, version, dir);
  if (!kernel) throw new Error(`kernel ${version} unpacked without vmlinuz or modules.dep`);
  return kernel;
}
