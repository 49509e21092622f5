// The simulated clients, one operation outstanding each. The register workload runs gets,
// puts and compare-and-sets over a few keys and records its history for the linearizability
// check; the lock and semaphore workloads run the recipe clients (sim/recipe_client.h), whose
// leases and acquisitions go to the truth. A request reaches a node after a network delay and
// times out on the client's side; a write that timed out may still land (an :info operation).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "check/linearizability.h"
#include "core/pbft/crypto.h"
#include "sim/bank_client.h"
#include "sim/recipe_client.h"
#include "sim/truth.h"
#include "sim/world.h"

namespace synod::sim {

struct Client {
  uint32_t id = 0;
  uint64_t seq = 0;
  bool busy = false;
  bool done = false;
  // The leader each group last named (a slot of that group; 0: none known), and the group of
  // the outstanding request.
  std::map<uint32_t, int> leader_hints;
  uint32_t group = 0;
  int final_ok = 0;
  check::Operation op;
  std::map<std::string, std::string> last_seen;  // key -> value this client last saw
  std::unique_ptr<RecipeClient> recipe;          // lock and semaphore workloads
  std::unique_ptr<BankClient> bank;              // bank workload
  uint64_t bank_op_start_us = 0;                 // when its current operation began
  uint64_t sent_us = 0;                          // when the outstanding request left
  uint64_t pause_next_us = 0;                    // a pause that strikes before its next act
  // Keep-alives go over one stream to one member, as clientv3's do, until it fails.
  int keepalive_node = 0;
  bool keepalive_outstanding = false;
  // PBFT: the client's keys, and the replies to its outstanding request by what they say.
  std::unique_ptr<pbft::Keyring> keys;
  std::map<std::string, std::set<int>> votes;
};

// Where requests go. Unsharded: every request to group 0, on every node. Sharded: a key's
// requests to the group of its shard; lease and lock requests to group 0.
struct Routing {
  std::function<uint32_t(std::string_view key)> group_of;  // null: unsharded
  std::function<std::vector<int>(uint32_t group)> slots;   // a group's replicas (its slots)
  // The group of a key, for the bank clients (null: unsharded).
  std::function<uint32_t(const std::string& key)> bank_group_of;
};

class Clients {
 public:
  Clients(World& world, Truth& truth, Routing routing = {})
      : world_(world), o_(world.options), truth_(truth), routing_(std::move(routing)) {}

  // Creates `options.clients` clients; each starts shortly after the cluster.
  void start_all();
  // Takes a client event (next operation, reply, timeout).
  void handle(const Event& e);

  // Every operation of the fault phase issued and answered.
  bool fault_phase_over() const;
  // Every client finished its final operations after the heal.
  bool all_done() const;
  int unfinished() const;
  // The heal: clients drop planned pauses and go on at once.
  void heal();
  // Pauses a client, a holder if there is one, for longer than its lease: it wakes up believing
  // it still holds, and acts.
  void pause_one();

  // The register workload's history, in completion order.
  std::vector<check::Operation> take_history() { return std::move(history_); }
  // The recipe clients' counts, summed into the result.
  void add_stats(SimResult& result) const;

 private:
  void next(Client& c);
  void recipe_next(Client& c);
  void bank_next(Client& c);
  void bank_done(Client& c, const ClientReply* reply);
  void send_request(Client& c, KvCommand req, uint64_t wait_us);
  void on_reply(Client& c, const ClientReply& r);
  bool take_bft_reply(Client& c, const ClientReply& r);
  std::string authenticate(Client& c, const KvCommand& req);
  void on_timeout(Client& c, uint64_t seq);
  void finish_op(Client& c, check::Outcome outcome);

  World& world_;
  const SimOptions& o_;
  Truth& truth_;
  Routing routing_;
  std::vector<Client> clients_;
  std::vector<check::Operation> history_;
  int issued_ = 0;
};

}  // namespace synod::sim
