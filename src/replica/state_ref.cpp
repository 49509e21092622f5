#include "replica/state_ref.h"

namespace synod::replica {

namespace {
constexpr std::string_view kStateRefMagic = "SYNODREF";
}  // namespace

std::string encode_state_ref(uint64_t applied_index) {
  std::string out(kStateRefMagic);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>(applied_index >> shift));
  return out;
}

std::optional<uint64_t> decode_state_ref(std::string_view data) {
  if (data.size() != kStateRefMagic.size() + 8 ||
      data.substr(0, kStateRefMagic.size()) != kStateRefMagic) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (size_t i = kStateRefMagic.size(); i < data.size(); ++i)
    v = (v << 8) | static_cast<uint8_t>(data[i]);
  return v;
}

}  // namespace synod::replica
