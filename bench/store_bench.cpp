// The MVCC store on RocksDB, without Raft or the network: what a member's apply loop pays per
// put, and what a read pays per single-key range. A Ready's worth of puts (10 by default, the
// batch size seen under the 64-client benchmark) is applied and flushed as one storage write,
// as server::Node::apply does.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "kv/buffered_backend.h"
#include "kv/store.h"
#include "storage/rocks_backend.h"

namespace {

class Fixture {
 public:
  Fixture() {
    char pattern[] = "/tmp/synod-store-bench-XXXXXX";
    const char* dir = mkdtemp(pattern);
    if (dir == nullptr) std::abort();
    dir_ = dir;
    auto backend = synod::storage::RocksBackend::open(dir_ + "/db");
    if (!backend) std::abort();
    rocks_ = std::move(*backend);
    buffered_ = std::make_unique<synod::kv::BufferedBackend>(*rocks_);
    store_ = std::make_unique<synod::kv::Store>(*buffered_);
  }
  ~Fixture() {
    store_.reset();
    buffered_.reset();
    rocks_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Puts `n` random keys of the key space, 256-byte values, applied as one batch.
  void put_batch(int n, std::mt19937_64& rng, uint64_t key_space) {
    for (int i = 0; i < n; ++i) {
      synodpb::Request req;
      char key[16];
      std::snprintf(key, sizeof key, "%08llu", static_cast<unsigned long long>(rng() % key_space));
      req.mutable_put()->set_key(key);
      req.mutable_put()->set_value(std::string(256, 'v'));
      benchmark::DoNotOptimize(store_->apply(++index_, req));
    }
    buffered_->flush();
  }

  const synod::kv::Store& store() const { return *store_; }

 private:
  std::string dir_;
  std::unique_ptr<synod::storage::RocksBackend> rocks_;
  std::unique_ptr<synod::kv::BufferedBackend> buffered_;
  std::unique_ptr<synod::kv::Store> store_;
  uint64_t index_ = 0;
};

// Items per second = puts applied per second (one core).
void BM_PutBatch(benchmark::State& state) {
  Fixture f;
  std::mt19937_64 rng(1);
  const int batch = static_cast<int>(state.range(0));
  for (auto _ : state) f.put_batch(batch, rng, 100'000);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_PutBatch)->Arg(10)->Arg(100);

// Ranges over a store holding 100,000 keys written 200,000 times in all.
void run_range(benchmark::State& state, const etcdserverpb::RangeRequest& req) {
  Fixture f;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2'000; ++i) f.put_batch(100, rng, 100'000);
  for (auto _ : state) benchmark::DoNotOptimize(f.store().range(req));
  state.SetItemsProcessed(state.iterations());
}

// One key (the range benchmark's read); Arg 1: keys only.
void BM_RangeOneKey(benchmark::State& state) {
  etcdserverpb::RangeRequest req;
  req.set_key("00000042");
  req.set_keys_only(state.range(0) != 0);
  run_range(state, req);
}
BENCHMARK(BM_RangeOneKey)->Arg(0)->Arg(1);

// 100 consecutive keys, values included.
void BM_Range100Keys(benchmark::State& state) {
  etcdserverpb::RangeRequest req;
  req.set_key("00001000");
  req.set_range_end("00001100");
  run_range(state, req);
}
BENCHMARK(BM_Range100Keys);

}  // namespace
