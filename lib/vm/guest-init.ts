/**
 * The guest's /init (busybox sh): load the modules, mount the host's root read-only with tmpfs over
 * /tmp and /run and the project read-write at its own path, bring up the network and an rxe device, then
 * run the job's script in a chroot and report its exit status (in the job directory and on the console).
 */
export const READY_MARKER = 'RDMA_NODE_VM_READY';
export const EXIT_MARKER = 'RDMA_NODE_VM_EXIT=';

export const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "[vm] $*"; echo "${EXIT_MARKER}125"; poweroff -f; }
say() { echo "[vm] $*"; }
for m in $(cat /modules.order); do insmod "/modules/$m" || fail "insmod $m failed"; done
H=/host
mkdir -p $H
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot $H || fail "cannot mount the host's root"
for d in tmp run; do mount -t tmpfs -o mode=1777 tmpfs $H/$d; done
mount -t proc proc $H/proc
mount -t sysfs sysfs $H/sys
mount -t devtmpfs devtmpfs $H/dev
mkdir -p $H/dev/pts $H/dev/shm
mount -t devpts devpts $H/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $H/dev/shm
mkdir -p $H/run/rdma-node-job
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 job $H/run/rdma-node-job || fail "cannot mount the job directory"
project=$(cat $H/run/rdma-node-job/project 2>/dev/null)
if [ -n "$project" ]; then
  mkdir -p "$H$project" 2>/dev/null  # under /tmp or /run the mount point is on the guest's tmpfs
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 project "$H$project" || fail "cannot mount the project at $project"
fi
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
chroot $H /usr/bin/rdma link add rxe0 type rxe netdev eth0 || fail "rdma link add rxe0 failed"
i=0
until grep -q ACTIVE /sys/class/infiniband/rxe0/ports/1/state 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "rxe0 port did not become ACTIVE"
  sleep 0.1
done
echo "${READY_MARKER}"
chroot $H /bin/sh /run/rdma-node-job/run.sh </dev/null
status=$?
echo $status > $H/run/rdma-node-job/status
sync
echo "${EXIT_MARKER}$status"
poweroff -f
`;
