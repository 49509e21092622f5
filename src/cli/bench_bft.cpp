// synod bench --bft: closed-loop clients of a PBFT cluster through the BFT client, a thread
// each (a BFT request is a round to every member, not one RPC).
#include <atomic>
#include <thread>

#include "cli/bench_runner.h"
#include "cli/bench_stats.h"
#include "cli/bench_workload.h"
#include "cli/bft_client.h"

namespace synod::cli::bench {

int run_bft_bench(const BenchOptions& o, std::ostream& out, std::ostream& err) {
  BftClient::Options co;
  co.endpoints = o.endpoints;
  co.key_dir = o.bft_keys;
  co.timeout = o.request_timeout;
  std::string error;
  std::unique_ptr<BftClient> client = BftClient::connect(co, &error);
  if (!client) {
    err << "synod bench: " << error << "\n";
    return kExitUnreachable;
  }
  const KeySource keys(o.kind == WorkloadKind::kRange ? 8 : o.key_size,
                       o.kind == WorkloadKind::kRange ? 1 : o.key_space_size, o.sequential_keys);
  const std::string value = make_value(o.val_size, o.seed);
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> ordered_reads{0};
  std::vector<Tally> tallies(o.clients);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < o.clients; ++t) {
    threads.emplace_back([&, t] {
      Rng rng(o.seed * 7919 + t);
      Tally& tally = tallies[t];
      for (uint64_t seq = next++; seq < o.total; seq = next++) {
        const Clock::time_point sent = Clock::now();
        std::string why;
        std::optional<synodpb::BftResult> r;
        if (o.kind == WorkloadKind::kRange) {
          etcdserverpb::RangeRequest range;
          range.set_key(o.range_key);
          range.set_range_end(o.range_end);
          bool ordered = !o.serializable;
          if (o.serializable) {
            r = client->read(range, &why, &ordered);
          } else {
            synodpb::Request op;
            *op.mutable_txn()->add_success()->mutable_request_range() = range;
            r = client->write(std::move(op), &why);
          }
          if (ordered) ++ordered_reads;
        } else {
          synodpb::Request op;
          if (o.kind == WorkloadKind::kPut) {
            fill_put(keys, value, seq, rng, *op.mutable_put());
          } else {
            fill_txn_put(keys, value, o.txn_ops, seq, rng, *op.mutable_txn());
          }
          r = client->write(std::move(op), &why);
        }
        if (r && !r->has_error()) {
          tally.record_ok(Clock::now() - sent);
        } else {
          tally.record_error(r ? 9 : 4, r ? r->error() : why);  // FAILED_PRECONDITION, DEADLINE
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const auto duration = Clock::now() - start;
  Tally all;
  for (Tally& t : tallies) all.merge(std::move(t));
  Summary summary = summarize(workload_name(o.kind), all,
                              std::chrono::duration_cast<std::chrono::nanoseconds>(duration));
  if (o.json) {
    nlohmann::json config = bench_config(o);
    config["ordered_reads"] = ordered_reads.load();
    print_json(summary, config, out);
  } else {
    print_text(summary, out);
    if (o.kind == WorkloadKind::kRange) {
      out << "reads ordered through the log: " << ordered_reads.load() << "\n";
    }
  }
  return summary.errors == 0 ? kExitOk : kExitRequestErrors;
}

}  // namespace synod::cli::bench
