/** GIDs and GUIDs in the textual forms rdma-core's tools print. */

/** 16 bytes → 'fe80:0000:0000:0000:5054:00ff:fe12:3456' (the ibv_devinfo / ibv_*_pingpong form). */
export function formatGid(gid: Uint8Array): string {
  if (gid.length !== 16) throw new RangeError('a GID is 16 bytes');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((gid[i]! << 8) | gid[i + 1]!).toString(16).padStart(4, '0'));
  return groups.join(':');
}

/**
 * Parses a GID: the eight-group form above, any IPv6 text form ('::ffff:10.0.2.15', 'fe80::1'), or a
 * 32-digit hex string (the wire form of ibv_rc_pingpong's exchange).
 */
export function parseGid(text: string): Uint8Array {
  const out = new Uint8Array(16);
  if (/^[0-9a-fA-F]{32}$/.test(text)) {
    for (let i = 0; i < 16; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
    return out;
  }
  let groups: number[];
  const v4 = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  let head = text;
  let tail: number[] = [];
  if (v4) {
    const bytes = v4.slice(2).map(Number);
    if (bytes.some((b) => b > 255)) throw new RangeError(`invalid GID: ${text}`);
    tail = [(bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!];
    head = v4[1]!.endsWith('::') ? v4[1]! : v4[1]!.slice(0, -1);
  }
  const parseGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new RangeError(`invalid GID: ${text}`);
    return parseInt(g, 16);
  }));
  const halves = head.split('::');
  if (halves.length > 2) throw new RangeError(`invalid GID: ${text}`);
  if (halves.length === 2) {
    const left = parseGroups(halves[0]!);
    const right = [...parseGroups(halves[1]!), ...tail];
    const missing = 8 - left.length - right.length;
    if (missing < 1) throw new RangeError(`invalid GID: ${text}`);
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = [...parseGroups(head), ...tail];
  }
  if (groups.length !== 8) throw new RangeError(`invalid GID: ${text}`);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** The IPv4 address of an IPv4-mapped GID (::ffff:a.b.c.d, as RoCE v2 uses), else undefined. */
export function gidIpv4(gid: Uint8Array): string | undefined {
  for (let i = 0; i < 10; i++) if (gid[i] !== 0) return undefined;
  if (gid[10] !== 0xff || gid[11] !== 0xff) return undefined;
  return `${gid[12]}.${gid[13]}.${gid[14]}.${gid[15]}`;
}

export function isZeroGid(gid: Uint8Array): boolean {
  return gid.every((b) => b === 0);
}

/** A 64-bit GUID (host order) → '5054:00ff:fe12:3456', as ibv_devinfo prints it. */
export function formatGuid(guid: bigint): string {
  const hex = guid.toString(16).padStart(16, '0');
  return `${hex.slice(0, 4)}:${hex.slice(4, 8)}:${hex.slice(8, 12)}:${hex.slice(12, 16)}`;
}

/** 16 bytes in the compressed IPv6 text form inet_ntop prints ('fe80::5054:ff:fe12:3456', '::ffff:10.0.2.15'). */
export function formatIpv6(gid: Uint8Array): string {
  const ipv4 = gidIpv4(gid);
  if (ipv4 !== undefined) return `::ffff:${ipv4}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((gid[i]! << 8) | gid[i + 1]!);
  // The longest run of two or more zero groups becomes '::' (the first such run on a tie).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (part: number[]): string => part.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
