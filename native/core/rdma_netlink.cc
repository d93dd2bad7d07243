#include "core/rdma_netlink.h"

#include <linux/netlink.h>
#include <rdma/rdma_netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <set>

namespace rdma {
namespace {

// The attributes of one reply by type (nldev messages carry no family header, as in nlmsg_parse(nlh, 0)).
// Types this header postdates are ignored.
class Attributes {
 public:
  explicit Attributes(const nlmsghdr* message) {
    const char* at = static_cast<const char*>(NLMSG_DATA(message));
    size_t left = message->nlmsg_len - NLMSG_HDRLEN;
    while (left >= NLA_HDRLEN) {
      const auto* attr = reinterpret_cast<const nlattr*>(at);
      if (attr->nla_len < NLA_HDRLEN || attr->nla_len > left) break;
      int type = attr->nla_type & NLA_TYPE_MASK;
      if (type < RDMA_NLDEV_ATTR_MAX) attrs_[type] = attr;
      size_t step = NLA_ALIGN(attr->nla_len);
      if (step >= left) break;
      at += step;
      left -= step;
    }
  }
  // NLA_NUL_STRING payloads; "" when absent.
  std::string String(int type) const {
    if (!Has(type)) return "";
    return std::string(Payload(type), strnlen(Payload(type), Length(type)));
  }
  template <class T>
  T Number(int type) const {
    T value = 0;
    if (Has(type) && Length(type) >= sizeof value) memcpy(&value, Payload(type), sizeof value);
    return value;
  }

 private:
  bool Has(int type) const { return attrs_[type] != nullptr; }
  const char* Payload(int type) const { return reinterpret_cast<const char*>(attrs_[type]) + NLA_HDRLEN; }
  size_t Length(int type) const { return attrs_[type]->nla_len - NLA_HDRLEN; }
  const nlattr* attrs_[RDMA_NLDEV_ATTR_MAX] = {};
};

// A request: header, then each attribute with its payload padded to 4 bytes.
class Message {
 public:
  explicit Message(int command) : bytes_(NLMSG_HDRLEN, '\0') {
    nlmsghdr header = {};
    header.nlmsg_type = RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, command);
    memcpy(&bytes_[0], &header, sizeof header);
  }
  // With its NUL, as mnl_attr_put_strz does: the kernel's policy is NLA_NUL_STRING.
  Message& String(int type, const std::string& value) { return Put(type, value.c_str(), value.size() + 1); }
  Message& U32(int type, uint32_t value) { return Put(type, &value, sizeof value); }
  // The finished header: length, flags and sequence number.
  const std::string& Seal(uint16_t flags, uint32_t seq) {
    nlmsghdr header;
    memcpy(&header, bytes_.data(), sizeof header);
    header.nlmsg_len = static_cast<uint32_t>(bytes_.size());
    header.nlmsg_flags = NLM_F_REQUEST | flags;
    header.nlmsg_seq = seq;
    memcpy(&bytes_[0], &header, sizeof header);
    return bytes_;
  }

 private:
  Message& Put(int type, const void* payload, size_t length) {
    nlattr attr = {static_cast<uint16_t>(NLA_HDRLEN + length), static_cast<uint16_t>(type)};
    size_t at = bytes_.size();
    bytes_.resize(at + NLA_ALIGN(attr.nla_len), '\0');
    memcpy(&bytes_[at], &attr, sizeof attr);
    memcpy(&bytes_[at + NLA_HDRLEN], payload, length);
    return *this;
  }
  std::string bytes_;
};

using OnReply = std::function<void(const Attributes&)>;

class Socket {
 public:
  Socket() : fd_(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_RDMA)), open_errno_(fd_ < 0 ? errno : 0) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // 0, or the errno of socket(): EPROTONOSUPPORT when the kernel has no RDMA netlink.
  int open_errno() const { return open_errno_; }

  // A command the kernel acknowledges: 0 or the errno of its ack.
  int Command(Message message) { return Exchange(message, NLM_F_ACK, nullptr); }
  // A command that answers with one reply (to on_reply) before its ack.
  int Query(Message message, const OnReply& on_reply) { return Exchange(message, NLM_F_ACK, &on_reply); }
  // A dump: each reply to on_reply; 0 or the errno that ended it.
  int Dump(Message message, const OnReply& on_reply) { return Exchange(message, NLM_F_DUMP, &on_reply); }

 private:
  int Exchange(Message& message, uint16_t flags, const OnReply* on_reply) {
    uint32_t seq = ++seq_;
    const std::string& bytes = message.Seal(flags, seq);
    sockaddr_nl kernel = {};
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return errno;
    for (;;) {
      iovec iov = {buffer_, sizeof buffer_};
      msghdr received = {};
      received.msg_iov = &iov;
      received.msg_iovlen = 1;
      ssize_t length = recvmsg(fd_, &received, 0);
      if (length < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      if (received.msg_flags & MSG_TRUNC) return EMSGSIZE;
      int left = static_cast<int>(length);
      for (auto* reply = reinterpret_cast<nlmsghdr*>(buffer_); NLMSG_OK(reply, left); reply = NLMSG_NEXT(reply, left)) {
        if (reply->nlmsg_seq != seq) continue;  // a late reply to an earlier request
        if (reply->nlmsg_type == NLMSG_ERROR) return -static_cast<const nlmsgerr*>(NLMSG_DATA(reply))->error;  // 0: the ack
        if (reply->nlmsg_type == NLMSG_DONE) {
          int status = 0;  // a dump that failed part way says so here
          if (reply->nlmsg_len >= NLMSG_LENGTH(sizeof status)) memcpy(&status, NLMSG_DATA(reply), sizeof status);
          return -status;
        }
        if (on_reply != nullptr) (*on_reply)(Attributes(reply));
      }
    }
  }

  int fd_;
  int open_errno_;
  uint32_t seq_ = 0;
  alignas(nlmsghdr) char buffer_[32768];  // libmnl's MNL_SOCKET_DUMP_SIZE: a dump datagram fits
};

const char* const kGet = "RDMA_NLDEV_CMD_GET";

NetlinkResult SocketFailure(const char* command, int err) {
  std::string detail = "socket(AF_NETLINK, NETLINK_RDMA)";
  if (err == EPROTONOSUPPORT) detail += ": this kernel has no RDMA (ib_core is not built or not loaded)";
  return {err, command, detail};
}

// Every device's name and index (a GET dump), for `command`, which needs them.
NetlinkResult DeviceIndexes(Socket& socket, const char* command, std::vector<std::pair<std::string, uint32_t>>* devices) {
  int err = socket.Dump(Message(RDMA_NLDEV_CMD_GET), [&](const Attributes& reply) {
    devices->emplace_back(reply.String(RDMA_NLDEV_ATTR_DEV_NAME), reply.Number<uint32_t>(RDMA_NLDEV_ATTR_DEV_INDEX));
  });
  if (err != 0) return {err, command, std::string(kGet) + " dump"};
  return {};
}

// The index of the device `name`, for `command`, once the socket is open: ENODEV when there is none.
NetlinkResult DeviceIndex(Socket& socket, const char* command, const std::string& name, uint32_t* index) {
  if (socket.open_errno() != 0) return SocketFailure(command, socket.open_errno());
  std::vector<std::pair<std::string, uint32_t>> devices;
  NetlinkResult listed = DeviceIndexes(socket, command, &devices);
  if (listed.err != 0) return listed;
  for (const auto& device : devices) {
    if (device.first == name) {
      *index = device.second;
      return {};
    }
  }
  return {ENODEV, command, "no RDMA device named " + name};
}

}  // namespace

NetlinkResult AddRdmaLink(std::string* name, const std::string& netdev, const std::string& type) {
  const char* command = "RDMA_NLDEV_CMD_NEWLINK";
  Socket socket;
  if (socket.open_errno() != 0) return SocketFailure(command, socket.open_errno());
  if (name->empty()) {
    std::vector<std::pair<std::string, uint32_t>> devices;
    NetlinkResult listed = DeviceIndexes(socket, command, &devices);
    if (listed.err != 0) return listed;
    std::set<std::string> taken;
    for (const auto& device : devices) taken.insert(device.first);
    for (int n = 0; name->empty() || taken.count(*name) != 0; n++) *name = type + std::to_string(n);
  }
  int err = socket.Command(Message(RDMA_NLDEV_CMD_NEWLINK)
                               .String(RDMA_NLDEV_ATTR_DEV_NAME, *name)
                               .String(RDMA_NLDEV_ATTR_LINK_TYPE, type)
                               .String(RDMA_NLDEV_ATTR_NDEV_NAME, netdev));
  // What the kernel means by these two, which strerror does not say.
  if (err == ENFILE) return {err, command, "an RDMA device named " + *name + " exists"};
  if (err == EEXIST) return {err, command, netdev + " already has a " + type + " device"};
  return {err, command, ""};
}

NetlinkResult DeleteRdmaLink(const std::string& name) {
  const char* command = "RDMA_NLDEV_CMD_DELLINK";
  Socket socket;
  uint32_t index = 0;
  NetlinkResult found = DeviceIndex(socket, command, name, &index);
  if (found.err != 0) return found;
  return {socket.Command(Message(RDMA_NLDEV_CMD_DELLINK).U32(RDMA_NLDEV_ATTR_DEV_INDEX, index)), command, ""};
}

NetlinkResult ListRdmaLinks(std::vector<RdmaLink>* links) {
  Socket socket;
  if (socket.open_errno() != 0) return SocketFailure(kGet, socket.open_errno());
  std::vector<RdmaLink> devices;
  int err = socket.Dump(Message(RDMA_NLDEV_CMD_GET), [&](const Attributes& reply) {
    RdmaLink device;
    device.name = reply.String(RDMA_NLDEV_ATTR_DEV_NAME);
    device.index = reply.Number<uint32_t>(RDMA_NLDEV_ATTR_DEV_INDEX);
    device.node_guid = reply.Number<uint64_t>(RDMA_NLDEV_ATTR_NODE_GUID);
    device.protocol = reply.String(RDMA_NLDEV_ATTR_DEV_PROTOCOL);
    devices.push_back(device);
  });
  if (err != 0) return {err, kGet, ""};
  for (const RdmaLink& device : devices) {
    err = socket.Dump(Message(RDMA_NLDEV_CMD_PORT_GET).U32(RDMA_NLDEV_ATTR_DEV_INDEX, device.index), [&](const Attributes& reply) {
      RdmaLink link = device;
      link.port = reply.Number<uint32_t>(RDMA_NLDEV_ATTR_PORT_INDEX);
      link.state = reply.Number<uint8_t>(RDMA_NLDEV_ATTR_PORT_STATE);
      link.phys_state = reply.Number<uint8_t>(RDMA_NLDEV_ATTR_PORT_PHYS_STATE);
      link.netdev = reply.String(RDMA_NLDEV_ATTR_NDEV_NAME);
      link.netdev_index = reply.Number<uint32_t>(RDMA_NLDEV_ATTR_NDEV_INDEX);
      links->push_back(link);
    });
    if (err != 0) return {err, kGet, "RDMA_NLDEV_CMD_PORT_GET dump of " + device.name};
  }
  return {};
}

NetlinkResult GsiQpState(const std::string& name, uint32_t port, uint8_t* state) {
  const char* command = "RDMA_NLDEV_CMD_RES_QP_GET";
  Socket socket;
  uint32_t index = 0;
  NetlinkResult found = DeviceIndex(socket, command, name, &index);
  if (found.err != 0) return found;
  // The kernel tracks each port's QP1 under an ID with the port in its top byte (rdma_restrack_add).
  int err = socket.Query(Message(RDMA_NLDEV_CMD_RES_QP_GET)
                             .U32(RDMA_NLDEV_ATTR_DEV_INDEX, index)
                             .U32(RDMA_NLDEV_ATTR_PORT_INDEX, port)
                             .U32(RDMA_NLDEV_ATTR_RES_LQPN, 1 | port << 24),
                         [&](const Attributes& reply) { *state = reply.Number<uint8_t>(RDMA_NLDEV_ATTR_RES_STATE); });
  return {err, command, err != 0 ? "QP1 of " + name + " port " + std::to_string(port) : ""};
}

}  // namespace rdma
