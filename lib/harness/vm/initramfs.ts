/** The initramfs: busybox, the modules the guest needs (decompressed: busybox insmod wants plain .ko), /init. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';

import { guestInit } from './guest-init';
import type { Kernel } from './kernel';
import { resolveModules } from './modules';
import type { Log } from './paths';
import { requireTools } from './tools';

const run = promisify(execFile);

/** In load order. crc32_generic must precede rdma_rxe on 6.1 (bookworm), where it is not a declared dependency. */
const wanted = ['virtio_pci', 'virtio_net', '9pnet_virtio', '9p', 'crc32_generic', 'rdma_rxe', 'ib_uverbs', 'rdma_ucm', 'veth'];
const optional = ['crc32_generic'];
const busybox = '/bin/busybox';
/** Debian's modules are xz-compressed today; the others are what kmod also accepts. */
const decompressors: Record<string, string> = { xz: 'xz', zst: 'zstd', gz: 'gzip' };

function read(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** Builds (or reuses) the initramfs for `kernel`; cached next to it, keyed by what goes into it. */
export async function ensureInitramfs(kernel: Kernel, log: Log): Promise<string> {
  if (!existsSync(busybox)) throw new Error(`${busybox} is missing: run 'bash scripts/setup.sh' (package busybox-static)`);
  requireTools(['cpio', 'gzip']);
  const modules = resolveModules(read(join(kernel.modulesDir, 'modules.dep')), read(join(kernel.modulesDir, 'modules.builtin')), wanted, optional);
  const key = createHash('sha256').update(guestInit).update(modules.join('\n')).update(String(readFileSync(busybox).length)).update(kernel.rxeModule ?? '').digest('hex').slice(0, 16);
  const image = join(kernel.dir, `initramfs-${key}.cpio.gz`);
  if (existsSync(image)) return image;

  log(`building the initramfs (${modules.length} modules)`);
  // Built beside the image under private names, then renamed: concurrent builds never mix.
  const tree = `${image}.tree-${process.pid}`;
  const packed = `${tree}.cpio.gz`;
  rmSync(tree, { recursive: true, force: true });
  try {
    for (const dir of ['bin', 'proc', 'sys', 'dev', 'modules', 'tmp']) mkdirSync(join(tree, dir), { recursive: true });
    copyFileSync(busybox, join(tree, 'bin', 'busybox'));
    const order: string[] = [];
    for (const path of modules) {
      const name = basename(path).replace(/\.ko\.\w+$/, '.ko');
      const replaced = name === 'rdma_rxe.ko' ? kernel.rxeModule : undefined;
      const source = replaced ?? join(kernel.modulesDir, path);
      const compression = replaced ? undefined : /\.ko\.(\w+)$/.exec(path)?.[1];
      if (compression) {
        const program = decompressors[compression];
        if (!program) throw new Error(`cannot decompress kernel module ${path}`);
        requireTools([program]);
        writeFileSync(join(tree, 'modules', name), (await run(program, ['-dc', source], { encoding: 'buffer', maxBuffer: 1 << 28 })).stdout);
      } else copyFileSync(source, join(tree, 'modules', name));
      order.push(name);
    }
    writeFileSync(join(tree, 'modules.order'), `${order.join('\n')}\n`);
    writeFileSync(join(tree, 'init'), guestInit);
    chmodSync(join(tree, 'init'), 0o755);
    await run('sh', ['-c', 'cd "$1" && find . | cpio -o -H newc --quiet | gzip -1 > "$2"', 'sh', tree, packed]);
    renameSync(packed, image);
    // Images for older init scripts or module sets are not used again once the runs that may still
    // boot them (started by an older build of this code) are surely over.
    for (const name of readdirSync(kernel.dir)) {
      const old = join(kernel.dir, name);
      const age = Date.now() - (statSync(old, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (/^initramfs-\w+\.cpio\.gz$/.test(name) && old !== image && age > 24 * 3600_000) rmSync(old, { force: true });
    }
  } finally {
    rmSync(tree, { recursive: true, force: true });
    rmSync(packed, { force: true });
  }
  return image;
}
