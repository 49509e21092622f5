// The simulator's replicated state machine: a key-value map with put, get and compare-and-set.
// Deterministic; snapshots serialize the whole map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace synod::sim {

enum class KvOp : uint8_t { kGet = 0, kPut = 1, kCas = 2 };

struct KvCommand {
  uint32_t client = 0;
  uint64_t seq = 0;  // per-client request number; (client, seq) names a request
  KvOp op = KvOp::kPut;
  std::string key;
  std::string value;     // put: value; cas: new value
  std::string expected;  // cas: compared value

  std::string encode() const;
  // nullopt on malformed bytes (never crashes on arbitrary input).
  static std::optional<KvCommand> decode(std::string_view data);
};

struct KvResult {
  std::optional<std::string> value;  // get: value read (nullopt = absent)
  bool cas_succeeded = false;
};

class KvMachine {
 public:
  // Applies `cmd` unless it is a duplicate: every client has one request outstanding and
  // numbers them in order, so a command at or below the client's last applied seq is a
  // redelivery (a duplicated forward, say) and has no effect (nullopt).
  std::optional<KvResult> apply(const KvCommand& cmd);
  KvResult read(const std::string& key) const;
  std::string serialize() const;
  bool restore(std::string_view data);  // false on malformed data; state unchanged then
  size_t size() const { return data_.size(); }

 private:
  std::map<std::string, std::string> data_;
  std::map<uint32_t, uint64_t> last_seq_;  // client -> last applied seq
};

}  // namespace synod::sim
