// PBFT's pieces one behaviour at a time: the cryptography, the message codec (including input
// no decoder may trust), the new-view decision procedure (thesis Fig. 3-3), and the engine's
// refusal of what does not authenticate.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "core/pbft/crypto.h"
#include "core/pbft/messages.h"
#include "core/pbft/pbft.h"

namespace synod::pbft {
namespace {

std::map<uint64_t, PublicKeys> group(uint64_t n) {
  std::map<uint64_t, PublicKeys> out;
  for (uint64_t id = 1; id <= n; ++id) out[id] = make_keys_from_seed(7, id).pub;
  return out;
}

Keyring keyring(uint64_t id, uint64_t n = 4) {
  return Keyring(make_keys_from_seed(7, id), group(n));
}

TEST(PbftCrypto, PairKeysAgreeInBothDirections) {
  Keyring a = keyring(1);
  Keyring b = keyring(2);
  const Mac tag = a.mac_for(2, "hello");
  EXPECT_TRUE(b.check_mac_from(1, "hello", tag));
  EXPECT_FALSE(b.check_mac_from(1, "hellO", tag));
  EXPECT_FALSE(b.check_mac_from(3, "hello", tag));  // the pair (2, 3) has another key
}

TEST(PbftCrypto, SignaturesCheckOnlyForTheSignerAndTheBytes) {
  Keyring a = keyring(1);
  Keyring b = keyring(2);
  const Signature sig = a.sign("view change");
  EXPECT_TRUE(b.check_signature_of(1, "view change", sig));
  EXPECT_FALSE(b.check_signature_of(3, "view change", sig));
  EXPECT_FALSE(b.check_signature_of(1, "view chance", sig));
}

TEST(PbftCrypto, SeededKeysAreDeterministicAndDistinct) {
  EXPECT_EQ(make_keys_from_seed(1, 2).pub, make_keys_from_seed(1, 2).pub);
  EXPECT_NE(make_keys_from_seed(1, 2).pub, make_keys_from_seed(1, 3).pub);
  EXPECT_NE(make_keys_from_seed(1, 2).pub, make_keys_from_seed(2, 2).pub);
}

TEST(PbftCrypto, ClientsAndReplicasShareKeys) {
  const SecretKeys client = make_keys_from_seed(99, 1);
  Keyring c(client, group(4));
  Keyring r = keyring(3);
  const Mac tag = c.mac_for(3, "req");
  EXPECT_TRUE(r.check_mac_from_client(client.pub.kx, "req", tag));
  const std::optional<Mac> back = r.mac_for_client(client.pub.kx, "reply");
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(c.check_mac_from(3, "reply", *back));
}

Msg sample_pre_prepare() {
  Msg m;
  m.kind = Kind::kPrePrepare;
  m.view = View(3);
  m.sender = NodeId(1);
  m.seq = Index(17);
  AuthenticatedRequest r;
  r.request = Request{make_keys_from_seed(5, 5).pub.kx, 9, "put k v"};
  r.macs.emplace_back(2, Mac{1, 2, 3});
  m.requests = {r, r};
  return m;
}

TEST(PbftCodec, SealedMessagesOpenForTheirReceiverOnly) {
  Keyring sender = keyring(1);
  Keyring receiver = keyring(2);
  Keyring other = keyring(3);
  const Msg m = sample_pre_prepare();
  const std::string payload = seal(m, sender, NodeId(2));
  std::string why;
  std::optional<Msg> opened = open(payload, receiver, NodeId(1), &why);
  ASSERT_TRUE(opened.has_value()) << why;
  EXPECT_EQ(*opened, m);
  EXPECT_FALSE(open(payload, other, NodeId(1), &why).has_value());
  EXPECT_EQ(why, "bad MAC");
  // A replica cannot pass off its message as another's: the sender is inside what is MAC'd.
  EXPECT_FALSE(open(payload, receiver, NodeId(3), &why).has_value());
}

TEST(PbftCodec, AnyFlippedBitIsRefused) {
  Keyring sender = keyring(1);
  Keyring receiver = keyring(2);
  const std::string payload = seal(sample_pre_prepare(), sender, NodeId(2));
  for (size_t i = 0; i < payload.size(); ++i) {
    std::string bad = payload;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    std::string why;
    EXPECT_FALSE(open(bad, receiver, NodeId(1), &why).has_value()) << "byte " << i;
  }
}

TEST(PbftCodec, GarbageNeverDecodes) {
  Keyring receiver = keyring(2);
  std::mt19937_64 rng(42);  // seed 42
  for (int round = 0; round < 2000; ++round) {
    std::string junk(rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (!junk.empty() && round % 2 == 0) junk[0] = static_cast<char>(1 + rng() % 11);
    std::string why;
    // Without the MAC check the decoder itself faces the bytes.
    (void)open(junk, receiver, NodeId(1), &why, /*check_macs=*/false);
    (void)decode_record(junk);
    (void)decode_client_request(junk);
  }
}

TEST(PbftCodec, RecordsAndClientRequestsRoundTrip) {
  SlotRecord r;
  r.request = sample_pre_prepare().requests.front();
  r.prepared = true;
  r.earlier_prepared = Claim{Index(4), digest(r.request.request), View(1)};
  r.earlier_preprepared = {Claim{Index(4), null_digest(), View(0)}};
  r.earlier_bodies = {r.request};
  EXPECT_EQ(decode_record(encode_record(r)), r);
  const std::string bytes = encode_record(r);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(decode_record(bytes.substr(0, cut))) << "cut at " << cut;
  }
  const std::string wire = encode_client_request(r.request);
  EXPECT_TRUE(is_client_request(wire));
  EXPECT_EQ(decode_client_request(wire), r.request);
}

// --- The decision procedure -------------------------------------------------------------------

ViewChange vc(uint64_t replica, std::vector<Claim> p, std::vector<Claim> q, uint64_t stable = 0) {
  ViewChange v;
  v.view = View(5);
  v.replica = NodeId(replica);
  v.stable = Index(stable);
  v.checkpoints = {{Index(stable), Digest{}}};
  v.prepared = std::move(p);
  v.preprepared = std::move(q);
  return v;
}

Digest d(uint8_t x) {
  Digest out{};
  out[0] = x;
  return out;
}

TEST(PbftDecide, APreparedRequestNoQuorumContradictsIsChosen) {
  const Claim a{Index(1), d(1), View(2)};
  auto decision = Pbft::decide({vc(1, {a}, {a}), vc(2, {a}, {a}), vc(3, {}, {})}, 3, 2, 16);
  ASSERT_TRUE(decision.has_value());
  ASSERT_EQ(decision->chosen.size(), 1u);
  EXPECT_EQ(decision->chosen[0].second, d(1));
}

TEST(PbftDecide, TheHigherViewWins) {
  const Claim old{Index(1), d(1), View(1)};
  const Claim newer{Index(1), d(2), View(3)};
  auto decision = Pbft::decide(
      {vc(1, {old}, {old}), vc(2, {newer}, {newer, old}), vc(3, {}, {newer})}, 3, 2, 16);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(decision->chosen[0].second, d(2));
}

// Two replicas executed d(1) at view 2 and keep it there; the third prepared it again in view
// 5 after a new view re-proposed it. The same request at a later view contradicts nothing.
TEST(PbftDecide, TheSameRequestAtALaterViewDoesNotContradict) {
  const Claim early{Index(1), d(1), View(2)};
  const Claim late{Index(1), d(1), View(4)};
  auto decision = Pbft::decide(
      {vc(1, {early}, {early}), vc(2, {late}, {late, early}), vc(3, {early}, {early})}, 3, 2, 16);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(decision->chosen[0].second, d(1));
}

TEST(PbftDecide, A2NeedsFPlusOnePrePrepares) {
  // One replica claims d(9) prepared in view 4 but nobody else pre-prepared it: a lie by a
  // faulty replica cannot choose it; the quorum without a P entry chooses null (B) only if it
  // has n - f members, otherwise the decision waits.
  const Claim lie{Index(1), d(9), View(4)};
  auto waits = Pbft::decide({vc(1, {lie}, {lie}), vc(2, {}, {}), vc(3, {}, {})}, 3, 2, 16);
  EXPECT_FALSE(waits.has_value());
  auto null =
      Pbft::decide({vc(1, {lie}, {lie}), vc(2, {}, {}), vc(3, {}, {}), vc(4, {}, {})}, 3, 2, 16);
  ASSERT_TRUE(null.has_value());
  EXPECT_EQ(null->chosen[0].second, null_digest());
}

TEST(PbftDecide, GapsBeforeAChoiceGetNullRequests) {
  const Claim c{Index(3), d(3), View(0)};
  auto decision = Pbft::decide({vc(1, {c}, {c}), vc(2, {c}, {c}), vc(3, {}, {})}, 3, 2, 16);
  ASSERT_TRUE(decision.has_value());
  ASSERT_EQ(decision->chosen.size(), 3u);
  EXPECT_EQ(decision->chosen[0].second, null_digest());
  EXPECT_EQ(decision->chosen[1].second, null_digest());
  EXPECT_EQ(decision->chosen[2].second, d(3));
}

TEST(PbftDecide, StartsFromTheHighestCheckpointFPlusOneHold) {
  ViewChange a = vc(1, {}, {}, 8);
  ViewChange b = vc(2, {}, {}, 8);
  ViewChange c = vc(3, {}, {}, 0);
  a.checkpoints = {{Index(8), d(8)}};
  b.checkpoints = {{Index(8), d(8)}};
  c.checkpoints = {{Index(0), Digest{}}, {Index(8), d(8)}};
  auto decision = Pbft::decide({a, b, c}, 3, 2, 16);
  ASSERT_TRUE(decision.has_value());
  EXPECT_EQ(decision->checkpoint, Index(8));
  EXPECT_EQ(decision->checkpoint_digest, d(8));
}

// --- The engine refuses what does not authenticate ---------------------------------------------

Config engine_config(uint64_t id) {
  Config c;
  c.id = NodeId(id);
  c.initial_conf.voters = {NodeId(1), NodeId(2), NodeId(3), NodeId(4)};
  c.keys = std::make_shared<Keyring>(keyring(id));
  return c;
}

TEST(PbftEngine, AMessageWithABadMacIsDroppedAndCounted) {
  Pbft backup(engine_config(2), {});
  Keyring primary = keyring(1);
  raft::Message m;
  m.type = raft::MessageType::kPbft;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.payload = seal(sample_pre_prepare(), primary, NodeId(3));  // made for another replica
  backup.step(m);
  EXPECT_EQ(backup.dropped_messages(), 1u);
  EXPECT_EQ(backup.last_index(), Index(0));
}

TEST(PbftEngine, AForgedClientRequestIsDropped) {
  Pbft primary(engine_config(1), {});
  AuthenticatedRequest r;
  r.request = Request{make_keys_from_seed(5, 5).pub.kx, 1, "put k v"};
  r.macs.emplace_back(1, Mac{});  // not the client's MAC
  primary.propose(encode_client_request(r));
  EXPECT_EQ(primary.dropped_messages(), 1u);
  EXPECT_FALSE(primary.has_ready());
}

TEST(PbftEngine, MembershipAndTransferAreRefused) {
  Pbft p(engine_config(1), {});
  EXPECT_EQ(p.propose_conf_change({}).status, raft::Status::kInvalid);
  EXPECT_EQ(p.transfer_leadership(NodeId(2)), raft::Status::kInvalid);
  EXPECT_EQ(p.quorum(), 3u);
  EXPECT_EQ(p.faults(), 1u);
}

// --- The view-change timer, and requests while a view changes
// -----------------------------------------

raft::Message sealed(const Msg& m, uint64_t from, uint64_t to) {
  raft::Message out;
  out.type = raft::MessageType::kPbft;
  out.from = NodeId(from);
  out.to = NodeId(to);
  out.payload = seal(m, keyring(from), NodeId(to));
  return out;
}

// Backup 2 learns of a request from replica 3 (as a client) and waits for it to execute.
Pbft waiting_backup() {
  Pbft backup(engine_config(2), {});
  Keyring client = keyring(3);
  AuthenticatedRequest r;
  r.request = Request{client.public_keys().kx, 1, "put k v"};
  r.macs.emplace_back(2, client.mac_for(2, request_auth_bytes(r.request)));
  Msg request;
  request.kind = Kind::kRequest;
  request.sender = NodeId(3);
  request.requests = {r};
  backup.step(sealed(request, 3, 2));
  EXPECT_EQ(backup.dropped_messages(), 0u);
  return backup;
}

// Ticks until the backup asks for a view change; the count, or 0 if it did not within `limit`.
uint64_t ticks_to_view_change(Pbft& p, uint64_t limit) {
  for (uint64_t t = 1; t <= limit; ++t) {
    p.tick();
    if (p.changing_view()) return t;
  }
  return 0;
}

TEST(PbftEngine, ABackupSuspectsThePrimaryAtItsTimeout) {
  Pbft backup = waiting_backup();
  const uint64_t timeout = engine_config(2).election_ticks;
  EXPECT_EQ(ticks_to_view_change(backup, 10 * timeout), timeout);
  EXPECT_EQ(backup.view(), View(1));
}

// A replica waiting for a new view still sends its clients' requests on, to every replica: the
// others may order them in their view.
TEST(PbftEngine, AReplicaInAViewChangeSendsItsOwnRequestsToEveryReplica) {
  Pbft backup = waiting_backup();
  ASSERT_NE(ticks_to_view_change(backup, 100), 0u);
  while (backup.has_ready()) {
    backup.ready();
    backup.advance();
  }
  EXPECT_EQ(backup.propose("put a b").status, raft::Status::kForwarded);
  std::set<uint64_t> sent_to;
  const raft::Ready rd = backup.ready();
  for (const raft::Message& m : rd.immediate_messages) {
    std::string why;
    std::optional<Msg> msg = open(m.payload, keyring(m.to.value), NodeId(2), &why, true);
    ASSERT_TRUE(msg.has_value()) << why;
    if (msg->kind == Kind::kRequest) sent_to.insert(m.to.value);
  }
  EXPECT_EQ(sent_to, (std::set<uint64_t>{1, 3, 4}));
}

// A request from replica `client` (as a client) that replica 2 can authenticate.
AuthenticatedRequest request_for_2(uint64_t client, uint64_t timestamp, const std::string& op) {
  Keyring k = keyring(client);
  AuthenticatedRequest r;
  r.request = Request{k.public_keys().kx, timestamp, op};
  r.macs.emplace_back(2, k.mac_for(2, request_auth_bytes(r.request)));
  return r;
}

// A faulty primary pre-prepared one request at backup 2 and another at the others, who
// committed theirs. Backup 2 executes what was committed, from a peer's body checked against
// the commits' digest, not the request its own log holds at that view.
TEST(PbftEngine, ABackupExecutesTheCommittedRequestNotTheOneItWasPrePrepared) {
  Pbft backup(engine_config(2), {});
  const AuthenticatedRequest told = request_for_2(3, 1, "put k told-to-2");
  const AuthenticatedRequest committed = request_for_2(3, 2, "put k committed");
  Msg pp;
  pp.kind = Kind::kPrePrepare;
  pp.sender = NodeId(1);
  pp.seq = Index(1);
  pp.requests = {told};
  backup.step(sealed(pp, 1, 2));
  ASSERT_EQ(backup.last_index(), Index(1));
  Msg bodies;
  bodies.kind = Kind::kBodies;
  bodies.sender = NodeId(3);
  bodies.bodies = {Body{Index(1), View(0), committed}};
  backup.step(sealed(bodies, 3, 2));
  for (uint64_t peer : {1, 3, 4}) {
    Msg c;
    c.kind = Kind::kCommit;
    c.sender = NodeId(peer);
    c.seq = Index(1);
    c.count = 1;
    c.digest = run_digest(Index(1), {digest(committed.request)});
    backup.step(sealed(c, peer, 2));
  }
  EXPECT_EQ(backup.dropped_messages(), 0u);
  ASSERT_EQ(backup.committed_index(), Index(1));
  EXPECT_EQ(backup.record(Index(1))->request, committed);
  // The state machine gets the operation with its client and timestamp, so that the same
  // request ordered again takes effect once (kv::Store's sessions).
  raft::Ready rd = backup.ready();
  ASSERT_EQ(rd.committed.size(), 1u);
  EXPECT_EQ(rd.committed[0].type, raft::EntryType::kClientOp);
  std::optional<raft::ClientOp> op = raft::decode_client_op(rd.committed[0].data);
  ASSERT_TRUE(op);
  const PublicKey& client = committed.request.client;
  EXPECT_EQ(op->client, std::string(client.begin(), client.end()));
  EXPECT_EQ(op->timestamp, 2u);
  EXPECT_EQ(op->op, "put k committed");
}

Config small_checkpoints(uint64_t id) {
  Config c = engine_config(id);
  c.checkpoint_interval = 4;
  c.log_window = 8;
  c.state_interval = 4;
  return c;
}

Msg vote(Kind kind, uint64_t sender, Index first, uint32_t count, const Digest& run) {
  Msg m;
  m.kind = kind;
  m.sender = NodeId(sender);
  m.seq = first;
  m.count = count;
  m.digest = run;
  return m;
}

// Backup 2 was away while the others executed 1..5 in two runs, 1..3 and 4..5, and made 4 a
// stable checkpoint. It catches up to the checkpoint on bodies, then executes 5 on the commits
// of the run that spans the checkpoint: it must not take that run for one the checkpoint
// settled, or it waits for its last slot until the next checkpoint.
TEST(PbftEngine, ABackupBehindExecutesTheRunThatSpansTheStableCheckpoint) {
  Pbft backup(small_checkpoints(2), {});
  std::vector<AuthenticatedRequest> requests;
  Msg bodies;
  bodies.kind = Kind::kBodies;
  bodies.sender = NodeId(3);
  Digest chained{};
  Digest at_checkpoint{};
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    requests.push_back(request_for_2(3, seq, "put k " + std::to_string(seq)));
    bodies.bodies.push_back(Body{Index(seq), View(0), requests.back()});
    chained = chain(chained, Index(seq), digest(requests.back().request));
    if (seq == 4) at_checkpoint = chained;
  }
  backup.step(sealed(bodies, 3, 2));
  for (uint64_t peer : {1, 3, 4}) {
    Msg c;
    c.kind = Kind::kCheckpoint;
    c.sender = NodeId(peer);
    c.seq = Index(4);
    c.digest = at_checkpoint;
    backup.step(sealed(c, peer, 2));
  }
  ASSERT_EQ(backup.committed_index(), Index(4));
  const Digest spanning =
      run_digest(Index(4), {digest(requests[3].request), digest(requests[4].request)});
  for (uint64_t peer : {1, 3, 4}) {
    backup.step(sealed(vote(Kind::kCommit, peer, Index(4), 2, spanning), peer, 2));
  }
  EXPECT_EQ(backup.dropped_messages(), 0u);
  EXPECT_EQ(backup.committed_index(), Index(5));
  EXPECT_EQ(backup.record(Index(5))->request, requests[4]);
}

// The pre-prepares primary 1 sends in `rd`, to replica 2.
std::vector<Msg> pre_prepares(const raft::Ready& rd) {
  std::vector<Msg> out;
  for (const auto* list : {&rd.messages, &rd.immediate_messages}) {
    for (const raft::Message& m : *list) {
      if (m.to != NodeId(2)) continue;
      std::string why;
      std::optional<Msg> msg = open(m.payload, keyring(2), NodeId(1), &why);
      EXPECT_TRUE(msg) << why;
      if (msg && msg->kind == Kind::kPrePrepare) out.push_back(*msg);
    }
  }
  return out;
}

// A primary's run ends at the next checkpoint, however many requests wait: a replica behind
// catches up to a checkpoint and then on the commits of the runs after it.
TEST(PbftEngine, ThePrimaryEndsEachRunAtTheNextCheckpoint) {
  Config c = small_checkpoints(1);
  c.max_runs_in_flight = 1;
  Pbft primary(c, {});
  ASSERT_EQ(primary.propose("put k 1").status, raft::Status::kForwarded);
  raft::Ready rd = primary.ready();
  std::vector<Msg> sent = pre_prepares(rd);
  primary.advance();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_EQ(sent[0].requests.size(), 1u);
  for (int i = 2; i <= 7; ++i) primary.propose("put k " + std::to_string(i));  // they wait
  const Digest first = run_digest(Index(1), {digest(sent[0].requests[0].request)});
  for (uint64_t peer : {3, 4}) {
    primary.step(sealed(vote(Kind::kPrepare, peer, Index(1), 1, first), peer, 1));
  }
  for (uint64_t peer : {3, 4}) {
    primary.step(sealed(vote(Kind::kCommit, peer, Index(1), 1, first), peer, 1));
  }
  ASSERT_EQ(primary.committed_index(), Index(1));
  sent.clear();
  while (primary.has_ready()) {
    rd = primary.ready();
    for (Msg& m : pre_prepares(rd)) sent.push_back(std::move(m));
    primary.advance();
  }
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].seq, Index(2));
  EXPECT_EQ(sent[0].requests.size(), 3u);  // 2..4, not 2..7
  EXPECT_EQ(primary.dropped_messages(), 0u);
}

// A replica's own requests are numbered from the base its host gives (above any it used before
// a restart).
TEST(PbftEngine, OwnRequestsAreNumberedFromTheTimestampBase) {
  Config c = engine_config(2);
  c.timestamp_base = 1'000'000;
  Pbft backup(c, {});
  ASSERT_EQ(backup.propose("put k v").status, raft::Status::kForwarded);
  raft::Ready rd = backup.ready();
  ASSERT_EQ(rd.immediate_messages.size(), 1u);
  std::string why;
  std::optional<Msg> m = open(rd.immediate_messages[0].payload, keyring(1), NodeId(2), &why);
  ASSERT_TRUE(m) << why;
  ASSERT_EQ(m->requests.size(), 1u);
  EXPECT_EQ(m->requests[0].request.timestamp, 1'000'001u);
}

// --- State transfer: a fetched state is taken on f + 1 claims of its digest --------------------

Msg state_claim(uint64_t from, uint64_t index, uint8_t digest_byte) {
  Msg m;
  m.kind = Kind::kState;
  m.sender = NodeId(from);
  m.view = View(0);
  m.seq = Index(index);
  m.digest = d(digest_byte);
  return m;
}

std::string as_string(const Digest& x) {
  return std::string(x.begin(), x.end());
}

TEST(PbftEngine, AFetchedStateIsCertifiedByFPlusOneClaimsOfItsDigestAtItsIndex) {
  Config c = engine_config(4);
  c.checkpoint_interval = 8;
  c.log_window = 16;
  c.state_interval = 16;
  Pbft p(c, {});
  EXPECT_EQ(p.state_trust().retain_interval, 16u);
  p.step(sealed(state_claim(1, 32, 7), 1, 4));
  EXPECT_FALSE(p.state_certified(Index(32), as_string(d(7))));  // one claim may be a liar's
  p.step(sealed(state_claim(1, 32, 7), 1, 4));                  // the same one again
  EXPECT_FALSE(p.state_certified(Index(32), as_string(d(7))));
  p.step(sealed(state_claim(2, 32, 9), 2, 4));  // another digest
  EXPECT_FALSE(p.state_certified(Index(32), as_string(d(7))));
  p.step(sealed(state_claim(3, 32, 7), 3, 4));
  EXPECT_TRUE(p.state_certified(Index(32), as_string(d(7))));
  EXPECT_FALSE(p.state_certified(Index(32), as_string(d(9))));
  EXPECT_FALSE(p.state_certified(Index(48), as_string(d(7))));  // claimed at another index
  p.step(sealed(state_claim(3, 40, 7), 3, 4));  // not a multiple of the interval: ignored
  p.step(sealed(state_claim(1, 40, 7), 1, 4));
  EXPECT_FALSE(p.state_certified(Index(40), as_string(d(7))));
  EXPECT_EQ(p.dropped_messages(), 0u);
}

// Replica 2's claims of the state digest d(5) at index 16 in `rd`, added to `to` by receiver.
void collect_state_claims(const raft::Ready& rd, std::set<uint64_t>& to) {
  for (const raft::Message& m : rd.immediate_messages) {
    std::string why;
    std::optional<Msg> msg = open(m.payload, keyring(m.to.value), NodeId(2), &why);
    ASSERT_TRUE(msg) << why;
    if (msg->kind != Kind::kState) continue;
    EXPECT_EQ(msg->seq, Index(16));
    EXPECT_EQ(msg->digest, d(5));
    to.insert(m.to.value);
  }
}

TEST(PbftEngine, AStateThisReplicaKeptIsClaimedToEveryOtherReplica) {
  Config c = engine_config(2);
  c.checkpoint_interval = 8;
  c.log_window = 16;
  c.state_interval = 16;
  Pbft p(c, {});
  p.state_retained(Index(16), as_string(d(5)));
  std::set<uint64_t> to;
  collect_state_claims(p.ready(), to);
  EXPECT_EQ(to, (std::set<uint64_t>{1, 3, 4}));
}

// A peer that fell behind waits for its state and sends nothing meanwhile; the claims it got
// with the snapshot offer may have been lost. The claims go out again with later STATUS rounds,
// so its next fetch can be certified.
TEST(PbftEngine, StateClaimsAreSentAgainWithLaterStatusRounds) {
  Config c = engine_config(2);
  c.checkpoint_interval = 8;
  c.log_window = 16;
  c.state_interval = 16;
  Pbft p(c, {});
  p.state_retained(Index(16), as_string(d(5)));
  p.ready();  // the first claims: lost
  p.advance();
  std::set<uint64_t> to;
  for (uint64_t t = 0; t < 16 * c.status_ticks && to.size() < 3; ++t) {
    p.tick();
    if (!p.has_ready()) continue;
    collect_state_claims(p.ready(), to);
    p.advance();
  }
  EXPECT_EQ(to, (std::set<uint64_t>{1, 3, 4}));
}

TEST(PbftEngine, ThePlantedUncheckedStateBugCertifiesAnything) {
  Config c = engine_config(4);
  c.checkpoint_interval = 8;
  c.log_window = 16;
  c.state_interval = 16;
  c.bugs.unchecked_state = true;
  Pbft p(c, {});
  EXPECT_TRUE(p.state_certified(Index(16), "anything"));
}

// --- A faulty client's partial authenticator ---------------------------------------------------

// A request from replica 3 (as a client) whose MAC for replica 2 is wrong.
AuthenticatedRequest not_for_2(uint64_t timestamp) {
  Keyring k = keyring(3);
  AuthenticatedRequest r;
  r.request = Request{k.public_keys().kx, timestamp, "put k partial"};
  for (uint64_t to : {1, 2, 4})
    r.macs.emplace_back(to, k.mac_for(to, request_auth_bytes(r.request)));
  r.macs[1].second[0] ^= 1;
  return r;
}

Msg prepare_of(uint64_t from, const AuthenticatedRequest& r) {
  Msg p;
  p.kind = Kind::kPrepare;
  p.sender = NodeId(from);
  p.seq = Index(1);
  p.count = 1;
  p.digest = run_digest(Index(1), {digest(r.request)});
  return p;
}

// Backup 2 cannot check the client's MAC in the pre-prepare; it holds the run, neither
// preparing it nor waiting on it (no view change for a request it cannot vouch for), and takes
// it once f + 1 other backups prepared it: one of them is honest and checked the MAC.
TEST(PbftEngine, APrePrepareWithARequestABackupCannotAuthenticateIsTakenOnFPlusOnePrepares) {
  Pbft backup(engine_config(2), {});
  const AuthenticatedRequest r = not_for_2(1);
  Msg pp;
  pp.kind = Kind::kPrePrepare;
  pp.sender = NodeId(1);
  pp.seq = Index(1);
  pp.requests = {r};
  backup.step(sealed(pp, 1, 2));
  EXPECT_EQ(backup.last_index(), Index(0));
  EXPECT_EQ(backup.dropped_messages(), 1u);
  EXPECT_EQ(ticks_to_view_change(backup, 200), 0u);  // nothing it waits for
  backup.step(sealed(prepare_of(3, r), 3, 2));
  EXPECT_EQ(backup.last_index(), Index(0));  // one prepare may be a faulty backup's
  backup.step(sealed(prepare_of(4, r), 4, 2));
  ASSERT_EQ(backup.last_index(), Index(1));
  EXPECT_EQ(backup.record(Index(1))->request, r);
}

}  // namespace
}  // namespace synod::pbft
