#include "sim/bank_client.h"

#include <cassert>
#include <charconv>
#include <sstream>

namespace synod::sim {

namespace {

// Gives up on a decision it cannot learn after this many tries: the resolver settles it.
constexpr int kDecideTries = 3;
// An audit that could not read every account (one was held, a step failed) starts over, up to
// this many times in all.
constexpr int kAuditAttempts = 5;

// Every account's key lies in [kBankPrefix, kBankPrefixEnd) (bank_account).
constexpr const char* kBankPrefix = "acct";
constexpr const char* kBankPrefixEnd = "accu";

int64_t balance_of(const std::string& value) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  (void)end;
  return ec == std::errc() ? v : 0;
}

etcdserverpb::Compare unchanged(const std::string& key, int64_t mod_revision) {
  etcdserverpb::Compare c;
  c.set_key(key);
  c.set_target(etcdserverpb::Compare::MOD);
  c.set_result(etcdserverpb::Compare::EQUAL);
  c.set_mod_revision(mod_revision);
  return c;
}

void add_put(etcdserverpb::TxnRequest& t, const std::string& key, int64_t balance) {
  auto* put = t.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(std::to_string(balance));
}

}  // namespace

std::string bank_account(int i) {
  return "acct" + std::to_string(i);
}

BankClient::BankClient(uint32_t id, BankOptions options) : id_(id), o_(std::move(options)) {}

KvCommand BankClient::propose(uint32_t group, synodpb::Request request) const {
  request.set_cut_epoch(epoch_);
  KvCommand cmd;
  cmd.op = KvOp::kPropose;
  cmd.group = static_cast<int>(group);
  cmd.proposal = std::move(request);
  return cmd;
}

KvCommand BankClient::next(uint64_t now_ms, Rng& rng) {
  now_ms_ = now_ms;
  if (phase_ == Phase::kIdle) {
    ++ops_;
    if (o_.cut_groups > 0 && cuts_ < kMaxCuts && rng.chance(0.03)) {
      // Epochs grow with each cut, and only this client begins them.
      epoch_ = std::max(epoch_, ++cuts_);
      cut_group_ = 0;
      cut_tries_ = 0;
      audit_ = false;
      phase_ = Phase::kCut;
    } else if (rng.chance(0.125)) {
      audit_attempts_ = 0;
      start_audit();
    } else {
      start_transfer(rng);
    }
  }
  switch (phase_) {
    case Phase::kRead: {
      KvCommand cmd;
      cmd.op = KvOp::kRange;
      cmd.range.set_key(reads_ == 0 ? from_ : to_);
      return cmd;
    }
    case Phase::kTxn: {
      synodpb::Request r;
      etcdserverpb::TxnRequest* t = r.mutable_txn();
      *t->add_compare() = unchanged(from_, seen_[0].mod_revision);
      *t->add_compare() = unchanged(to_, seen_[1].mod_revision);
      add_put(*t, from_, seen_[0].balance - amount_);
      add_put(*t, to_, seen_[1].balance + amount_);
      return propose(o_.group_of(from_), std::move(r));
    }
    case Phase::kPrepare: {
      synodpb::Request r;
      synodpb::TxnPrepare* p = r.mutable_txn_prepare();
      p->set_txn(txn_id_);
      p->set_coordinator(parts_.front().group);
      *p->mutable_part() = parts_[prepared_].part;
      p->set_started_at(static_cast<int64_t>(now_ms));
      return propose(parts_[prepared_].group, std::move(r));
    }
    case Phase::kPrecommit: {
      synodpb::Request r;
      r.mutable_txn_precommit()->set_txn(txn_id_);
      r.mutable_txn_precommit()->set_commit(true);
      r.mutable_txn_precommit()->set_succeeded(compares_hold_);
      return propose(parts_[precommitted_].group, std::move(r));
    }
    case Phase::kDecide: {
      synodpb::Request r;
      r.mutable_txn_decide()->set_txn(txn_id_);
      r.mutable_txn_decide()->set_commit(all_prepared_);
      r.mutable_txn_decide()->set_succeeded(all_prepared_ && compares_hold_);
      r.mutable_txn_decide()->set_at(static_cast<int64_t>(now_ms));
      // The coordinator group holds the first part: the decision's entry carries it out too
      // (not in the planted bug's order, where every part was resolved already).
      r.mutable_txn_decide()->set_resolve_here(committed_early_ == 0);
      return propose(parts_.front().group, std::move(r));
    }
    case Phase::kResolve: {
      synodpb::Request r;
      r.mutable_txn_resolve()->set_txn(txn_id_);
      r.mutable_txn_resolve()->set_commit(decision_->commit);
      r.mutable_txn_resolve()->set_succeeded(decision_->succeeded);
      r.mutable_txn_resolve()->set_at(static_cast<int64_t>(now_ms));
      return propose(parts_[resolved_].group, std::move(r));
    }
    case Phase::kCut: {
      synodpb::Request r;
      r.set_cut_marker(cuts_);
      return propose(cut_group_, std::move(r));
    }
    case Phase::kIdle:
      break;
  }
  assert(false && "a bank operation always has a request to send");
  return {};
}

void BankClient::start_transfer(Rng& rng) {
  audit_ = false;
  const int a = static_cast<int>(rng.uniform(static_cast<uint64_t>(o_.accounts)));
  int b = static_cast<int>(rng.uniform(static_cast<uint64_t>(o_.accounts - 1)));
  if (b >= a) ++b;
  from_ = bank_account(a);
  to_ = bank_account(b);
  amount_ = static_cast<int64_t>(rng.range(1, 10));
  crash_after_prepares_ = rng.chance(o_.coordinator_crash);
  // Three-phase: the coordinator dies after none, one or both of the precommits.
  crash_after_precommits_ = o_.three_phase ? static_cast<size_t>(rng.uniform(3)) : 0;
  seen_.assign(2, Seen{});
  reads_ = 0;
  phase_ = Phase::kRead;
}

void BankClient::start_audit() {
  audit_ = true;
  // Every other audit reads each group's accounts as one range (held against writes while
  // prepared) instead of key by key.
  range_audit_ = (audits_started_++ % 2) == 1;
  audit_count_ = 0;
  std::map<uint32_t, etcdserverpb::TxnRequest> by_group;
  for (int i = 0; i < o_.accounts; ++i) {
    const std::string key = bank_account(i);
    etcdserverpb::TxnRequest& part = by_group[o_.group_of(key)];
    if (!range_audit_) {
      part.add_success()->mutable_request_range()->set_key(key);
    } else if (part.success_size() == 0) {
      etcdserverpb::RangeRequest* r = part.add_success()->mutable_request_range();
      r->set_key(kBankPrefix);
      r->set_range_end(kBankPrefixEnd);
    }
  }
  std::vector<Part> parts;
  for (auto& [group, part] : by_group) parts.push_back({group, std::move(part)});
  audit_sum_ = 0;
  audit_complete_ = true;
  audit_done_ = false;
  ++audit_attempts_;
  crash_after_prepares_ = false;  // an audit's coordinator lives: its reads are what it is for
  begin_cross_shard(std::move(parts));
}

void BankClient::begin_cross_shard(std::vector<Part> parts) {
  parts_ = std::move(parts);
  txn_id_ = "c" + std::to_string(id_) + "." + std::to_string(ops_);
  prepared_ = precommitted_ = resolved_ = 0;
  all_prepared_ = compares_hold_ = true;
  decide_tries_ = 0;
  decision_.reset();
  committed_early_ = 0;
  phase_ = Phase::kPrepare;
}

void BankClient::on_reply(const KvResult& r) {
  epoch_ = std::max(epoch_, r.cut_epoch);
  if (r.error) return on_failure();
  switch (phase_) {
    case Phase::kRead: {
      if (!r.range) return on_failure();
      Seen& s = seen_[reads_];
      if (r.range->kvs_size() > 0) {
        s.balance = balance_of(r.range->kvs(0).value());
        s.mod_revision = r.range->kvs(0).mod_revision();
      }
      if (++reads_ < 2) return;
      ++transfers_;
      const uint32_t ga = o_.group_of(from_);
      const uint32_t gb = o_.group_of(to_);
      if (ga == gb) {
        phase_ = Phase::kTxn;
        return;
      }
      ++cross_shard_;
      Part pa{ga, {}}, pb{gb, {}};
      *pa.part.add_compare() = unchanged(from_, seen_[0].mod_revision);
      add_put(pa.part, from_, seen_[0].balance - amount_);
      *pb.part.add_compare() = unchanged(to_, seen_[1].mod_revision);
      add_put(pb.part, to_, seen_[1].balance + amount_);
      begin_cross_shard({std::move(pa), std::move(pb)});
      return;
    }
    case Phase::kTxn:
      return finish();
    case Phase::kPrepare:
      if (!r.txn_step || !r.txn_step->prepared) {
        all_prepared_ = false;
        phase_ = Phase::kDecide;
        return;
      }
      compares_hold_ = compares_hold_ && r.txn_step->compares_hold;
      if (++prepared_ < parts_.size()) return;
      if (crash_after_prepares_ && (!o_.three_phase || crash_after_precommits_ == 0)) {
        // The coordinator dies holding every participant's yes: nobody hears from it again.
        ++coordinator_crashes_;
        return finish();
      }
      if (o_.commit_before_decision) {
        // The planted bug: the participants commit first, the decision follows.
        decision_ = KvResult::TxnStep{false, false, true, compares_hold_};
        committed_early_ = parts_.size();
        phase_ = Phase::kResolve;
        return;
      }
      if (o_.three_phase) {
        phase_ = Phase::kPrecommit;
        return;
      }
      phase_ = Phase::kDecide;
      return;
    case Phase::kPrecommit:
      // An answer that is not a commit (a resolver aborted the part first) changes nothing:
      // the decision that stands in the coordinator group is what every part carries out.
      if (++precommitted_ < parts_.size()) {
        if (crash_after_prepares_ && precommitted_ == crash_after_precommits_) {
          ++coordinator_crashes_;  // dies with some parts precommitted and some uncertain
          return finish();
        }
        return;
      }
      if (crash_after_prepares_) {
        ++coordinator_crashes_;  // every part precommitted: the resolver must commit
        return finish();
      }
      phase_ = Phase::kDecide;
      return;
    case Phase::kDecide:
      if (!r.txn_step) return on_failure();
      if (committed_early_ > 0) return finish();  // the planted bug's order: resolved already
      decision_ = r.txn_step;
      // The answer is the first part's resolve (resolve_here); the others follow.
      phase_ = Phase::kResolve;
      return on_reply(r);
    case Phase::kResolve:
      if (audit_) {
        if (r.txn_step && r.txn_step->commit && r.txn &&
            r.txn->responses_size() == parts_[resolved_].part.success_size()) {
          for (const etcdserverpb::ResponseOp& op : r.txn->responses()) {
            const auto& kvs = op.response_range().kvs();
            if (range_audit_) {  // the group's accounts written so far
              for (const mvccpb::KeyValue& kv : kvs) audit_sum_ += balance_of(kv.value());
              audit_count_ += kvs.size();
              continue;
            }
            audit_sum_ += kvs.empty() ? kBankInitialBalance : balance_of(kvs[0].value());
          }
        } else {
          audit_complete_ = false;
        }
      }
      if (++resolved_ < parts_.size()) return;
      if (committed_early_ > 0) {
        phase_ = Phase::kDecide;
        return;
      }
      if (audit_ && decision_->commit && audit_complete_) {
        if (range_audit_) {  // an account never written holds the initial balance
          audit_sum_ += kBankInitialBalance * (o_.accounts - static_cast<int64_t>(audit_count_));
        }
        ++audits_;
        audit_done_ = true;
        if (audit_sum_ != kBankInitialBalance * o_.accounts) {
          std::ostringstream os;
          os << "c" << id_ << " audit " << txn_id_ << " summed " << audit_sum_ << ", not "
             << kBankInitialBalance * o_.accounts;
          bad_audits_.push_back(os.str());
        }
      }
      return finish();
    case Phase::kCut:
      cut_tries_ = 0;
      if (++cut_group_ >= o_.cut_groups) finish();
      return;
    case Phase::kIdle:
      return;
  }
}

void BankClient::on_failure() {
  switch (phase_) {
    case Phase::kRead:
    case Phase::kTxn:
      return finish();  // a txn that timed out may still land: the total is kept either way
    case Phase::kPrepare:
      // The prepare may still land; the abort decided now settles it, and the resolves of
      // every participant (also one whose prepare comes later) release what it holds.
      all_prepared_ = false;
      if (committed_early_ > 0) return finish();
      phase_ = Phase::kDecide;
      return;
    case Phase::kPrecommit:
      // Unanswered: the part may or may not have recorded it. Every participant voted yes, so
      // the coordinator may decide commit (Skeen's coordinator timeout rule), as a resolver
      // finding any part precommitted would.
      if (++precommitted_ < parts_.size()) return;
      phase_ = Phase::kDecide;
      return;
    case Phase::kDecide:
      if (++decide_tries_ < kDecideTries) return;  // asked again
      return finish();                             // the resolver settles it
    case Phase::kResolve:
      return finish();  // the resolver releases what is left
    case Phase::kCut:
      // Asked again (a marker applied twice records the cut once); a group that never records
      // it leaves the cut incomplete.
      if (++cut_tries_ < kCutTries) return;
      cut_tries_ = 0;
      if (++cut_group_ >= o_.cut_groups) finish();
      return;
    case Phase::kIdle:
      return;
  }
}

void BankClient::finish() {
  if (audit_ && !audit_done_ && audit_attempts_ < kAuditAttempts) {
    start_audit();  // the same operation, again
    return;
  }
  phase_ = Phase::kIdle;
  finished_ = true;
}

bool BankClient::take_finished() {
  const bool f = finished_;
  finished_ = false;
  return f;
}

std::vector<std::string> BankClient::take_bad_audits() {
  return std::exchange(bad_audits_, {});
}

}  // namespace synod::sim
