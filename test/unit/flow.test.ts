/**
 * Flow rules are packed as ibv_create_flow reads them: compared byte for byte with the same rule filled in
 * by a C program compiled here against the system's infiniband/verbs.h (fields by name, values converted to
 * network order with htons/htonl/inet_pton), so the layout, sizes and padding come from the header itself.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { FlowFlags, FlowType, type FlowAttributes } from '../../lib';
import { native } from '../../lib/native';

const reference = String.raw`
#include <arpa/inet.h>
#include <infiniband/verbs.h>
#include <stdio.h>
#include <string.h>

struct rule {
  struct ibv_flow_attr attr;
  struct ibv_flow_spec_eth eth;
  struct ibv_flow_spec_ipv4_ext ipv4;
  struct ibv_flow_spec_tcp_udp udp;
  struct ibv_flow_spec_tunnel vxlan;
  struct ibv_flow_spec_eth inner_eth;
  struct ibv_flow_spec_ipv6 ipv6;
  struct ibv_flow_spec_tcp_udp tcp;
  struct ibv_flow_spec_gre gre;
  struct ibv_flow_spec_mpls mpls;
  struct ibv_flow_spec_esp esp;
  struct ibv_flow_spec_action_tag tag;
  struct ibv_flow_spec_action_drop drop;
  struct ibv_flow_spec_counter_action count;
} __attribute__((packed));

int main(void) {
  struct rule r;
  memset(&r, 0, sizeof(r));
  r.attr.type = IBV_FLOW_ATTR_SNIFFER;
  r.attr.size = sizeof(r);
  r.attr.priority = 3;
  r.attr.num_of_specs = 13;
  r.attr.port = 2;
  r.attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
  r.eth.type = IBV_FLOW_SPEC_ETH; r.eth.size = sizeof(r.eth);
  unsigned char mac[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};
  memcpy(r.eth.val.dst_mac, mac, 6); memset(r.eth.mask.dst_mac, 0xff, 6);
  r.eth.val.ether_type = htons(0x0800); r.eth.mask.ether_type = htons(0xffff);
  r.eth.val.vlan_tag = htons(0x2005); r.eth.mask.vlan_tag = htons(0x0fff);
  r.ipv4.type = IBV_FLOW_SPEC_IPV4_EXT; r.ipv4.size = sizeof(r.ipv4);
  inet_pton(AF_INET, "10.0.2.15", &r.ipv4.val.dst_ip); inet_pton(AF_INET, "255.255.255.0", &r.ipv4.mask.dst_ip);
  inet_pton(AF_INET, "192.168.1.7", &r.ipv4.val.src_ip);
  r.ipv4.val.proto = 17; r.ipv4.mask.proto = 0xff; r.ipv4.val.tos = 4; r.ipv4.val.ttl = 64; r.ipv4.val.flags = 2;
  r.udp.type = IBV_FLOW_SPEC_UDP; r.udp.size = sizeof(r.udp);
  r.udp.val.dst_port = htons(4791); r.udp.mask.dst_port = htons(0xffff); r.udp.val.src_port = htons(49152);
  r.vxlan.type = IBV_FLOW_SPEC_VXLAN_TUNNEL; r.vxlan.size = sizeof(r.vxlan);
  r.vxlan.val.tunnel_id = htonl(0x123456); r.vxlan.mask.tunnel_id = htonl(0xffffff);
  r.inner_eth.type = IBV_FLOW_SPEC_ETH | IBV_FLOW_SPEC_INNER; r.inner_eth.size = sizeof(r.inner_eth);
  r.inner_eth.val.ether_type = htons(0x86dd); r.inner_eth.mask.ether_type = htons(0xffff);
  r.ipv6.type = IBV_FLOW_SPEC_IPV6 | IBV_FLOW_SPEC_INNER; r.ipv6.size = sizeof(r.ipv6);
  inet_pton(AF_INET6, "fe80::1:2", r.ipv6.val.dst_ip); inet_pton(AF_INET6, "ffff:ffff:ffff:ffff::", r.ipv6.mask.dst_ip);
  r.ipv6.val.flow_label = htonl(0xabcde); r.ipv6.val.next_hdr = 6; r.ipv6.val.traffic_class = 0x20; r.ipv6.val.hop_limit = 255;
  r.tcp.type = IBV_FLOW_SPEC_TCP | IBV_FLOW_SPEC_INNER; r.tcp.size = sizeof(r.tcp);
  r.tcp.val.dst_port = htons(443); r.tcp.mask.dst_port = htons(0xffff);
  r.gre.type = IBV_FLOW_SPEC_GRE; r.gre.size = sizeof(r.gre);
  r.gre.val.c_ks_res0_ver = htons(0x2000); r.gre.val.protocol = htons(0x6558); r.gre.val.key = htonl(0xdeadbeef); r.gre.mask.key = htonl(0xffffffff);
  r.mpls.type = IBV_FLOW_SPEC_MPLS; r.mpls.size = sizeof(r.mpls);
  r.mpls.val.label = htonl(0x12345140); r.mpls.mask.label = htonl(0xfffff000);
  r.esp.type = IBV_FLOW_SPEC_ESP; r.esp.size = sizeof(r.esp);
  r.esp.val.spi = htonl(0x1000); r.esp.mask.spi = htonl(0xffffffff); r.esp.val.seq = htonl(7);
  r.tag.type = IBV_FLOW_SPEC_ACTION_TAG; r.tag.size = sizeof(r.tag); r.tag.tag_id = 0x42;
  r.drop.type = IBV_FLOW_SPEC_ACTION_DROP; r.drop.size = sizeof(r.drop);
  r.count.type = IBV_FLOW_SPEC_ACTION_COUNT; r.count.size = sizeof(r.count); /* counters: filled in at ibv_create_flow */
  const unsigned char *p = (const unsigned char *)&r;
  for (size_t i = 0; i < sizeof(r); i++) printf("%02x", p[i]);
  return 0;
}
`;

const rule: FlowAttributes = {
  type: FlowType.SNIFFER,
  priority: 3,
  port: 2,
  flags: FlowFlags.DONT_TRAP,
  specs: [
    { type: 'eth', value: { dstMac: '02:00:5e:10:20:30', etherType: 0x0800, vlanTag: 0x2005 }, mask: { dstMac: Buffer.alloc(6, 0xff), etherType: 0xffff, vlanTag: 0x0fff } },
    { type: 'ipv4-ext', value: { srcIp: '192.168.1.7', dstIp: '10.0.2.15', proto: 17, tos: 4, ttl: 64, flags: 2 }, mask: { dstIp: '255.255.255.0', proto: 0xff } },
    { type: 'udp', value: { dstPort: 4791, srcPort: 49152 }, mask: { dstPort: 0xffff } },
    { type: 'vxlan', value: { tunnelId: 0x123456 }, mask: { tunnelId: 0xffffff } },
    { type: 'eth', inner: true, value: { etherType: 0x86dd }, mask: { etherType: 0xffff } },
    { type: 'ipv6', inner: true, value: { dstIp: 'fe80::1:2', flowLabel: 0xabcde, nextHdr: 6, trafficClass: 0x20, hopLimit: 255 }, mask: { dstIp: 'ffff:ffff:ffff:ffff::' } },
    { type: 'tcp', inner: true, value: { dstPort: 443 }, mask: { dstPort: 0xffff } },
    { type: 'gre', value: { cKsRes0Ver: 0x2000, protocol: 0x6558, key: 0xdeadbeef }, mask: { key: 0xffffffff } },
    { type: 'mpls', value: { label: 0x12345140 }, mask: { label: 0xfffff000 } },
    { type: 'esp', value: { spi: 0x1000, seq: 7 }, mask: { spi: 0xffffffff } },
    { type: 'tag', tagId: 0x42 },
    { type: 'drop' },
    { type: 'count', counters: {} as never },
  ],
};

test('a flow rule with every spec type packs byte for byte as the C structures of verbs.h', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flow-'));
  try {
    writeFileSync(join(dir, 'rule.c'), reference);
    execFileSync('cc', ['-O0', '-o', join(dir, 'rule'), join(dir, 'rule.c')]);
    const expected = execFileSync(join(dir, 'rule'), { encoding: 'utf8' });
    assert.equal(native.testing.packFlow(rule).toString('hex'), expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('flow rules refuse what they cannot pack, before any verb', () => {
  const pack = (specs: unknown[], extra: object = {}): Buffer => native.testing.packFlow({ specs, ...extra });
  assert.equal(pack([]).length, pack([]).readUInt16LE(8), 'an empty rule is the attribute alone, its size in attr.size');
  assert.throws(() => pack([{ type: 'ipx' }]), /spec.type must be/);
  assert.throws(() => pack([{ type: 'eth', value: { dstMac: '02:00:5e' } }]), /not a valid address/);
  assert.throws(() => pack([{ type: 'ipv4', value: { srcIp: '10.0.0.256' } }]), /not a valid address/);
  assert.throws(() => pack([{ type: 'ipv6', value: { dstIp: Buffer.alloc(15) } }]), TypeError);
  assert.throws(() => pack([{ type: 'tcp', value: { dstPort: 65536 } }]), RangeError);
  assert.throws(() => pack([{ type: 'tag', inner: true, tagId: 1 }]), /only header specs can be inner/);
  assert.throws(() => pack([], { port: 256 }), RangeError);
  assert.throws(() => pack([], { type: 4 }), RangeError);
  assert.throws(() => pack(Array.from({ length: 256 }, () => ({ type: 'drop' }))), RangeError);
  assert.throws(() => native.testing.packFlow(null as never), TypeError);
});
