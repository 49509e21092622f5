// fault_netdelay: adds latency to the packets an iptables NFQUEUE rule hands it, for kernels
// without sch_netem (tests/fault/netns.py uses it then). Each packet is held for the delay plus
// a uniform jitter, then accepted; with jitter, packets may leave out of order, as with netem.
//
//   ip netns exec NS iptables -A OUTPUT -d PEER -j NFQUEUE --queue-num 7 --queue-bypass
//   ip netns exec NS fault_netdelay --queue 7 --delay-ms 100 --jitter-ms 50 --seconds 60
//
// Runs until SIGTERM/SIGINT or --seconds have passed (bounded either way), then accepts what it
// still holds. --queue-bypass lets packets through whenever the program is not running.
#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Held {
  Clock::time_point release;
  uint32_t id = 0;
  bool operator>(const Held& o) const { return release > o.release; }
};

struct State {
  std::priority_queue<Held, std::vector<Held>, std::greater<>> held;
  std::chrono::microseconds delay{0};
  std::chrono::microseconds jitter{0};
  std::mt19937_64 rng{1};
  uint64_t packets = 0;
};

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

int on_packet(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
  auto& st = *static_cast<State*>(data);
  const nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (ph == nullptr) return 0;
  int64_t us = st.delay.count();
  if (st.jitter.count() > 0) {
    us += std::uniform_int_distribution<int64_t>(-st.jitter.count(), st.jitter.count())(st.rng);
  }
  st.held.push({Clock::now() + std::chrono::microseconds(us < 0 ? 0 : us), ntohl(ph->packet_id)});
  ++st.packets;
  return 0;
}

void release_due(nfq_q_handle* qh, State& st, bool all) {
  const auto now = Clock::now();
  while (!st.held.empty() && (all || st.held.top().release <= now)) {
    nfq_set_verdict(qh, st.held.top().id, NF_ACCEPT, 0, nullptr);
    st.held.pop();
  }
}

int usage(const char* why) {
  std::fprintf(stderr,
               "fault_netdelay: %s\nusage: fault_netdelay --queue N --delay-ms D "
               "[--jitter-ms J] [--seconds S]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long queue = -1, delay_ms = -1, jitter_ms = 0, seconds = 600;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    char* end = nullptr;
    const long v = std::strtol(argv[i + 1], &end, 10);
    if (*end != '\0' || v < 0) return usage(("bad value for " + flag).c_str());
    if (flag == "--queue")
      queue = v;
    else if (flag == "--delay-ms")
      delay_ms = v;
    else if (flag == "--jitter-ms")
      jitter_ms = v;
    else if (flag == "--seconds")
      seconds = v;
    else
      return usage(("unknown flag " + flag).c_str());
  }
  if (argc % 2 == 0) return usage("flags come in pairs");
  if (queue < 0 || queue > 65535 || delay_ms < 0) return usage("--queue and --delay-ms are needed");
  if (jitter_ms > delay_ms) return usage("--jitter-ms must not exceed --delay-ms");

  State st;
  st.delay = std::chrono::milliseconds(delay_ms);
  st.jitter = std::chrono::milliseconds(jitter_ms);
  nfq_handle* h = nfq_open();
  if (h == nullptr) return usage("nfq_open failed (needs root and NFQUEUE in the kernel)");
  nfq_q_handle* qh = nfq_create_queue(h, static_cast<uint16_t>(queue), &on_packet, &st);
  if (qh == nullptr) {
    std::fprintf(stderr, "fault_netdelay: cannot bind queue %ld: %s\n", queue,
                 std::strerror(errno));
    nfq_close(h);
    return 1;
  }
  nfq_set_mode(qh, NFQNL_COPY_META, 0);
  nfq_set_queue_maxlen(qh, 20000);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  const int fd = nfq_fd(h);
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  std::vector<char> buf(1 << 16);
  while (g_stop == 0 && Clock::now() < deadline) {
    int timeout_ms = 100;
    if (!st.held.empty()) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
          st.held.top().release - Clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 100));
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN)) {
      const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      // ENOBUFS: the kernel dropped queue messages under load; those packets are lost, as on
      // a congested link
      if (n > 0) nfq_handle_packet(h, buf.data(), static_cast<int>(n));
    }
    release_due(qh, st, false);
  }
  release_due(qh, st, true);
  nfq_destroy_queue(qh);
  nfq_close(h);
  std::fprintf(stderr, "fault_netdelay: delayed %llu packets\n",
               static_cast<unsigned long long>(st.packets));
  return 0;
}
