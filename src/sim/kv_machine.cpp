#include "sim/kv_machine.h"

namespace synod::sim {
namespace {

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

bool get_u64(std::string_view& in, uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(8);
  return true;
}

bool get_str(std::string_view& in, std::string& s) {
  uint64_t n = 0;
  if (!get_u64(in, n) || n > in.size()) return false;
  s.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}

}  // namespace

std::string KvCommand::encode() const {
  std::string out;
  put_u64(out, client);
  put_u64(out, seq);
  out.push_back(static_cast<char>(op));
  put_str(out, key);
  put_str(out, value);
  put_str(out, expected);
  return out;
}

std::optional<KvCommand> KvCommand::decode(std::string_view data) {
  KvCommand c;
  uint64_t client = 0;
  if (!get_u64(data, client) || !get_u64(data, c.seq) || data.empty()) return std::nullopt;
  c.client = static_cast<uint32_t>(client);
  const auto op = static_cast<uint8_t>(data[0]);
  if (op > 2) return std::nullopt;
  c.op = static_cast<KvOp>(op);
  data.remove_prefix(1);
  if (!get_str(data, c.key) || !get_str(data, c.value) || !get_str(data, c.expected)) {
    return std::nullopt;
  }
  if (!data.empty()) return std::nullopt;
  return c;
}

std::optional<KvResult> KvMachine::apply(const KvCommand& cmd) {
  auto [seq, inserted] = last_seq_.try_emplace(cmd.client, cmd.seq);
  if (!inserted) {
    if (cmd.seq <= seq->second) return std::nullopt;
    seq->second = cmd.seq;
  }
  switch (cmd.op) {
    case KvOp::kGet:
      return read(cmd.key);
    case KvOp::kPut:
      data_[cmd.key] = cmd.value;
      return KvResult{};
    case KvOp::kCas: {
      auto it = data_.find(cmd.key);
      if (it == data_.end() || it->second != cmd.expected) return KvResult{std::nullopt, false};
      it->second = cmd.value;
      return KvResult{std::nullopt, true};
    }
  }
  return std::nullopt;
}

KvResult KvMachine::read(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return {};
  return {it->second, false};
}

std::string KvMachine::serialize() const {
  std::string out;
  put_u64(out, data_.size());
  for (const auto& [k, v] : data_) {
    put_str(out, k);
    put_str(out, v);
  }
  put_u64(out, last_seq_.size());
  for (const auto& [client, seq] : last_seq_) {
    put_u64(out, client);
    put_u64(out, seq);
  }
  return out;
}

bool KvMachine::restore(std::string_view data) {
  std::map<std::string, std::string> next;
  uint64_t n = 0;
  if (!get_u64(data, n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string k;
    std::string v;
    if (!get_str(data, k) || !get_str(data, v)) return false;
    next.emplace(std::move(k), std::move(v));
  }
  std::map<uint32_t, uint64_t> seqs;
  if (!get_u64(data, n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t client = 0;
    uint64_t seq = 0;
    if (!get_u64(data, client) || !get_u64(data, seq)) return false;
    seqs.emplace(static_cast<uint32_t>(client), seq);
  }
  if (!data.empty()) return false;
  data_ = std::move(next);
  last_seq_ = std::move(seqs);
  return true;
}

}  // namespace synod::sim
