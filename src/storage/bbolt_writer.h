// A writer of bbolt database files (go.etcd.io/bbolt, file format version 2, the format etcd
// 3.4 keeps its backend in), so that tools which open an etcd backend — `etcdctl snapshot
// status`, `etcdctl snapshot restore`, `bbolt check` — read what Synod produces.
//
// The file written is a freshly compacted database: page 0 and 1 are the two meta pages (equal
// but for their transaction ids), page 2 an empty freelist, then each bucket's B+tree (full leaf
// pages, branch pages above them while a level has more than one page, overflow pages for an
// element larger than a page), and last the root bucket's tree, whose leaf elements are the
// bucket headers. Every bucket gets pages of its own (none is inlined), which bbolt reads like
// any other. No page is free, and the file is exactly (high-water mark) pages long.
//
// Integers are little-endian, as bbolt writes them on the x86-64 and arm64 machines etcd runs
// on (bbolt uses the host's byte order).
//
// Thread-safety: the functions are pure; they keep no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace synod::storage {

inline constexpr size_t kBoltPageSize = 4096;
// bbolt's own limits (bucket.go MaxKeySize, MaxValueSize).
inline constexpr size_t kBoltMaxKeySize = 32768;
inline constexpr size_t kBoltMaxValueSize = (size_t{1} << 31) - 2;

// A bucket's entries, keys in strictly ascending byte order.
using BoltEntries = std::vector<std::pair<std::string, std::string>>;
// Buckets by name (a std::map, so names are in the byte order bbolt's root bucket needs).
using BoltBuckets = std::map<std::string, BoltEntries>;

// Why `buckets` cannot be written (a name or key empty or longer than kBoltMaxKeySize, keys out
// of order or repeated, a value longer than kBoltMaxValueSize), or nullopt if it can.
std::optional<std::string> bolt_input_problem(const BoltBuckets& buckets);

// The bytes of a bbolt file holding `buckets` (each one top-level; no nested buckets).
// Precondition: bolt_input_problem(buckets) is nullopt; the writer aborts otherwise, since
// callers build their input themselves and a violation is a bug in the caller.
// Postcondition: the size is a non-zero multiple of kBoltPageSize.
std::string bolt_image(const BoltBuckets& buckets);

}  // namespace synod::storage
