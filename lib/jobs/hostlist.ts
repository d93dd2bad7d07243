/**
 * Slurm's host lists: `node[1-3,7],login0` names node1, node2, node3, node7 and login0; ranges keep their
 * zero padding (`n[01-03]`: n01, n02, n03).
 */
export function expandHostlist(list: string): string[] {
  const hosts: string[] = [];
  // Commas inside brackets separate ranges, not hosts.
  for (const item of list.match(/[^,[]+(\[[^\]]*\][^,[]*)*/g) ?? []) {
    let names = [''];
    for (const [, plain, ranges] of item.matchAll(/([^[]*)(?:\[([^\]]*)\])?/g)) {
      if (plain === '' && ranges === undefined) continue;
      names = names.map((name) => name + plain);
      if (ranges === undefined) continue;
      const expanded = ranges.split(',').flatMap((range) => {
        const [from, to = from] = range.split('-') as [string, string?];
        const width = from.length;
        const out: string[] = [];
        for (let n = Number(from); n <= Number(to); n++) out.push(String(n).padStart(width, '0'));
        return out;
      });
      names = names.flatMap((name) => expanded.map((suffix) => name + suffix));
    }
    hosts.push(...names);
  }
  return hosts;
}
