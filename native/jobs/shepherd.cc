// rdma-node-shepherd: the container of one job, as Quadrics' ptrack was. `rdma-node run` starts it
// (lib/jobs/launcher.ts); it starts the ranks, holds every process they make, accounts them, and makes sure
// none survives the job. It is a process of its own, outside the job, so that it outlives a launcher that
// is killed (it sees the control socket close) and can then still kill the job.
//
// Two kinds of container, chosen by the launcher:
// - cgroup v2 (--cgroup-base BASE): the job is DIR = BASE/job-<the shepherd's pid>, each rank a leaf DIR/rank-R that the rank enters before it
//   execs; cgroup.kill kills everything in it atomically (forks included), cgroup.events says when it is
//   empty, and cpu.stat / memory.peak / memory.events account each rank with all it started.
// - processes: the shepherd is a child subreaper (orphans of the job are reparented to it, not to init),
//   the ranks share one process group, and every descendant is found by a scan of /proc and signalled
//   through a pidfd (a pid cannot be reused under a pidfd). Accounting is wait4's rusage.
//
// argv: [--cgroup-base BASE] [--pids-max N] [--grace MS] --ranks N -- program args...
// fds:  3 the control socket; for rank R: 4+3R its stdin, 5+3R its stdout, 6+3R its stderr.
// Out, one line each: "start R PID", "spawn-failed R ERRNO", "ending REASON",
//   "exit R PID CODE SIGNAL USER_US SYSTEM_US MAXRSS_KB", "orphan PID CODE SIGNAL USER_US SYSTEM_US MAXRSS_KB",
//   "account R|job USER_US SYSTEM_US PEAK_BYTES OOM_KILLS" (cgroup; -1 where a controller is missing), "done".
// In: "signal SIGNO" (to every process of the job), "end SIGNO GRACE_MS" (SIGNO to all, SIGKILL after the
//   grace; a negative one is --grace's). The end of the input is the launcher gone: everything is killed at once.
// A rank that fails (a non-zero status or a signal) ends the job with SIGTERM and the grace; so does the
// last rank's exit, for what the ranks left behind.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int kControl = 3;

struct Rank {
  pid_t pid = -1;
  bool exited = false;
};

struct Job {
  std::string cgroup;  // empty: the processes kind
  long pids_max = -1;
  int grace_ms = 2000;
  std::vector<Rank> ranks;
  pid_t group = 0;  // the ranks' process group
  bool ending = false;
  bool launcher_gone = false;
  int64_t kill_at_ms = -1;  // when the ending turns to SIGKILL
  std::string input;        // a partial command line
};

int64_t NowMs() {
  timespec now = {};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void Say(const std::string& line) {
  std::string text = line + "\n";
  // The launcher may be gone: then nobody listens, and the job is being killed anyway.
  if (send(kControl, text.data(), text.size(), MSG_NOSIGNAL) < 0) return;
}

bool WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::string text;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char chunk[4096];
  for (ssize_t n; (n = read(fd, chunk, sizeof chunk)) > 0;) text.append(chunk, static_cast<size_t>(n));
  close(fd);
  return text;
}

// "key value" lines (cpu.stat, memory.events): the value of `key`, or -1.
long long StatValue(const std::string& text, const std::string& key) {
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, key.size() + 1, key + " ") == 0) return atoll(text.c_str() + at + key.size() + 1);
    at = end + 1;
  }
  return -1;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int pidfd, int signo) { return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0)); }

// The parent of `pid` from /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces and parens), or -1.
pid_t ParentOf(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close_paren = stat.rfind(')');
  if (close_paren == std::string::npos || close_paren + 4 >= stat.size()) return -1;
  return static_cast<pid_t>(atoi(stat.c_str() + close_paren + 4));
}

// Every living descendant of this process (children, their children, ...), from one scan of /proc.
std::set<pid_t> Descendants() {
  std::multimap<pid_t, pid_t> children;
  if (DIR* proc = opendir("/proc")) {
    while (dirent* entry = readdir(proc)) {
      pid_t pid = static_cast<pid_t>(atoi(entry->d_name));
      if (pid <= 0) continue;
      pid_t parent = ParentOf(pid);
      if (parent > 0) children.emplace(parent, pid);
    }
    closedir(proc);
  }
  std::set<pid_t> found;
  std::vector<pid_t> pending = {getpid()};
  while (!pending.empty()) {
    pid_t parent = pending.back();
    pending.pop_back();
    auto [first, last] = children.equal_range(parent);
    for (auto it = first; it != last; ++it) {
      if (found.insert(it->second).second) pending.push_back(it->second);
    }
  }
  return found;
}

// Signals every process of the job. The process group first (atomic against forks within it), then each
// descendant that left it, through a pidfd: once it is open the pid cannot be reused, so the process that
// is checked to still be ours is the one signalled.
void SignalAll(Job& job, int signo) {
  if (!job.cgroup.empty() && signo == SIGKILL) WriteFile(job.cgroup + "/cgroup.kill", "1");
  if (job.group > 0) kill(-job.group, signo);
  std::set<pid_t> ours = Descendants();
  for (pid_t pid : ours) {
    int pidfd = PidfdOpen(pid);
    if (pidfd < 0) continue;
    pid_t parent = ParentOf(pid);
    if (parent == getpid() || ours.count(parent) != 0) PidfdSignal(pidfd, signo);
    close(pidfd);
  }
  if (!job.cgroup.empty()) {
    // Processes in the job's cgroup that are no descendants (moved in by someone else) are the job's too.
    for (size_t r = 0; r < job.ranks.size(); r++) {
      std::string procs = ReadFile(job.cgroup + "/rank-" + std::to_string(r) + "/cgroup.procs");
      for (const char* at = procs.c_str(); *at != '\0';) {
        char* end;
        pid_t pid = static_cast<pid_t>(strtol(at, &end, 10));
        if (end == at) break;
        int pidfd = PidfdOpen(pid);
        if (pidfd >= 0) {
          PidfdSignal(pidfd, signo);
          close(pidfd);
        }
        at = *end == '\n' ? end + 1 : end;
      }
    }
  }
}

void StartEnding(Job& job, const char* reason, int signo, int grace_ms) {
  if (!job.ending) Say(std::string("ending ") + reason);
  job.ending = true;
  int64_t kill_at = grace_ms <= 0 || signo == SIGKILL ? NowMs() : NowMs() + grace_ms;
  if (job.kill_at_ms < 0 || kill_at < job.kill_at_ms) job.kill_at_ms = kill_at;
  if (signo != SIGKILL) SignalAll(job, signo);
}

void ReadCommands(Job& job) {
  char chunk[512];
  ssize_t n = read(kControl, chunk, sizeof chunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    job.launcher_gone = true;
    StartEnding(job, "launcher-gone", SIGKILL, 0);
    return;
  }
  job.input.append(chunk, static_cast<size_t>(n));
  for (size_t end; (end = job.input.find('\n')) != std::string::npos; job.input.erase(0, end + 1)) {
    std::string line = job.input.substr(0, end);
    int signo = 0, grace = 0;
    if (sscanf(line.c_str(), "signal %d", &signo) == 1 && signo > 0 && signo < NSIG) {
      SignalAll(job, signo);
    } else if (sscanf(line.c_str(), "end %d %d", &signo, &grace) == 2 && signo > 0 && signo < NSIG) {
      StartEnding(job, "ended", signo, grace < 0 ? job.grace_ms : grace);
    }
  }
}

long long Micros(const timeval& t) { return static_cast<long long>(t.tv_sec) * 1000000 + t.tv_usec; }

void ReapChildren(Job& job) {
  for (;;) {
    int status = 0;
    rusage usage = {};
    pid_t pid = wait4(-1, &status, WNOHANG, &usage);
    if (pid <= 0) return;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int signo = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    std::string figures = std::to_string(code) + " " + std::to_string(signo) + " " + std::to_string(Micros(usage.ru_utime)) + " " +
                          std::to_string(Micros(usage.ru_stime)) + " " + std::to_string(usage.ru_maxrss);
    size_t r = 0;
    while (r < job.ranks.size() && job.ranks[r].pid != pid) r++;
    if (r == job.ranks.size()) {
      Say("orphan " + std::to_string(pid) + " " + figures);
      continue;
    }
    job.ranks[r].exited = true;
    Say("exit " + std::to_string(r) + " " + std::to_string(pid) + " " + figures);
    bool all_exited = true;
    for (const Rank& rank : job.ranks) all_exited = all_exited && rank.exited;
    if (code != 0) StartEnding(job, "rank-failed", SIGTERM, job.grace_ms);
    else if (all_exited) StartEnding(job, "ranks-exited", SIGTERM, job.grace_ms);
  }
}

// Nothing of the job is left: no child to reap, no descendant, and (cgroup) nothing in the cgroup.
bool Empty(const Job& job) {
  if (waitid(P_ALL, 0, nullptr, WEXITED | WNOHANG | WNOWAIT) == 0 || errno != ECHILD) return false;
  if (!Descendants().empty()) return false;
  return job.cgroup.empty() || StatValue(ReadFile(job.cgroup + "/cgroup.events"), "populated") == 0;
}

void Account(const std::string& dir, const std::string& who) {
  std::string cpu = ReadFile(dir + "/cpu.stat"), peak = ReadFile(dir + "/memory.peak"), events = ReadFile(dir + "/memory.events");
  Say("account " + who + " " + std::to_string(StatValue(cpu, "user_usec")) + " " + std::to_string(StatValue(cpu, "system_usec")) + " " +
      (peak.empty() ? "-1" : std::to_string(atoll(peak.c_str()))) + " " + std::to_string(StatValue(events, "oom_kill")));
}

// The cgroup of the job and a leaf per rank; the controllers the parent offers are enabled for the ranks.
int MakeCgroups(Job& job) {
  if (mkdir(job.cgroup.c_str(), 0755) != 0) return errno;
  std::string offered = ReadFile(job.cgroup + "/cgroup.controllers");
  for (const char* controller : {"cpu", "memory", "pids"}) {
    if (offered.find(controller) != std::string::npos) WriteFile(job.cgroup + "/cgroup.subtree_control", std::string("+") + controller);
  }
  if (job.pids_max > 0 && !WriteFile(job.cgroup + "/pids.max", std::to_string(job.pids_max))) return errno ? errno : EOPNOTSUPP;
  for (size_t r = 0; r < job.ranks.size(); r++) {
    if (mkdir((job.cgroup + "/rank-" + std::to_string(r)).c_str(), 0755) != 0) return errno;
  }
  return 0;
}

void RemoveCgroups(const Job& job) {
  for (size_t r = 0; r < job.ranks.size(); r++) rmdir((job.cgroup + "/rank-" + std::to_string(r)).c_str());
  rmdir(job.cgroup.c_str());
}

// Closes every descriptor from `from` up, but `keep`.
void CloseFrom(int from, int keep) {
  for (auto [first, last] : {std::pair<unsigned, unsigned>{static_cast<unsigned>(from), static_cast<unsigned>(keep - 1)},
                             std::pair<unsigned, unsigned>{static_cast<unsigned>(keep + 1), ~0U}}) {
    if (first > last) continue;
    if (syscall(SYS_close_range, first, last, 0) != 0) {
      for (unsigned fd = first; fd <= last && fd < 65536; fd++) close(static_cast<int>(fd));
    }
  }
}

// In the forked child: becomes rank `r` and execs the program; returns only on failure (errno), which
// it can still report on `status_fd` (close-on-exec).
int BecomeRank(const Job& job, size_t r, char** program, int status_fd) {
  if (!job.cgroup.empty() && !WriteFile(job.cgroup + "/rank-" + std::to_string(r) + "/cgroup.procs", "0")) return errno;
  setpgid(0, job.group);
  int base = 4 + 3 * static_cast<int>(r);
  for (int fd = 0; fd < 3; fd++) {
    if (dup2(base + fd, fd) < 0) return errno;
  }
  CloseFrom(3, status_fd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setenv("RDMA_NODE_RANK", std::to_string(r).c_str(), 1);
  setenv("RDMA_NODE_LOCAL_RANK", std::to_string(r).c_str(), 1);
  execvp(program[0], program);
  return errno;
}

void StartRanks(Job& job, char** program) {
  for (size_t r = 0; r < job.ranks.size(); r++) {
    // A CLOEXEC pipe tells whether the exec happened: it closes on success, carries errno on failure.
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0) {
      Say("spawn-failed " + std::to_string(r) + " " + std::to_string(errno));
      job.ranks[r].exited = true;
      StartEnding(job, "spawn-failed", SIGTERM, 0);
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(status_pipe[0]);
      int err = BecomeRank(job, r, program, status_pipe[1]);
      if (write(status_pipe[1], &err, sizeof err) < 0) _exit(127);
      _exit(127);
    }
    close(status_pipe[1]);
    int err = pid < 0 ? errno : 0;
    if (pid > 0) {
      job.ranks[r].pid = pid;  // reaped as a rank, even if its exec fails
      if (job.group == 0) job.group = pid;
      setpgid(pid, job.group);  // as the child does: whichever runs first
      if (read(status_pipe[0], &err, sizeof err) != sizeof err) err = 0;
    }
    close(status_pipe[0]);
    if (pid < 0) job.ranks[r].exited = true;  // nothing to reap
    if (err != 0) {
      Say("spawn-failed " + std::to_string(r) + " " + std::to_string(err));
      StartEnding(job, "spawn-failed", SIGTERM, 0);
    } else {
      Say("start " + std::to_string(r) + " " + std::to_string(pid));
    }
  }
  for (size_t r = 0; r < job.ranks.size(); r++) {
    for (int fd = 0; fd < 3; fd++) close(4 + 3 * static_cast<int>(r) + fd);
  }
}

int Usage() {
  fprintf(stderr, "usage: rdma-node-shepherd [--cgroup-base BASE] [--pids-max N] [--grace MS] --ranks N -- program args...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Job job;
  size_t ranks = 0;
  int at = 1;
  for (; at < argc && strcmp(argv[at], "--") != 0; at++) {
    if (at + 1 >= argc) return Usage();
    std::string flag = argv[at], value = argv[++at];
    if (flag == "--cgroup-base") job.cgroup = value + "/job-" + std::to_string(getpid());
    else if (flag == "--pids-max") job.pids_max = atol(value.c_str());
    else if (flag == "--grace") job.grace_ms = atoi(value.c_str());
    else if (flag == "--ranks") ranks = static_cast<size_t>(atol(value.c_str()));
    else return Usage();
  }
  if (at + 1 >= argc || ranks == 0 || ranks > 4096) return Usage();
  job.ranks.resize(ranks);
  char** program = argv + at + 1;

  // A rank's descriptor the launcher left closed (stdin for all ranks but the first) becomes /dev/null,
  // before anything of ours can take its number.
  for (int fd = 4; fd < 4 + 3 * static_cast<int>(ranks); fd++) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd != fd) {
      dup2(null_fd, fd);
      close(null_fd);
    }
  }
  // Orphans of the job come to us, not to init.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  sigset_t handled;
  sigemptyset(&handled);
  for (int signo : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, signo);
  sigprocmask(SIG_BLOCK, &handled, nullptr);
  int signals = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  fcntl(kControl, F_SETFD, FD_CLOEXEC);
  fcntl(kControl, F_SETFL, O_NONBLOCK);
  if (!job.cgroup.empty()) {
    int err = MakeCgroups(job);
    if (err != 0) {
      Say("spawn-failed -1 " + std::to_string(err));
      RemoveCgroups(job);
      Say("done");
      return 1;
    }
  }
  StartRanks(job, program);

  for (;;) {
    ReapChildren(job);
    int64_t now = NowMs();
    if (job.ending && job.kill_at_ms >= 0 && now >= job.kill_at_ms) {
      SignalAll(job, SIGKILL);
      ReapChildren(job);
    }
    if (job.ending && Empty(job)) break;
    int timeout = -1;
    if (job.ending && job.kill_at_ms >= 0) timeout = now >= job.kill_at_ms ? 20 : static_cast<int>(job.kill_at_ms - now);
    pollfd fds[2] = {{signals, POLLIN, 0}, {kControl, job.launcher_gone ? static_cast<short>(0) : static_cast<short>(POLLIN), 0}};
    if (poll(fds, 2, timeout) < 0 && errno != EINTR) break;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      while (read(signals, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo != SIGCHLD) StartEnding(job, "signalled", SIGTERM, job.grace_ms);
      }
    }
    if (fds[1].revents) ReadCommands(job);
  }
  if (!job.cgroup.empty()) {
    for (size_t r = 0; r < job.ranks.size(); r++) Account(job.cgroup + "/rank-" + std::to_string(r), std::to_string(r));
    Account(job.cgroup, "job");
    RemoveCgroups(job);
  }
  Say("done");
  return 0;
}
