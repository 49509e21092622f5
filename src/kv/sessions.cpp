#include "kv/sessions.h"

namespace synod::kv {

// Eight bytes of the highest timestamp (big-endian), then the holes, eight per byte from bit 0,
// with trailing zero bytes left out: a client whose requests came in order costs eight bytes.
std::string SessionWindow::encode() const {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((highest_ >> shift) & 0xFF));
  }
  std::string bits(kWindow / 8, '\0');
  size_t used = 0;
  for (size_t i = 0; i < kWindow; ++i) {
    if (!holes_[i]) continue;
    bits[i / 8] = static_cast<char>(static_cast<uint8_t>(bits[i / 8]) | (1u << (i % 8)));
    used = i / 8 + 1;
  }
  out.append(bits, 0, used);
  return out;
}

std::optional<SessionWindow> SessionWindow::decode(std::string_view bytes) {
  if (bytes.size() < 8 || bytes.size() > 8 + kWindow / 8) return std::nullopt;
  SessionWindow w;
  for (size_t i = 0; i < 8; ++i) w.highest_ = (w.highest_ << 8) | static_cast<uint8_t>(bytes[i]);
  for (size_t i = 8; i < bytes.size(); ++i) {
    const auto byte = static_cast<uint8_t>(bytes[i]);
    for (size_t b = 0; b < 8; ++b) {
      if ((byte >> b) & 1u) w.holes_[(i - 8) * 8 + b] = true;
    }
  }
  // A hole at timestamp 0 or below cannot be.
  for (size_t i = 0; i < kWindow; ++i) {
    if (w.holes_[i] && w.highest_ <= i + 1) return std::nullopt;
  }
  return w;
}

bool SessionWindow::admit(uint64_t timestamp) {
  if (timestamp == 0) return false;
  if (highest_ == 0) {
    // A client's first requests may be ordered out of order too: the few below the first to
    // arrive are holes (never applied, so letting them in repeats nothing).
    highest_ = timestamp;
    for (uint64_t i = 0; i < kOpening && i + 1 < timestamp; ++i) holes_[i] = true;
    return true;
  }
  if (timestamp > highest_) {
    const uint64_t step = timestamp - highest_;
    // The old highest is applied (no hole); the timestamps between it and the new one are.
    holes_ = step >= kWindow ? std::bitset<kWindow>() : holes_ << step;
    for (uint64_t i = 0; i + 1 < step && i < kWindow; ++i) holes_[i] = true;
    highest_ = timestamp;
    return true;
  }
  const uint64_t below = highest_ - timestamp;  // >= 0
  if (below == 0 || below > kWindow || !holes_[below - 1]) return false;
  holes_[below - 1] = false;
  return true;
}

}  // namespace synod::kv
