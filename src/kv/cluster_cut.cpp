#include "kv/cluster_cut.h"

#include <cassert>
#include <set>

namespace synod::kv {

Expected<ClusterCut, std::string> ClusterCut::load(const std::map<uint32_t, std::string>& images) {
  ClusterCut cut;
  for (const auto& [group, image] : images) {
    auto backend = std::make_unique<MemBackend>();
    auto store = std::make_unique<Store>(*backend);
    if (!store->restore(image)) {
      return Unexpected{"group " + std::to_string(group) + "'s recorded state does not load"};
    }
    cut.backends_[group] = std::move(backend);
    cut.stores_[group] = std::move(store);
  }
  std::set<std::string> undecided;
  for (const auto& [group, store] : cut.stores_) {
    for (const synodpb::TxnIntent& intent : store->intents()) {
      const std::string& txn = intent.prepare().txn();
      auto coordinator = cut.stores_.find(intent.prepare().coordinator());
      std::optional<TxnDecided> d;
      if (coordinator != cut.stores_.end()) d = coordinator->second->decision(txn);
      if (!d) {
        undecided.insert(txn);
        continue;
      }
      cut.channels_.push_back(ChannelMessage{intent.prepare().coordinator(), group, txn, d->commit,
                                             d->succeeded, d->commit_revision});
    }
  }
  cut.undecided_ = undecided.size();
  return cut;
}

void ClusterCut::resolve(uint32_t group, const std::string& txn, bool commit, bool succeeded,
                         int64_t commit_revision) {
  Store& store = *stores_.at(group);
  synodpb::Request r;
  synodpb::TxnDecision* d = r.mutable_txn_resolve();
  d->set_txn(txn);
  d->set_commit(commit);
  d->set_succeeded(succeeded);
  if (commit) d->set_commit_revision(commit_revision);
  store.apply(store.applied_index() + 1, r);
}

void ClusterCut::settle(ClusterCutBugs bugs) {
  if (!bugs.ignore_in_flight) {
    for (const ChannelMessage& m : channel_state()) {
      resolve(m.to, m.txn, m.commit, m.succeeded, m.commit_revision);
    }
  }
  // What is still prepared was decided nowhere: one outcome per transaction, over all its parts.
  struct Outcome {
    bool commit = false;
    bool succeeded = false;
    int64_t commit_revision = 0;
  };
  std::map<std::string, Outcome> outcomes;
  std::vector<std::pair<uint32_t, std::string>> open;
  for (const auto& [group, store] : stores_) {
    for (const synodpb::TxnIntent& intent : store->intents()) {
      Outcome& o = outcomes[intent.prepare().txn()];
      if (intent.precommitted()) o = Outcome{true, intent.succeeded(), intent.commit_revision()};
      open.emplace_back(group, intent.prepare().txn());
    }
  }
  for (const auto& [group, txn] : open) {
    const Outcome& o = outcomes[txn];
    resolve(group, txn, o.commit, o.succeeded, o.commit_revision);
  }
}

std::vector<mvccpb::KeyValue> ClusterCut::data_keys() const {
  std::vector<mvccpb::KeyValue> out;
  for (const auto& [group, store] : stores_) {
    if (group == 0) continue;
    etcdserverpb::RangeRequest all;
    all.set_key(std::string(1, '\0'));
    all.set_range_end(std::string(1, '\0'));
    Expected<etcdserverpb::RangeResponse, Error> r = store->range(all);
    assert(r.has_value() && "data_keys() before settle()");
    if (!r) continue;
    for (const mvccpb::KeyValue& kv : r.value().kvs()) out.push_back(kv);
  }
  return out;
}

}  // namespace synod::kv
