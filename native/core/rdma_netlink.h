// The kernel's RDMA netlink (NETLINK_RDMA, client RDMA_NL_NLDEV), as iproute2's `rdma link` speaks it:
// software RDMA links (rxe, siw) are added and deleted with it, and every device and port is listed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rdma {

// IB_DEVICE_NAME_MAX and IFNAMSIZ, each counting the terminating NUL; the link type ("rxe") is copied
// into an IFNAMSIZ buffer by the kernel too.
constexpr size_t kRdmaDeviceNameMax = 64;
constexpr size_t kNetdevNameMax = 16;

// One port of one RDMA device: a line of `rdma link show`.
struct RdmaLink {
  std::string name;
  uint32_t index = 0;
  uint32_t port = 0;
  uint64_t node_guid = 0;  // host order, as ibv_devices prints it
  std::string protocol;    // "roce", "ib", "iw"...; empty when the kernel does not say
  uint8_t state = 0;       // enum ib_port_state
  uint8_t phys_state = 0;  // IBTA PortPhysicalState
  std::string netdev;      // empty when no netdev is bound to the port
  uint32_t netdev_index = 0;
};

// How a request ended: err is 0, or the errno of `command` (the RDMA_NLDEV_CMD_* that failed, or that
// could not be sent), with `detail` when the kernel's ack is not where it came from.
struct NetlinkResult {
  int err = 0;
  const char* command = "";
  std::string detail;
};

// RDMA_NLDEV_CMD_NEWLINK. An empty *name becomes the first free "<type>N" (rxe0, rxe1...: the names the
// kernel's own "rxe%d" template gives, which netlink refuses), written back to *name.
NetlinkResult AddRdmaLink(std::string* name, const std::string& netdev, const std::string& type);
// RDMA_NLDEV_CMD_DELLINK of the device with that name (looked up by index, as iproute2 does): ENODEV
// when there is none.
NetlinkResult DeleteRdmaLink(const std::string& name);
// RDMA_NLDEV_CMD_GET dump, then RDMA_NLDEV_CMD_PORT_GET dump of each device: one entry per port.
NetlinkResult ListRdmaLinks(std::vector<RdmaLink>* links);
// RDMA_NLDEV_CMD_RES_QP_GET of QP1 (the GSI QP, which all connection management goes through) of the
// device's `port`, as `rdma res show qp link NAME/PORT lqpn 1` reads it: its enum ib_qp_state. ENODEV when
// there is no such device; ENOENT when the port has no QP1 (iWARP).
NetlinkResult GsiQpState(const std::string& name, uint32_t port, uint8_t* state);

}  // namespace rdma
