// kv::WatchHub: etcd's watch semantics over a real kv::Store.
#include "kv/watch_hub.h"

#include <gtest/gtest.h>

#include "test_backend.h"

namespace synod::kv {
namespace {

using etcdserverpb::WatchCreateRequest;

class KV_SUITE(WatchHubTest) : public ::testing::Test {
 protected:
  KV_SUITE(WatchHubTest)() : tb_(testing::make_test_backend()), store_(tb_->get()) {}

  // Applies a request as the server does: events to the hub when the revision moved.
  void apply(const synodpb::Request& req) {
    std::vector<mvccpb::Event> events;
    const int64_t before = store_.revision();
    ASSERT_TRUE(store_.apply(++index_, req, &events).ok());
    if (store_.revision() > before) hub_.on_write(store_.revision(), events, store_, &out_);
  }
  void put(std::string key, std::string value) {
    synodpb::Request r;
    r.mutable_put()->set_key(std::move(key));
    r.mutable_put()->set_value(std::move(value));
    apply(r);
  }
  void del(std::string key, std::string end = "") {
    synodpb::Request r;
    r.mutable_delete_range()->set_key(std::move(key));
    r.mutable_delete_range()->set_range_end(std::move(end));
    apply(r);
  }
  void compact(int64_t revision) {
    synodpb::Request r;
    r.mutable_compaction()->set_revision(revision);
    apply(r);
  }
  WatchCreateRequest watch_req(std::string key, std::string end = "", int64_t start = 0) {
    WatchCreateRequest w;
    w.set_key(std::move(key));
    w.set_range_end(std::move(end));
    w.set_start_revision(start);
    return w;
  }
  void create(const WatchCreateRequest& w, uint64_t stream = 1) {
    hub_.create(stream, w, store_, &out_);
  }
  // Everything the hub said since the last call, after letting it catch up.
  std::vector<WatchOutput> drain() {
    for (int i = 0; i < 100 && hub_.has_unsynced(); ++i) hub_.catch_up(store_, &out_);
    std::vector<WatchOutput> out;
    out.swap(out_);
    return out;
  }
  // The (key, mod revision, type) of every event in the outputs, in order.
  static std::vector<std::tuple<std::string, int64_t, int>> events_of(
      const std::vector<WatchOutput>& out) {
    std::vector<std::tuple<std::string, int64_t, int>> v;
    for (const WatchOutput& o : out) {
      for (const mvccpb::Event& e : o.response.events())
        v.emplace_back(e.kv().key(), e.kv().mod_revision(), static_cast<int>(e.type()));
    }
    return v;
  }

  std::unique_ptr<testing::TestBackend> tb_;
  Store store_;
  WatchHub hub_{2};  // two revisions per catch-up response, so chunking shows
  uint64_t index_ = 0;
  std::vector<WatchOutput> out_;
};

constexpr int kPut = mvccpb::Event::PUT;
constexpr int kDelete = mvccpb::Event::DELETE;

TEST_F(KV_SUITE(WatchHubTest), CreatedComesFirstWithAutoIdsFromZero) {
  put("a", "1");
  create(watch_req("a"));
  create(watch_req("b"));
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].response.created());
  EXPECT_EQ(out[0].response.watch_id(), 0);
  EXPECT_EQ(out[0].response.header().revision(), 2);
  EXPECT_EQ(out[1].response.watch_id(), 1);
  EXPECT_TRUE(out[1].response.events().empty());
}

TEST_F(KV_SUITE(WatchHubTest), SyncedWatcherGetsEachWriteOnceAndOnlyItsKey) {
  create(watch_req("a"));
  drain();
  put("a", "1");
  put("b", "1");
  put("a", "2");
  del("a");
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 3u);  // one response per revision with a matching event
  EXPECT_EQ(events_of(out), (std::vector<std::tuple<std::string, int64_t, int>>{
                                {"a", 2, kPut}, {"a", 4, kPut}, {"a", 5, kDelete}}));
  EXPECT_EQ(out[2].response.header().revision(), 5);
}

TEST_F(KV_SUITE(WatchHubTest), PrefixAndFromKeyRanges) {
  create(watch_req("p/", "p0"), 1);                 // prefix p/
  create(watch_req("m", std::string(1, '\0')), 2);  // every key >= m
  drain();
  put("p/1", "x");
  put("a", "x");
  put("z", "x");
  std::vector<WatchOutput> out = drain();
  std::vector<std::string> seen;
  for (const WatchOutput& o : out)
    for (const auto& e : o.response.events())
      seen.push_back(std::to_string(o.stream) + ":" + e.kv().key());
  EXPECT_EQ(seen, (std::vector<std::string>{"1:p/1", "2:p/1", "2:z"}));
}

TEST_F(KV_SUITE(WatchHubTest), PastStartRevisionCatchesUpInOrderThenFollowsLive) {
  put("a", "1");  // 2
  put("a", "2");  // 3
  put("b", "1");  // 4
  put("a", "3");  // 5
  create(watch_req("a", "", 2));
  std::vector<WatchOutput> out = drain();
  ASSERT_GE(out.size(), 2u);
  EXPECT_TRUE(out[0].response.created());
  EXPECT_EQ(events_of(out), (std::vector<std::tuple<std::string, int64_t, int>>{
                                {"a", 2, kPut}, {"a", 3, kPut}, {"a", 5, kPut}}));
  put("a", "4");  // 6
  EXPECT_EQ(events_of(drain()),
            (std::vector<std::tuple<std::string, int64_t, int>>{{"a", 6, kPut}}));
}

TEST_F(KV_SUITE(WatchHubTest), AllEventsOfATxnArriveInOneResponse) {
  create(watch_req("k", std::string(1, '\0')));
  drain();
  synodpb::Request txn;
  for (const char* k : {"k1", "k2", "k3"}) {
    auto* p = txn.mutable_txn()->add_success()->mutable_request_put();
    p->set_key(k);
    p->set_value("v");
  }
  apply(txn);
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.events_size(), 3);
}

TEST_F(KV_SUITE(WatchHubTest), CatchUpNeverSplitsARevision) {
  synodpb::Request txn;
  for (const char* k : {"k1", "k2"}) {
    auto* p = txn.mutable_txn()->add_success()->mutable_request_put();
    p->set_key(k);
    p->set_value("v");
  }
  apply(txn);      // 2: two events
  put("k3", "v");  // 3
  put("k4", "v");  // 4
  create(watch_req("k", std::string(1, '\0'), 2));
  std::vector<WatchOutput> out = drain();
  // created, then revisions {2,3} and {4}: at most two revisions per response, none split.
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].response.events_size(), 3);
  EXPECT_EQ(out[2].response.events_size(), 1);
}

TEST_F(KV_SUITE(WatchHubTest), FiltersDropPutsOrDeletes) {
  WatchCreateRequest no_put = watch_req("a");
  no_put.add_filters(WatchCreateRequest::NOPUT);
  create(no_put, 1);
  WatchCreateRequest no_delete = watch_req("a");
  no_delete.add_filters(WatchCreateRequest::NODELETE);
  create(no_delete, 2);
  drain();
  put("a", "1");
  del("a");
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].stream, 2u);
  EXPECT_EQ(out[0].response.events(0).type(), mvccpb::Event::PUT);
  EXPECT_EQ(out[1].stream, 1u);
  EXPECT_EQ(out[1].response.events(0).type(), mvccpb::Event::DELETE);
}

TEST_F(KV_SUITE(WatchHubTest), PrevKvIsTheVersionBeforeAndAbsentForACreate) {
  WatchCreateRequest w = watch_req("a");
  w.set_prev_kv(true);
  create(w);
  drain();
  put("a", "1");
  put("a", "2");
  del("a");
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].response.events(0).has_prev_kv());
  EXPECT_EQ(out[1].response.events(0).prev_kv().value(), "1");
  EXPECT_EQ(out[2].response.events(0).prev_kv().value(), "2");
}

TEST_F(KV_SUITE(WatchHubTest), StartAtOrBelowTheCompactionIsCanceledWithCompactRevision) {
  put("a", "1");  // 2
  put("a", "2");  // 3
  put("a", "3");  // 4
  compact(3);
  create(watch_req("a", "", 2));
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].response.created());
  EXPECT_TRUE(out[1].response.canceled());
  EXPECT_EQ(out[1].response.compact_revision(), 3);
  EXPECT_EQ(out[1].response.header().revision(), 0);  // etcd 3.4 leaves it unset
  EXPECT_EQ(out[1].response.cancel_reason(), "");
  EXPECT_TRUE(hub_.empty());
  create(watch_req("a", "", 4));  // above the compaction point: served
  EXPECT_EQ(events_of(drain()),
            (std::vector<std::tuple<std::string, int64_t, int>>{{"a", 4, kPut}}));
}

TEST_F(KV_SUITE(WatchHubTest), ResumingFromLastRevisionPlusOneHasNoGapAndNoDuplicate) {
  create(watch_req("a"), 1);
  drain();
  put("a", "1");  // 2
  put("a", "2");  // 3
  std::vector<WatchOutput> first = drain();
  hub_.close_stream(1);  // the client's connection broke
  put("a", "3");         // 4: written while it was away
  create(watch_req("a", "", 4), 2);
  put("a", "4");  // 5
  std::vector<WatchOutput> second = drain();
  auto all = events_of(first);
  auto more = events_of(second);
  all.insert(all.end(), more.begin(), more.end());
  EXPECT_EQ(all, (std::vector<std::tuple<std::string, int64_t, int>>{
                     {"a", 2, kPut}, {"a", 3, kPut}, {"a", 4, kPut}, {"a", 5, kPut}}));
}

TEST_F(KV_SUITE(WatchHubTest), FutureStartRevisionSkipsEarlierWrites) {
  create(watch_req("a", "", 4));
  drain();
  put("a", "1");  // 2
  put("a", "2");  // 3
  put("a", "3");  // 4
  EXPECT_EQ(events_of(drain()),
            (std::vector<std::tuple<std::string, int64_t, int>>{{"a", 4, kPut}}));
}

TEST_F(KV_SUITE(WatchHubTest), DuplicateIdIsRefusedAndCancelAnswersOnlyKnownIds) {
  WatchCreateRequest w = watch_req("a");
  w.set_watch_id(7);
  create(w);
  create(w);
  hub_.cancel(1, 8, store_, &out_);
  hub_.cancel(1, 7, store_, &out_);
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].response.watch_id(), 7);
  EXPECT_EQ(out[1].response.watch_id(), WatchHub::kInvalidWatchId);
  EXPECT_TRUE(out[1].response.created() && out[1].response.canceled());
  EXPECT_EQ(out[1].response.cancel_reason(),
            "mvcc: duplicate watch ID provided on the WatchStream");
  EXPECT_EQ(out[2].response.watch_id(), 7);
  EXPECT_TRUE(out[2].response.canceled());
  put("a", "1");
  EXPECT_TRUE(drain().empty());
}

TEST_F(KV_SUITE(WatchHubTest), AfterARestoreWatchersCatchUpFromWhatTheyLastSaw) {
  create(watch_req("a"));
  drain();
  put("a", "1");  // 2
  drain();
  // Another replica moved on; this store is replaced by its image (a follower's snapshot).
  auto other_tb = testing::make_test_backend();
  Store other(other_tb->get());
  synodpb::Request p;
  p.mutable_put()->set_key("a");
  p.mutable_put()->set_value("1");
  other.apply(1, p);
  p.mutable_put()->set_value("2");
  other.apply(2, p);  // 3
  p.mutable_put()->set_value("3");
  other.apply(3, p);  // 4
  ASSERT_TRUE(store_.restore(other.image()));
  index_ = store_.applied_index();
  hub_.on_restore(&out_);
  EXPECT_EQ(events_of(drain()),
            (std::vector<std::tuple<std::string, int64_t, int>>{{"a", 3, kPut}, {"a", 4, kPut}}));
}

TEST_F(KV_SUITE(WatchHubTest), ProgressNotifyOnlyForQuietSyncedWatchers) {
  WatchCreateRequest w = watch_req("a");
  w.set_progress_notify(true);
  create(w, 1);
  create(watch_req("a"), 2);
  drain();
  hub_.notify_progress(store_, &out_);  // nothing sent since creation: notified
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].stream, 1u);
  EXPECT_TRUE(out[0].response.events().empty());
  put("a", "1");
  drain();
  hub_.notify_progress(store_, &out_);  // events went out in this interval: no notification
  EXPECT_TRUE(drain().empty());
  hub_.progress(1, store_, &out_);  // a progress request is answered at once, id -1
  out = drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response.watch_id(), WatchHub::kInvalidWatchId);
  EXPECT_EQ(out[0].response.header().revision(), 2);
}

// ----- marks (a sharded member merging several hubs) ---------------------------------------

TEST_F(KV_SUITE(WatchHubTest), MarksSayHowFarEachWatcherIsComplete) {
  hub_.set_marks(true);
  put("a", "1");  // 2
  put("a", "2");  // 3
  create(watch_req("a"));
  std::vector<WatchOutput> out = drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].response.created());
  EXPECT_EQ(out[0].synced_through, 3);  // synced at creation
  create(watch_req("a", "", /*start=*/2), /*stream=*/2);
  out = drain();
  // Created (not synced), then the history, then a mark: synced through the store's revision.
  ASSERT_GE(out.size(), 3u);
  EXPECT_EQ(out.front().synced_through, -1);
  EXPECT_TRUE(out.back().mark_only);
  EXPECT_EQ(out.back().synced_through, 3);
  EXPECT_EQ(out.back().stream, 2u);
  EXPECT_EQ(events_of(out),
            (std::vector<std::tuple<std::string, int64_t, int>>{{"a", 2, kPut}, {"a", 3, kPut}}));
  // One hub-wide mark per revision reached, none while the revision stays.
  hub_.mark_through(store_, &out_);
  hub_.mark_through(store_, &out_);
  out = drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].stream, 0u);
  EXPECT_EQ(out[0].all_synced_through, 3);
  put("b", "1");
  hub_.mark_through(store_, &out_);
  out = drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].all_synced_through, 4);
  hub_.on_restore(&out_);
  out = drain();
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out.front().all_unsynced);
}

TEST_F(KV_SUITE(WatchHubTest), NoMarksUnlessAskedFor) {
  put("a", "1");
  create(watch_req("a"));
  hub_.mark_through(store_, &out_);
  hub_.on_restore(&out_);
  for (const WatchOutput& o : drain()) {
    EXPECT_FALSE(o.mark_only);
    EXPECT_EQ(o.synced_through, -1);
  }
}

}  // namespace
}  // namespace synod::kv
