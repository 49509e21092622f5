// A Byzantine fault tolerant client of a PBFT cluster (synodpb.Bft; docs/pbft.md, "Clients"):
// it trusts no single member. A write goes to every member as a PBFT client request with a MAC
// for each (TOCS 4.1), and its result is taken once f + 1 members sent the same one, each reply
// MAC'd for this client: one of them is correct. A read first asks every member to answer from
// its state without ordering and takes 2f + 1 matching answers (OSDI 4.5.4, the read-only
// optimization); without them it is ordered as a write is. Requests are sent again to every
// member until the result is in or the deadline passes.
//
// The client's keys are made fresh by each process (its identity is its public key); the
// members' public keys come from the files `synod keys new` made (NAME.pub, one per member).
//
// Thread-safety: write() and read() may be called from many threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/pbft/crypto.h"
#include "synodpb/bft.grpc.pb.h"
#include "synodpb/request.pb.h"

namespace synod::cli {

class BftClient {
 public:
  struct Options {
    std::vector<std::string> endpoints;  // host:port of every member
    std::string key_dir;                 // the members' NAME.pub files
    std::chrono::milliseconds timeout{5000};
    std::chrono::milliseconds retransmit{1000};
  };

  // Learns who answers at each endpoint and loads their keys; nullptr and `error` if the key
  // directory or the members do not make a cluster of n >= 3f + 1 this client can check.
  static std::unique_ptr<BftClient> connect(const Options& options, std::string* error);

  // `op` holds a put, a delete_range or a txn (its id is set here).
  std::optional<synodpb::BftResult> write(synodpb::Request op, std::string* error);
  // `*ordered` says whether the read had to go through the log.
  std::optional<synodpb::BftResult> read(const etcdserverpb::RangeRequest& range,
                                         std::string* error, bool* ordered = nullptr);

  size_t members() const { return stubs_.size(); }
  size_t faults() const { return f_; }

 private:
  enum class Method { kSubmit, kRead };
  BftClient() = default;
  std::string make_request(std::string op, uint64_t* timestamp);
  // Sends `request` to every member (again every `retransmit`) until `needed` members sent the
  // same authenticated result; nullopt when the deadline passes first.
  std::optional<synodpb::BftResult> collect(Method method, const std::string& request,
                                            uint64_t timestamp, size_t needed,
                                            std::chrono::milliseconds timeout, std::string* error);

  Options options_;
  std::shared_ptr<const pbft::Keyring> keys_;  // mac_for and check_mac_from only: const
  std::vector<uint64_t> ids_;                  // member ID per endpoint
  std::vector<std::unique_ptr<synodpb::Bft::Stub>> stubs_;
  size_t f_ = 0;
  std::atomic<uint64_t> next_timestamp_{0};
  std::atomic<uint64_t> next_id_{0};
};

}  // namespace synod::cli
