#include "kv/records.h"

#include <cstdio>
#include <cstdlib>

namespace synod::kv::records {

void corrupted(std::string_view what) {
  std::fprintf(stderr, "synod kv: corrupted store record: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

mvccpb::KeyValue decode_kv(std::string_view user_key, std::string_view bytes) {
  mvccpb::KeyValue kv;
  if (!kv.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) corrupted("key value");
  kv.set_key(std::string(user_key));
  return kv;
}

std::string encode_history(char tag, const mvccpb::KeyValue& kv) {
  std::string out(1, tag);
  if (kv.key().empty()) {
    kv.AppendToString(&out);
  } else {
    mvccpb::KeyValue copy = kv;
    copy.clear_key();
    copy.AppendToString(&out);
  }
  return out;
}

bool is_tombstone(std::string_view history_value) {
  if (history_value.empty()) corrupted("empty history entry");
  return history_value[0] == kDeleteTag;
}

mvccpb::KeyValue decode_history(std::string_view user_key, std::string_view history_value) {
  if (history_value.empty()) corrupted("empty history entry");
  return decode_kv(user_key, history_value.substr(1));
}

}  // namespace synod::kv::records
