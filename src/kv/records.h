// Values stored in the MVCC tables (see keys.h for the key layout). A KeyValue is stored without
// its key, which the backend key already holds.
#pragma once

#include <string>
#include <string_view>

#include "mvccpb/kv.pb.h"

namespace synod::kv::records {

// A stored KeyValue: a current row (written by WriteTxn::put, with the history row), or a
// history value after its tag. Aborts on bytes that do not parse: stored records are written
// only by this code, so a bad one means on-disk corruption that no request can repair.
mvccpb::KeyValue decode_kv(std::string_view user_key, std::string_view bytes);

// History entries: a put carries the new KeyValue; a delete a tombstone (version 0,
// mod_revision = the deleting revision, as in etcd's DELETE event).
inline constexpr char kPutTag = 'P';
inline constexpr char kDeleteTag = 'D';
std::string encode_history(char tag, const mvccpb::KeyValue& kv);
bool is_tombstone(std::string_view history_value);
mvccpb::KeyValue decode_history(std::string_view user_key, std::string_view history_value);

[[noreturn]] void corrupted(std::string_view what);

}  // namespace synod::kv::records
