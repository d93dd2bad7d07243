/** Choosing kernel modules for the initramfs from modules.dep: dependencies first, each once. */

/** 'kernel/net/9p/9pnet-virtio.ko.xz' → '9pnet_virtio' (module names treat - and _ alike). */
export function moduleName(path: string): string {
  const file = path.slice(path.lastIndexOf('/') + 1);
  return file.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

/** modules.dep → module name → { path, dependency paths }. */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const modules = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    modules.set(moduleName(path), { path, deps });
  }
  return modules;
}

/**
 * The module files to load for `wanted` (in that order), each after its dependencies. Modules built into
 * the kernel (modules.builtin) are skipped; those named in `optional` may be absent altogether.
 */
export function resolveModules(modulesDep: string, builtin: string, wanted: string[], optional: string[] = []): string[] {
  const modules = parseModulesDep(modulesDep);
  const builtins = new Set(builtin.split('\n').filter(Boolean).map(moduleName));
  const byPath = new Map([...modules.values()].map((m) => [m.path, m]));
  const order: string[] = [];
  const visit = (path: string): void => {
    if (order.includes(path)) return;
    // modules.dep lists a module's full dependency closure, so ordering by recursion is enough.
    for (const dep of byPath.get(path)?.deps ?? []) visit(dep);
    order.push(path);
  };
  for (const name of wanted) {
    const module = modules.get(name.replace(/-/g, '_'));
    if (module) visit(module.path);
    else if (!builtins.has(name) && !optional.includes(name)) throw new Error(`kernel module ${name} is neither a module nor built in`);
  }
  return order;
}
