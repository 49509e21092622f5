// Randomized WAL test: random appends (extending and truncating), hard states, snapshots, syncs
// and crash-restarts against an in-memory model; finally a crash in the middle of a write, cut
// at a random length, must recover exactly the state after some prefix of the records of that
// last write. Seeded; prints its seed; SYNOD_SEED=<n> replays one run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "core/rand.h"
#include "storage/wal.h"
#include "wal_test_util.h"

namespace synod::storage {
namespace {

using namespace synod::storage::testing;

// The durable state the WAL should recover, kept as a raft::Persisted.
struct Model {
  raft::Persisted state;
  uint64_t term = 1;

  raft::Index base() const { return state.snapshot ? state.snapshot->meta.index : raft::Index(0); }
  raft::Index last() const { return base() + state.entries.size(); }

  void append(const std::vector<raft::Entry>& batch) {
    state.entries.resize(batch.front().index - base() - 1);
    state.entries.insert(state.entries.end(), batch.begin(), batch.end());
  }

  // thesis figure 5.3 steps 6-7.
  void snapshot(const raft::Snapshot& s) {
    const uint64_t keep_from = s.meta.index - base();
    const bool match = s.meta.index <= last() && state.entries[keep_from - 1].term == s.meta.term;
    if (match) {
      state.entries.erase(state.entries.begin(), state.entries.begin() + keep_from);
    } else {
      state.entries.clear();
    }
    state.snapshot = s;
  }
};

uint64_t seed_for_run(uint64_t run) {
  if (const char* env = std::getenv("SYNOD_SEED")) return std::strtoull(env, nullptr, 10);
  return 1000 + run;
}

class RandomWal {
 public:
  RandomWal(uint64_t seed, const std::string& dir, uint64_t zero_ahead)
      : rng_(seed), opts_(options(dir, 2048, zero_ahead)) {}

  void reopen() {
    wal_.reset();
    Wal::Result r = Wal::open(opts_);
    ASSERT_TRUE(r.ok()) << r.error;
    expect_equal(r.recovered, synced_.state);
    wal_ = std::move(r.wal);
    model_ = synced_;
  }

  // One random step.
  void step() {
    const uint64_t dice = rng_.uniform(100);
    if (dice < 55) return append();
    if (dice < 65) return hard_state();
    if (dice < 85) return sync();
    if (dice < 90) return snapshot();
    reopen();  // a crash: whatever was not synced is gone
  }

  // The final crash: one more write, torn at a random length.
  void torn_final_write() {
    sync();                             // so that the final write starts from a synced state
    std::vector<Model> states{model_};  // after each record of the final write
    const size_t segments_before = wal_->segment_count();
    const std::string path = segment_paths(opts_.dir).back();
    const uint64_t synced_size = wal_->open_segment_bytes();
    for (uint64_t n = rng_.range(1, 5); n > 0; --n) {
      if (rng_.chance(0.7))
        append_one_record();
      else
        hard_state();
      states.push_back(model_);
    }
    ASSERT_TRUE(wal_->sync().ok());
    uint64_t written_size = wal_->open_segment_bytes();
    if (wal_->segment_count() != segments_before) {
      // The crash came before the rotation that followed the write: undo it. The rotation cut
      // the segment back to its records.
      std::filesystem::remove(segment_paths(opts_.dir).back());
      written_size = file_size(path);
    }
    wal_.reset();
    const uint64_t cut = rng_.range(synced_size, written_size);
    // Into zeros written ahead, the part of the write that never reached the disk reads as
    // zeros; otherwise the file ends where the write stopped.
    if (file_size(path) > written_size && rng_.chance(0.5)) {
      zero_range(path, cut, written_size);
    } else {
      truncate_to(path, cut);
    }
    Wal::Result r = Wal::open(opts_);
    ASSERT_TRUE(r.ok()) << r.error;
    bool matched = false;
    for (const Model& m : states) matched = matched || same(r.recovered, m.state);
    EXPECT_TRUE(matched) << "recovered state is not a prefix of the last write (cut " << cut
                         << " in " << synced_size << ".." << written_size << ")";
  }

 private:
  static bool same(const raft::Persisted& a, const raft::Persisted& b) {
    return a.hard_state == b.hard_state && a.snapshot == b.snapshot && a.entries == b.entries;
  }

  static void expect_equal(const raft::Persisted& got, const raft::Persisted& want) {
    EXPECT_EQ(got.hard_state, want.hard_state);
    EXPECT_EQ(got.snapshot, want.snapshot);
    ASSERT_EQ(got.entries.size(), want.entries.size());
    EXPECT_EQ(got.entries, want.entries);
  }

  std::vector<raft::Entry> random_batch(uint64_t max_count) {
    const uint64_t last = model_.last().value;
    uint64_t first = last + 1;
    if (rng_.chance(0.2) && last > model_.base().value) {
      first = rng_.range(model_.base().value + 1, last);  // a new leader overwrites a suffix
      ++model_.term;
    }
    return make_entries(first, rng_.range(1, max_count), model_.term, rng_.uniform(40));
  }

  void append() {
    std::vector<raft::Entry> batch = random_batch(20);
    ASSERT_TRUE(wal_->append(batch, std::nullopt).ok());
    model_.append(batch);
  }

  // Small enough to be a single record.
  void append_one_record() {
    std::vector<raft::Entry> batch = random_batch(3);
    ASSERT_TRUE(wal_->append(batch, std::nullopt).ok());
    model_.append(batch);
  }

  void hard_state() {
    raft::HardState hs{raft::Term(model_.term), raft::NodeId(rng_.range(0, 3)),
                       raft::Index(rng_.uniform(model_.last().value + 1))};
    ASSERT_TRUE(wal_->append({}, hs).ok());
    model_.state.hard_state = hs;
  }

  void sync() {
    ASSERT_TRUE(wal_->sync().ok());
    synced_ = model_;
  }

  void snapshot() {
    raft::Snapshot s;
    const uint64_t base = model_.base().value, last = model_.last().value;
    if (last > base && rng_.chance(0.8)) {  // compaction of our own log
      s.meta.index = raft::Index(rng_.range(base + 1, last));
      s.meta.term = model_.state.entries[s.meta.index - model_.base() - 1].term;
    } else {  // installing a leader's snapshot that does not match our log
      s.meta.index = raft::Index(rng_.range(base + 1, last + 10));
      s.meta.term = raft::Term(++model_.term);
    }
    s.meta.conf.voters = {raft::NodeId(1), raft::NodeId(rng_.range(2, 9))};
    s.data = "image@" + std::to_string(s.meta.index.value);
    ASSERT_TRUE(wal_->save_snapshot(s).ok());
    model_.snapshot(s);
    synced_ = model_;  // save_snapshot syncs what was buffered before it
  }

  Rng rng_;
  Wal::Options opts_;
  std::unique_ptr<Wal> wal_;
  Model model_;   // as appended
  Model synced_;  // as of the last sync
};

TEST(WalRandom, RecoveryYieldsEverythingSyncedAndAPrefixOfTheTornWrite) {
  const int runs = std::getenv("SYNOD_SEED") ? 1 : 12;
  for (int run = 0; run < runs; ++run) {
    const uint64_t seed = seed_for_run(run);
    SCOPED_TRACE("SYNOD_SEED=" + std::to_string(seed));
    // Odd seeds write zeros ahead, a few bytes to a few KiB at a time, so that syncs often
    // pass the zeros' end; even seeds grow the file by its records only.
    const uint64_t zero_ahead = seed % 2 == 1 ? 1 + seed * 2654435761u % 3000 : 0;
    std::cout << "WalRandom seed " << seed << " zero_ahead " << zero_ahead
              << " (replay with SYNOD_SEED=" << seed << ")\n";
    TempDir dir;
    RandomWal w(seed, dir.path(), zero_ahead);
    w.reopen();
    for (int i = 0; i < 250 && !::testing::Test::HasFatalFailure(); ++i) w.step();
    if (::testing::Test::HasFatalFailure()) return;
    w.torn_final_write();
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace synod::storage
