import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { DeviceAttributes, PortAttributes } from '../../lib/verbs/attributes';
import { GidType, NodeType, TransportType } from '../../lib/verbs/constants';
import { devInfoJson, formatDevInfo, type DevInfo } from '../../lib/tools/devinfo';
import { parseGid } from '../../lib/core/gid';

// rxe0 as ibv_devinfo -v printed it in the Soft-RoCE VM.
const attributes = {
  fwVer: '0.0.0', nodeGuid: 0x505400fffe123456n, sysImageGuid: 0x505400fffe123456n, maxMrSize: 0xffffffffffffffffn,
  pageSizeCap: 0xfffff000n, vendorId: 0xffffff, vendorPartId: 0, hwVer: 0, maxQp: 1048560, maxQpWr: 1048576,
  deviceCapFlags: 0x1c001223c76n, maxSge: 32, maxSgeRd: 32, maxCq: 1048576, maxCqe: 32767, maxMr: 524287, maxPd: 1048576,
  maxQpRdAtom: 128, maxEeRdAtom: 0, maxResRdAtom: 258048, maxQpInitRdAtom: 128, maxEeInitRdAtom: 0, atomicCap: 1, maxEe: 0,
  maxRdd: 0, maxMw: 524287, maxRawIpv6Qp: 0, maxRawEthyQp: 0, maxMcastGrp: 8192, maxMcastQpAttach: 56,
  maxTotalMcastQpAttach: 458752, maxAh: 32767, maxSrq: 917503, maxSrqWr: 1048576, maxSrqSge: 27, maxPkeys: 64,
  localCaAckDelay: 15, physPortCnt: 1,
  odpCaps: { generalCaps: 1n, rcOdpCaps: 0xff, ucOdpCaps: 0, udOdpCaps: 0x23 },
  xrcOdpCaps: 0, completionTimestampMask: 0n, hcaCoreClock: 0n, pciAtomicCaps: { fetchAdd: 0, swap: 0, compareSwap: 0 },
  maxDmSize: 0n, maxWqTypeRq: 0, rawPacketCaps: 0,
} satisfies DeviceAttributes;
const port = {
  state: 4, maxMtu: 5, activeMtu: 3, gidTblLen: 1024, portCapFlags: 0x10000, portCapFlags2: 0, maxMsgSz: 0x80000000,
  badPkeyCntr: 0, qkeyViolCntr: 0, pkeyTblLen: 1, lid: 0, smLid: 0, lmc: 0, maxVlNum: 1, smSl: 0, subnetTimeout: 0,
  initTypeReply: 0, activeWidth: 1, activeSpeed: 1, physState: 5, linkLayer: 2, flags: 0,
} satisfies PortAttributes;
const gid = (index: number, text: string, ipv4?: string) => ({
  gid: text, raw: parseGid(text), index, portNum: 1, type: GidType.ROCE_V2, typeName: 'RoCE v2' as const, ipv4, ifindex: 2,
});
const info: DevInfo = {
  device: { name: 'rxe0', guid: '5054:00ff:fe12:3456', nodeType: NodeType.CA, nodeTypeName: 'CA', transportType: TransportType.IB, transportTypeName: 'IB', index: 0 },
  attributes,
  ports: [{ port: 1, attributes: port, gids: [gid(0, 'fe80::5054:ff:fe12:3456'), gid(1, '::ffff:10.0.2.15', '10.0.2.15')] }],
};

test('devinfo prints what ibv_devinfo prints', () => {
  const short = formatDevInfo(info, false);
  assert.deepEqual(short.slice(0, 4), ['hca_id:\trxe0', '\ttransport:\t\t\tInfiniBand (0)', '\tfw_ver:\t\t\t\t0.0.0', '\tnode_guid:\t\t\t5054:00ff:fe12:3456']);
  assert.ok(short.includes('\tvendor_id:\t\t\t0xffffff'));
  assert.ok(short.includes('\t\t\tstate:\t\t\tPORT_ACTIVE (4)'));
  assert.ok(short.includes('\t\t\tactive_mtu:\t\t1024 (3)'));
  assert.ok(short.includes('\t\t\tlink_layer:\t\tEthernet'));
  assert.ok(!short.some((l) => l.includes('GID[')), 'GIDs only with -v');
  const v = formatDevInfo(info, true);
  const at = v.indexOf('\tdevice_cap_flags:\t\t0x01223c76');
  assert.ok(at > 0);
  assert.deepEqual(v.slice(at + 1, at + 3), ['\t\t\t\t\tBAD_PKEY_CNTR', '\t\t\t\t\tBAD_QKEY_CNTR']);
  assert.ok(v.includes('\t\t\t\t\tMEM_WINDOW_TYPE_2B'));
  assert.ok(v.includes('\tatomic_cap:\t\t\tATOMIC_HCA (1)'));
  const rc = v.indexOf('\trc_odp_caps:');
  assert.deepEqual(v.slice(rc + 1, rc + 8), [
    '\t\t\t\t\tSUPPORT_SEND', '\t\t\t\t\tSUPPORT_RECV', '\t\t\t\t\tSUPPORT_WRITE', '\t\t\t\t\tSUPPORT_READ',
    '\t\t\t\t\tSUPPORT_ATOMIC', '\t\t\t\t\tSUPPORT_SRQ', '\t\t\t\t\tUnknown flags: 0xC0',
  ]);
  assert.equal(v[v.indexOf('\tuc_odp_caps:') + 1], '\t\t\t\t\tNO SUPPORT');
  assert.ok(v.includes('\tdevice_cap_flags_ex:\t\t0x1C001223C76'));
  assert.ok(v.includes('\t\t\t\t\tUnknown flags: 0x1C000000000'));
  assert.ok(v.includes('\t\t\tactive_speed:\t\t2.5 Gbps (1)'));
  assert.ok(v.includes('\t\t\tphys_state:\t\tLINK_UP (5)'));
  assert.ok(v.includes('\t\t\tGID[  0]:\t\tfe80::5054:ff:fe12:3456, RoCE v2'));
  assert.ok(v.includes('\t\t\tGID[  1]:\t\t::ffff:10.0.2.15, RoCE v2'));
});

test('devinfo JSON: 64-bit values as hex, names alongside numbers', () => {
  const json = devInfoJson(info) as Record<string, any>;
  assert.equal(json.device, 'rxe0');
  assert.equal(json.nodeGuid, '5054:00ff:fe12:3456');
  assert.equal(json.attributes.maxMrSize, '0xffffffffffffffff');
  assert.ok(json.attributes.deviceCapFlagNames.includes('MEM_MGT_EXTENSIONS'));
  assert.equal(json.attributes.atomicCapName, 'ATOMIC_HCA');
  assert.equal(json.ports[0].stateName, 'PORT_ACTIVE');
  assert.equal(json.ports[0].activeMtuBytes, 1024);
  assert.deepEqual(json.ports[0].gids[1], { index: 1, gid: '::ffff:10.0.2.15', type: 'RoCE v2', ipv4: '10.0.2.15' });
});
