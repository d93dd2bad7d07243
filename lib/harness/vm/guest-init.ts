/**
 * The guest's /init (busybox sh) and the markers it prints on the console. It loads the modules, mounts
 * the host's root read-only with tmpfs over /tmp and /run and the project read-write at its own path,
 * brings up the network and an rxe device (rxe0 on eth0, or one on the link to another VM), then runs the job's script in a chroot and reports its exit
 * status (in the job directory and on the console).
 *
 * Markers start with a nonce chosen per run and passed on the kernel command line (the kernel hands
 * unknown `name=value` parameters to init as environment variables), so output that merely contains
 * marker-like text (say, `cat` of this file) is never mistaken for one.
 */

import { GUEST_JOB_DIR } from './job';

/** The kernel command line parameter carrying the nonce; init sees it as $rdma_node_run. */
export const NONCE_PARAMETER = 'rdma_node_run';

/**
 * The kernel command line parameter describing a second NIC linked to another VM (see pair.ts):
 * `MAC,ADDRESS/PREFIX,DEVICE`. Init puts the address on the NIC with that MAC and creates the rxe device
 * there instead of rxe0 on eth0.
 */
export const LINK_PARAMETER = 'rdma_node_link';

export const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
M="$${NONCE_PARAMETER}"
fail() { echo "$M failed $*"; poweroff -f; }
for m in $(cat /modules.order); do insmod "/modules/$m" || fail "insmod $m failed"; done
H=/host
mkdir -p $H
# The host's root does not change under a run: cache it fully (node starts ~10x faster than uncached).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot $H || fail "cannot mount the host's root"
for d in tmp run; do mount -t tmpfs -o mode=1777 tmpfs $H/$d; done
mount -t proc proc $H/proc
mount -t sysfs sysfs $H/sys
mount -t cgroup2 cgroup2 $H/sys/fs/cgroup  # job containers (lib/jobs/container.ts)
mount -t devtmpfs devtmpfs $H/dev
mkdir -p $H/dev/pts $H/dev/shm
mount -t devpts devpts $H/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $H/dev/shm
J=$H${GUEST_JOB_DIR}
mkdir -p $J
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job $J || fail "cannot mount the job directory"
project=$(cat $J/project 2>/dev/null)
if [ -n "$project" ]; then
  mkdir -p "$H$project" 2>/dev/null  # under /tmp or /run the mount point is on the guest's tmpfs
  # cache=mmap: file data through the page cache (fast reads), metadata always asked of the host.
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap project "$H$project" || fail "cannot mount the project at $project"
fi
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
NET=eth0
DEV=rxe0
L="$${LINK_PARAMETER}"
if [ -n "$L" ]; then
  mac=\${L%%,*}; L=\${L#*,}; addr=\${L%%,*}; DEV=\${L#*,}; NET=
  for n in /sys/class/net/*; do [ "$(cat $n/address)" = "$mac" ] && NET=\${n##*/}; done
  [ -n "$NET" ] || fail "no network interface has the link's MAC $mac"
  ip link set $NET up
  ip addr add $addr dev $NET || fail "cannot put $addr on $NET"
  ip4=\${addr%/*}
  hostname host$((\${ip4##*.} - 1))  # host0, host1: what mpirun and Slurm call them
else
  hostname rdma-node-vm
fi
chroot $H /usr/bin/rdma link add $DEV type rxe netdev $NET || fail "rdma link add $DEV failed"
i=0
until grep -q ACTIVE /sys/class/infiniband/$DEV/ports/1/state 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "the $DEV port did not become ACTIVE within 10 s"
  sleep 0.1
done
echo "$M ready $DEV on $NET"
# env -i: the command sees only what run.sh exports, not init's environment.
chroot $H /usr/bin/env -i /bin/sh ${GUEST_JOB_DIR}/run.sh </dev/null
status=$?
echo $status > $J/status
sync
echo "$M exit $status"
poweroff -f
`;

export type Marker = { kind: 'ready'; detail: string } | { kind: 'exit'; status: number } | { kind: 'failed'; reason: string };

/**
 * Splits a console line (\r already removed) into the command's output and the marker, if any. A marker
 * can follow output on the same line when the command's last line had no newline.
 */
export function parseConsoleLine(line: string, nonce: string): { text: string; marker?: Marker } {
  const at = line.indexOf(`${nonce} `);
  if (at < 0) return { text: line };
  const text = line.slice(0, at);
  const [word, ...rest] = line.slice(at + nonce.length + 1).split(' ');
  if (word === 'ready') return { text, marker: { kind: 'ready', detail: rest.join(' ') } };
  if (word === 'exit' && /^\d+$/.test(rest[0] ?? '')) return { text, marker: { kind: 'exit', status: Number(rest[0]) } };
  if (word === 'failed') return { text, marker: { kind: 'failed', reason: rest.join(' ') } };
  return { text: line };
}
