#include "cli/bench_runner.h"

#include <grpc/support/time.h>
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <memory>
#include <thread>

#include "cli/bench_stats.h"
#include "cli/bench_workload.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace synod::cli::bench {

namespace {

using Clock = std::chrono::steady_clock;
using etcdserverpb::KV;

constexpr uint64_t kMaxTotal = 50'000'000;  // latencies are kept: 8 bytes per request
constexpr uint32_t kMaxClients = 100'000;
constexpr uint32_t kMaxClientThreads = 16;
constexpr uint32_t kMaxKeySize = 1 << 20;
constexpr uint32_t kMaxValSize = 64 << 20;

// One connection: a channel per endpoint, each in its own subchannel pool so that `conns`
// connections really are that many TCP connections per endpoint.
struct Conn {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<KV::Stub>> stubs;
};

std::vector<Conn> open_conns(const BenchOptions& options) {
  std::vector<Conn> conns(options.conns);
  for (Conn& conn : conns) {
    for (const std::string& endpoint : options.endpoints) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetMaxReceiveMessageSize(-1);
      std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
      if (options.tls) {
        grpc::SslCredentialsOptions tls;
        tls.pem_root_certs = options.tls_ca;
        tls.pem_cert_chain = options.tls_cert;
        tls.pem_private_key = options.tls_key;
        credentials = grpc::SslCredentials(tls);
      }
      auto channel = grpc::CreateCustomChannel(endpoint, credentials, args);
      conn.stubs.push_back(KV::NewStub(channel));
      conn.channels.push_back(std::move(channel));
    }
  }
  return conns;
}

// gRPC takes system_clock or gpr_timespec deadlines; a monotonic gpr_timespec keeps steady time.
gpr_timespec grpc_deadline(Clock::time_point deadline) {
  auto remaining = std::max(deadline - Clock::now(), Clock::duration::zero());
  auto remaining_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(remaining).count();
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_nanos(remaining_ns, GPR_TIMESPAN));
}

bool retryable(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// Sends serializable single-key reads until the endpoint answers or `deadline` passes. Any answer,
// even an error status from the server, proves it reachable; the last transport error is returned.
grpc::Status probe(KV::Stub& stub, Clock::time_point deadline) {
  etcdserverpb::RangeRequest request;
  request.set_key("synod-bench-probe");
  request.set_serializable(true);
  request.set_limit(1);
  grpc::Status status;
  grpc::Status unavailable;  // the last refusal says more than a final deadline does
  for (int attempt = 0; attempt < 10'000; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(grpc_deadline(std::min(deadline, Clock::now() + std::chrono::seconds(1))));
    etcdserverpb::RangeResponse response;
    status = stub.Range(&context, request, &response);
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) unavailable = status;
    if (!retryable(status) || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!retryable(status)) return grpc::Status::OK;
  return unavailable.ok() ? status : unavailable;
}

// Probes every endpoint on the first connection, then waits for every channel to connect.
bool connect_all(const BenchOptions& options, std::vector<Conn>& conns, std::ostream& err) {
  const Clock::time_point deadline = Clock::now() + options.dial_timeout;
  for (size_t e = 0; e < options.endpoints.size(); ++e) {
    grpc::Status status = probe(*conns[0].stubs[e], deadline);
    if (!status.ok()) {
      err << "synod bench: endpoint " << options.endpoints[e] << " unreachable within "
          << options.dial_timeout.count() << " ms: " << status_code_name(status.error_code())
          << ": " << status.error_message() << "\n";
      return false;
    }
  }
  for (Conn& conn : conns) {
    for (size_t e = 0; e < conn.channels.size(); ++e) {
      if (!conn.channels[e]->WaitForConnected(grpc_deadline(deadline))) {
        err << "synod bench: connection to " << options.endpoints[e] << " not ready within "
            << options.dial_timeout.count() << " ms\n";
        return false;
      }
    }
  }
  return true;
}

// State shared by the client threads of one run.
struct Shared {
  const BenchOptions& options;
  std::vector<Conn>& conns;
  Clock::time_point start;
  Clock::time_point end;  // when the last client thread stopped
  std::atomic<uint64_t> next_sequence{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> failed{0};

  // With --rate, request `sequence` may not leave before start + sequence / rate.
  Clock::time_point due(uint64_t sequence) const {
    if (options.rate_rps <= 0) return start;
    auto offset = std::chrono::duration<double>(static_cast<double>(sequence) / options.rate_rps);
    return start + std::chrono::duration_cast<Clock::duration>(offset);
  }
};

// The three workloads, as policies of Worker: how to fill a request and which RPC sends it.
struct PutPolicy {
  using Request = etcdserverpb::PutRequest;
  using Response = etcdserverpb::PutResponse;
  const KeySource* keys;
  const std::string* value;
  void fill(uint64_t sequence, Rng& rng, Request& request) const {
    fill_put(*keys, *value, sequence, rng, request);
  }
  static auto prepare(KV::Stub& stub, grpc::ClientContext* context, const Request& request,
                      grpc::CompletionQueue* cq) {
    return stub.PrepareAsyncPut(context, request, cq);
  }
};

struct RangePolicy {
  using Request = etcdserverpb::RangeRequest;
  using Response = etcdserverpb::RangeResponse;
  const BenchOptions* options;
  void fill(uint64_t /*sequence*/, Rng& /*rng*/, Request& request) const {
    if (request.key() == options->range_key) return;  // filled by an earlier request
    request.set_key(options->range_key);
    request.set_range_end(options->range_end);
    request.set_serializable(options->serializable);
  }
  static auto prepare(KV::Stub& stub, grpc::ClientContext* context, const Request& request,
                      grpc::CompletionQueue* cq) {
    return stub.PrepareAsyncRange(context, request, cq);
  }
};

struct TxnPutPolicy {
  using Request = etcdserverpb::TxnRequest;
  using Response = etcdserverpb::TxnResponse;
  const KeySource* keys;
  const std::string* value;
  uint32_t ops;
  void fill(uint64_t sequence, Rng& rng, Request& request) const {
    fill_txn_put(*keys, *value, ops, sequence, rng, request);
  }
  static auto prepare(KV::Stub& stub, grpc::ClientContext* context, const Request& request,
                      grpc::CompletionQueue* cq) {
    return stub.PrepareAsyncTxn(context, request, cq);
  }
};

// One client thread: a completion queue and the closed-loop clients multiplexed on it.
template <class Policy>
class Worker {
 public:
  Worker(Shared& shared, Policy policy, std::vector<uint32_t> clients, uint64_t seed)
      : shared_(shared), policy_(policy), rng_(seed) {
    for (uint32_t client : clients) {
      slots_.push_back(std::make_unique<Slot>());
      slots_.back()->client = client;
    }
    tally_.reserve(shared_.options.total / shared_.options.client_threads + clients.size());
  }

  // Returns once every client has run out of requests and nothing is outstanding.
  void run() {
    for (auto& slot : slots_) advance(*slot);
    while (pending_ > 0) {
      void* tag = nullptr;
      bool ok = false;
      bool got = cq_.Next(&tag, &ok);
      assert(got);
      if (!got) break;
      on_event(*static_cast<Slot*>(tag));
    }
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  Tally& tally() { return tally_; }

 private:
  enum class State { kIdle, kPaced, kInFlight };
  struct Slot {
    uint32_t client = 0;
    uint64_t sent = 0;  // requests this client has sent: picks the endpoint in turn
    State state = State::kIdle;
    typename Policy::Request request;
    typename Policy::Response response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientAsyncResponseReader<typename Policy::Response>> reader;
    std::unique_ptr<grpc::Alarm> alarm;
    Clock::time_point sent_at;
  };

  // Claims the next request of the run for `slot`, or leaves it idle when all are claimed.
  void advance(Slot& slot) {
    assert(slot.state == State::kIdle);
    uint64_t sequence = shared_.next_sequence.fetch_add(1, std::memory_order_relaxed);
    if (sequence >= shared_.options.total) return;
    policy_.fill(sequence, rng_, slot.request);
    Clock::time_point due = shared_.due(sequence);
    ++pending_;
    if (due > Clock::now()) {
      slot.state = State::kPaced;
      slot.alarm = std::make_unique<grpc::Alarm>();
      slot.alarm->Set(&cq_, grpc_deadline(due), &slot);
      return;
    }
    send(slot);
  }

  void send(Slot& slot) {
    const BenchOptions& options = shared_.options;
    Conn& conn = shared_.conns[slot.client % options.conns];
    KV::Stub& stub = *conn.stubs[(slot.client + slot.sent) % conn.stubs.size()];
    ++slot.sent;
    slot.context = std::make_unique<grpc::ClientContext>();
    slot.context->set_deadline(grpc_deadline(Clock::now() + options.request_timeout));
    slot.state = State::kInFlight;
    slot.sent_at = Clock::now();
    slot.reader = Policy::prepare(stub, slot.context.get(), slot.request, &cq_);
    slot.reader->StartCall();
    slot.reader->Finish(&slot.response, &slot.status, &slot);
  }

  void on_event(Slot& slot) {
    if (slot.state == State::kPaced) {
      slot.alarm.reset();
      send(slot);
      return;
    }
    assert(slot.state == State::kInFlight);
    auto latency = Clock::now() - slot.sent_at;
    if (slot.status.ok()) {
      tally_.record_ok(std::chrono::duration_cast<std::chrono::nanoseconds>(latency));
    } else {
      tally_.record_error(slot.status.error_code(), slot.status.error_message());
      shared_.failed.fetch_add(1, std::memory_order_relaxed);
    }
    shared_.completed.fetch_add(1, std::memory_order_relaxed);
    slot.reader.reset();
    slot.context.reset();
    slot.state = State::kIdle;
    --pending_;
    advance(slot);
  }

  Shared& shared_;
  Policy policy_;
  Rng rng_;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t pending_ = 0;  // slots waiting on the queue: an alarm or a call
  Tally tally_;
};

// Prints progress on `err` while the workers run: every second on a terminal (one line,
// rewritten), every 5 s otherwise; nothing during the first 2 s.
void report_progress(const Shared& shared, const std::atomic<bool>& finished, std::ostream& err) {
  const bool tty = isatty(STDERR_FILENO) == 1;
  const auto period = tty ? std::chrono::seconds(1) : std::chrono::seconds(5);
  Clock::time_point next = shared.start + std::chrono::seconds(2);
  bool printed = false;
  while (!finished.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Clock::time_point now = Clock::now();
    if (now < next) continue;
    next = now + period;
    uint64_t done = shared.completed.load();
    double elapsed_s = std::chrono::duration<double>(now - shared.start).count();
    err << (tty ? "\r" : "") << "synod bench: " << done << "/" << shared.options.total << " ("
        << (100 * done / std::max<uint64_t>(shared.options.total, 1)) << "%), "
        << static_cast<uint64_t>(static_cast<double>(done) / elapsed_s) << " req/s, "
        << shared.failed.load() << " errors" << (tty ? "   " : "\n") << std::flush;
    printed = true;
  }
  if (printed && tty) err << "\n";
}

template <class Policy>
Tally run_workers(Shared& shared, const Policy& policy, std::ostream& err) {
  const BenchOptions& options = shared.options;
  const uint32_t threads = std::min(options.client_threads, options.clients);
  std::vector<std::unique_ptr<Worker<Policy>>> workers;
  for (uint32_t t = 0; t < threads; ++t) {
    std::vector<uint32_t> clients;
    for (uint32_t c = t; c < options.clients; c += threads) clients.push_back(c);
    workers.push_back(std::make_unique<Worker<Policy>>(shared, policy, std::move(clients),
                                                       options.seed * 1'000'003ULL + t));
  }
  std::atomic<bool> finished{false};
  shared.start = Clock::now();
  std::thread progress;
  if (options.progress) progress = std::thread([&] { report_progress(shared, finished, err); });
  std::vector<std::thread> running;
  for (auto& worker : workers) running.emplace_back([&worker] { worker->run(); });
  for (std::thread& t : running) t.join();
  shared.end = Clock::now();
  finished.store(true);
  if (progress.joinable()) progress.join();
  Tally tally = std::move(workers[0]->tally());
  for (size_t t = 1; t < workers.size(); ++t) tally.merge(std::move(workers[t]->tally()));
  return tally;
}

nlohmann::json config_json(const BenchOptions& o) {
  nlohmann::json j = {{"endpoints", o.endpoints},
                      {"clients", o.clients},
                      {"conns", o.conns},
                      {"total", o.total},
                      {"client_threads", std::min(o.client_threads, o.clients)},
                      {"rate", o.rate_rps},
                      {"seed", o.seed}};
  if (o.kind == WorkloadKind::kRange) {
    j["key"] = o.range_key;
    j["range_end"] = o.range_end;
    j["consistency"] = o.serializable ? "s" : "l";
  } else {
    j["key_size"] = o.key_size;
    j["val_size"] = o.val_size;
    j["key_space_size"] = o.key_space_size;
    j["sequential_keys"] = o.sequential_keys;
  }
  if (o.kind == WorkloadKind::kTxnPut) j["txn_ops"] = o.txn_ops;
  if (o.bft) j["bft"] = true;
  return j;
}

Tally run_kind(Shared& shared, std::ostream& err) {
  const BenchOptions& o = shared.options;
  const KeySource keys(o.key_size, o.key_space_size, o.sequential_keys);
  const std::string value = make_value(o.val_size, o.seed);
  switch (o.kind) {
    case WorkloadKind::kPut:
      return run_workers(shared, PutPolicy{&keys, &value}, err);
    case WorkloadKind::kRange:
      return run_workers(shared, RangePolicy{&o}, err);
    case WorkloadKind::kTxnPut:
      return run_workers(shared, TxnPutPolicy{&keys, &value, o.txn_ops}, err);
  }
  return Tally{};
}

}  // namespace

const char* workload_name(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kPut:
      return "put";
    case WorkloadKind::kRange:
      return "range";
    case WorkloadKind::kTxnPut:
      return "txn-put";
  }
  return "?";
}

nlohmann::json bench_config(const BenchOptions& o) {
  return config_json(o);
}

std::string validate(const BenchOptions& o) {
  if (o.endpoints.empty()) return "--endpoints: at least one endpoint is needed";
  if (o.clients < 1 || o.clients > kMaxClients)
    return "--clients must be in 1.." + std::to_string(kMaxClients);
  if (o.conns < 1 || o.conns > o.clients) return "--conns must be in 1..--clients";
  if (o.total < 1 || o.total > kMaxTotal)
    return "--total must be in 1.." + std::to_string(kMaxTotal);
  if (o.client_threads < 1 || o.client_threads > kMaxClientThreads) {
    return "--client-threads must be in 1.." + std::to_string(kMaxClientThreads);
  }
  if (o.rate_rps < 0) return "--rate must be >= 0";
  if (o.bft && o.bft_keys.empty())
    return "--bft needs --bft-keys DIR (the members' NAME.pub files)";
  if (o.bft && o.clients > 1024) return "--bft: at most 1024 clients (a thread each)";
  if (o.kind == WorkloadKind::kRange) {
    if (o.range_key.empty()) return "range: a key is needed (synod bench range KEY [END])";
    return "";
  }
  if (o.key_space_size < 1) return "--key-space-size must be >= 1";
  if (o.key_size < KeySource::digits_needed(o.key_space_size) || o.key_size > kMaxKeySize) {
    return "--key-size " + std::to_string(o.key_size) + " cannot hold " +
           std::to_string(o.key_space_size) + " distinct keys (needs " +
           std::to_string(KeySource::digits_needed(o.key_space_size)) + " bytes)";
  }
  if (o.val_size > kMaxValSize) return "--val-size is too large";
  if (o.kind == WorkloadKind::kTxnPut && (o.txn_ops < 1 || o.txn_ops > o.key_space_size)) {
    return "--txn-ops must be in 1..--key-space-size (a txn may not put one key twice)";
  }
  return "";
}

int run_bench(const BenchOptions& options, std::ostream& out, std::ostream& err) {
  assert(validate(options).empty());
  if (options.bft) return run_bft_bench(options, out, err);
  std::vector<Conn> conns = open_conns(options);
  if (!connect_all(options, conns, err)) return kExitUnreachable;
  Shared shared{options, conns, Clock::now(), Clock::now()};
  Tally tally = run_kind(shared, err);
  auto duration = shared.end - shared.start;
  Summary summary = summarize(workload_name(options.kind), tally,
                              std::chrono::duration_cast<std::chrono::nanoseconds>(duration));
  assert(summary.requests == options.total);
  if (options.json) {
    print_json(summary, config_json(options), out);
  } else {
    print_text(summary, out);
  }
  return summary.errors == 0 ? kExitOk : kExitRequestErrors;
}

}  // namespace synod::cli::bench
