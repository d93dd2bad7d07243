/** The initramfs: busybox, the modules the guest needs (decompressed: busybox insmod wants plain .ko), /init. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

import { guestInit } from './guest-init';
import type { Kernel } from './kernel';
import { resolveModules } from './modules';
import type { Log } from './paths';

const run = promisify(execFile);

/** In load order. crc32_generic must precede rdma_rxe on 6.1 (bookworm), where it is not a declared dependency. */
const wanted = ['virtio_pci', 'virtio_net', '9pnet_virtio', '9p', 'crc32_generic', 'rdma_rxe', 'ib_uverbs', 'rdma_ucm'];
const optional = ['crc32_generic'];
const busybox = '/bin/busybox';

function read(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** Builds (or reuses) the initramfs for `kernel`; cached next to it, keyed by what goes into it. */
export async function ensureInitramfs(kernel: Kernel, log: Log): Promise<string> {
  if (!existsSync(busybox)) throw new Error(`${busybox} is missing: run 'bash scripts/setup.sh' (package busybox-static)`);
  const modules = resolveModules(read(join(kernel.modulesDir, 'modules.dep')), read(join(kernel.modulesDir, 'modules.builtin')), wanted, optional);
  const key = createHash('sha256').update(guestInit).update(modules.join('\n')).update(String(readFileSync(busybox).length)).digest('hex').slice(0, 16);
  const image = join(kernel.dir, `initramfs-${key}.cpio.gz`);
  if (existsSync(image)) return image;

  log(`building the initramfs (${modules.length} modules)`);
  const tree = `${image}.tree-${process.pid}`;
  rmSync(tree, { recursive: true, force: true });
  try {
    for (const dir of ['bin', 'proc', 'sys', 'dev', 'modules', 'tmp']) mkdirSync(join(tree, dir), { recursive: true });
    copyFileSync(busybox, join(tree, 'bin', 'busybox'));
    const order: string[] = [];
    for (const path of modules) {
      const source = join(kernel.modulesDir, path);
      const name = basename(path).replace(/\.(xz|zst|gz)$/, '');
      if (path.endsWith('.xz')) writeFileSync(join(tree, 'modules', name), (await run('xz', ['-dc', source], { encoding: 'buffer', maxBuffer: 1 << 28 })).stdout);
      else if (path.endsWith('.zst')) writeFileSync(join(tree, 'modules', name), (await run('zstd', ['-dc', source], { encoding: 'buffer', maxBuffer: 1 << 28 })).stdout);
      else copyFileSync(source, join(tree, 'modules', name));
      order.push(name);
    }
    writeFileSync(join(tree, 'modules.order'), `${order.join('\n')}\n`);
    writeFileSync(join(tree, 'init'), guestInit);
    chmodSync(join(tree, 'init'), 0o755);
    await run('sh', ['-c', `cd "${tree}" && find . | cpio -o -H newc --quiet | gzip -1 > "${image}.partial"`]);
    renameSync(`${image}.partial`, image);
    // Images for older init scripts or module sets are never used again.
    for (const old of readdirSync(kernel.dir)) if (/^initramfs-\w+\.cpio\.gz$/.test(old) && join(kernel.dir, old) !== image) rmSync(join(kernel.dir, old));
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
  return image;
}
