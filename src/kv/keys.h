// The backend key layout of the MVCC store: which table a key belongs to and how user keys and
// revisions are encoded so that backend byte order is the order the store reads in.
//
//   c<user key>                                   -> latest KeyValue of a live key (key omitted)
//   h<escaped user key><00 01><main be64><sub be64> -> 'P' + KeyValue, or 'D' + tombstone
//   r<main be64><sub be64>                        -> user key written at that revision
//   m<name>                                       -> store metadata (be64 numbers)
//   n<member id be64>                             -> synodpb.Member
//   l<lease id be64>                              -> synodpb.Lease
//   a<...>                                        -> the auth store (kv/auth_store.h)
//
// Escaping (0x00 -> 00 FF, terminated by 00 01) keeps history entries grouped per key, in user
// key order, and within a key in revision order, even for keys containing zero bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synod::kv::keys {

inline constexpr char kCurrent = 'c';
inline constexpr char kHistory = 'h';
inline constexpr char kRevLog = 'r';
inline constexpr char kMeta = 'm';
inline constexpr char kMember = 'n';
inline constexpr char kLease = 'l';
inline constexpr char kAuth = 'a';
inline constexpr char kSession = 's';  // client public key -> SessionWindow (sessions.h)
// Cross-shard transactions (store.h): a participant's prepared transactions and its locks, the
// outcomes it carried out, and the decisions a coordinator group holds.
inline constexpr char kIntent = 'i';       // transaction ID -> synodpb.TxnIntent
inline constexpr char kLock = 'k';         // user key -> ID of the transaction holding it
inline constexpr char kTxnOutcome = 'o';   // transaction ID -> synodpb.TxnDecision carried out
inline constexpr char kTxnDecision = 'd';  // transaction ID -> synodpb.TxnDecision that stands
inline constexpr std::array<char, 12> kAllTables = {kAuth,   kCurrent, kHistory,    kLease,
                                                    kMember, kMeta,    kRevLog,     kSession,
                                                    kIntent, kLock,    kTxnOutcome, kTxnDecision};

inline constexpr std::string_view kMetaAppliedIndex = "mapplied_index";
inline constexpr std::string_view kMetaRevision = "mrevision";
inline constexpr std::string_view kMetaCompactRevision = "mcompact_revision";
inline constexpr std::string_view kMetaLessorEpoch = "mlessor_epoch";
inline constexpr std::string_view kMetaCutEpoch = "mcut_epoch";

// A store revision: the main revision of a write transaction and the op's place within it.
struct Revision {
  int64_t main = 0;
  int64_t sub = 0;
  auto operator<=>(const Revision&) const = default;
};

// [begin, end) of backend keys; an empty end is unbounded.
struct Bounds {
  std::string begin;
  std::string end;
};

std::string encode_u64(uint64_t v);
std::optional<uint64_t> decode_u64(std::string_view bytes);

std::string current(std::string_view user_key);
std::string history(std::string_view user_key, Revision rev);
std::string rev_log(Revision rev);
std::string member(uint64_t id);
std::string lease(int64_t id);

// The whole table with this prefix.
Bounds table(char prefix);
// Current-table keys of a request's [key, range_end) (etcd's rules: empty range_end = key
// alone, "\0" = every key >= key). Returns nullopt for an empty interval.
std::optional<Bounds> current_range(std::string_view key, std::string_view range_end);
// History-table keys of every version of every user key in [key, range_end), same rules.
std::optional<Bounds> history_range(std::string_view key, std::string_view range_end);

struct HistoryKey {
  std::string user_key;
  Revision rev;
};
std::optional<HistoryKey> parse_history(std::string_view backend_key);
std::optional<Revision> parse_rev_log(std::string_view backend_key);

// Whether the user key lies in [key, range_end) under etcd's range_end rules.
bool in_range(std::string_view user_key, std::string_view key, std::string_view range_end);

}  // namespace synod::kv::keys
