#include "kv/keys.h"

#include <cassert>

namespace synod::kv::keys {
namespace {

constexpr std::string_view kTerminator("\x00\x01", 2);
constexpr std::string_view kTerminatorNext("\x00\x02", 2);

void append_escaped(std::string& out, std::string_view user_key) {
  for (char c : user_key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
}

std::string escaped_prefix(std::string_view user_key, std::string_view terminator) {
  std::string out(1, kHistory);
  append_escaped(out, user_key);
  out.append(terminator);
  return out;
}

bool is_from_key(std::string_view range_end) {
  return range_end == std::string_view("\0", 1);
}

}  // namespace

std::string encode_u64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

std::optional<uint64_t> decode_u64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

std::string current(std::string_view user_key) {
  std::string out(1, kCurrent);
  out.append(user_key);
  return out;
}

std::string history(std::string_view user_key, Revision rev) {
  assert(rev.main > 0 && rev.sub >= 0);
  std::string out = escaped_prefix(user_key, kTerminator);
  out += encode_u64(static_cast<uint64_t>(rev.main));
  out += encode_u64(static_cast<uint64_t>(rev.sub));
  return out;
}

std::string rev_log(Revision rev) {
  assert(rev.main > 0 && rev.sub >= 0);
  return std::string(1, kRevLog) + encode_u64(static_cast<uint64_t>(rev.main)) +
         encode_u64(static_cast<uint64_t>(rev.sub));
}

std::string member(uint64_t id) {
  return std::string(1, kMember) + encode_u64(id);
}

std::string lease(int64_t id) {
  return std::string(1, kLease) + encode_u64(static_cast<uint64_t>(id));
}

Bounds table(char prefix) {
  return {std::string(1, prefix), std::string(1, static_cast<char>(prefix + 1))};
}

std::optional<Bounds> current_range(std::string_view key, std::string_view range_end) {
  if (range_end.empty()) return Bounds{current(key), current(key) + std::string(1, '\0')};
  if (is_from_key(range_end)) return Bounds{current(key), table(kCurrent).end};
  if (range_end <= key) return std::nullopt;
  return Bounds{current(key), current(range_end)};
}

std::optional<Bounds> history_range(std::string_view key, std::string_view range_end) {
  if (range_end.empty()) {
    return Bounds{escaped_prefix(key, kTerminator), escaped_prefix(key, kTerminatorNext)};
  }
  if (is_from_key(range_end)) return Bounds{escaped_prefix(key, kTerminator), table(kHistory).end};
  if (range_end <= key) return std::nullopt;
  return Bounds{escaped_prefix(key, kTerminator), escaped_prefix(range_end, kTerminator)};
}

std::optional<HistoryKey> parse_history(std::string_view backend_key) {
  if (backend_key.empty() || backend_key[0] != kHistory) return std::nullopt;
  HistoryKey out;
  size_t i = 1;
  for (;;) {
    if (i + 1 >= backend_key.size()) return std::nullopt;
    char c = backend_key[i];
    if (c != '\0') {
      out.user_key.push_back(c);
      ++i;
      continue;
    }
    char next = backend_key[i + 1];
    i += 2;
    if (next == '\x01') break;
    if (next != '\xff') return std::nullopt;
    out.user_key.push_back('\0');
  }
  if (backend_key.size() - i != 16) return std::nullopt;
  auto main = decode_u64(backend_key.substr(i, 8));
  auto sub = decode_u64(backend_key.substr(i + 8, 8));
  out.rev = {static_cast<int64_t>(*main), static_cast<int64_t>(*sub)};
  return out;
}

std::optional<Revision> parse_rev_log(std::string_view backend_key) {
  if (backend_key.size() != 17 || backend_key[0] != kRevLog) return std::nullopt;
  return Revision{static_cast<int64_t>(*decode_u64(backend_key.substr(1, 8))),
                  static_cast<int64_t>(*decode_u64(backend_key.substr(9, 8)))};
}

bool in_range(std::string_view user_key, std::string_view key, std::string_view range_end) {
  if (range_end.empty()) return user_key == key;
  if (user_key < key) return false;
  return is_from_key(range_end) || user_key < range_end;
}

}  // namespace synod::kv::keys
