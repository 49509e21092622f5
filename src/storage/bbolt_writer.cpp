#include "storage/bbolt_writer.h"

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace synod::storage {
namespace {

// The on-disk layout (bbolt page.go, db.go): every page starts with a 16-byte header
// {id u64, flags u16, count u16, overflow u32}; leaf elements are {flags u32, pos u32,
// ksize u32, vsize u32}, branch elements {pos u32, ksize u32, child page id u64}, pos counting
// from the element's own first byte to its key, which the value follows.
constexpr uint16_t kBranchPageFlag = 0x01;
constexpr uint16_t kLeafPageFlag = 0x02;
constexpr uint16_t kMetaPageFlag = 0x04;
constexpr uint16_t kFreelistPageFlag = 0x10;
constexpr uint32_t kBucketLeafFlag = 0x01;

constexpr size_t kPageHeaderBytes = 16;
constexpr size_t kElementBytes = 16;  // leaf and branch elements alike
constexpr size_t kBucketHeaderBytes = 16;

constexpr uint32_t kMagic = 0xED0CDAED;
constexpr uint32_t kVersion = 2;
// The meta struct: magic, version, page size, flags (u32 each), root bucket {root, sequence},
// freelist page, high-water mark, txid (u64 each), then the checksum of everything before it.
constexpr size_t kMetaChecksumOffset = 56;

constexpr uint64_t kFreelistPageId = 2;
constexpr uint64_t kFirstTreePageId = 3;

// bbolt's page count field is 16 bits.
constexpr size_t kMaxElementsPerPage = 0xFFFF;

[[noreturn]] void bad_input(const std::string& why) {
  std::fprintf(stderr, "synod bbolt writer: bad input: %s\n", why.c_str());
  std::abort();
}

uint64_t fnv1a_64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ull;
  for (char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// The image under construction: whole pages, addressed by page id.
class PageFile {
 public:
  // Pages 0..2 (meta, meta, freelist) are reserved up front and filled in last.
  PageFile() : bytes_(kFirstTreePageId * kBoltPageSize, '\0') {}

  uint64_t page_count() const { return bytes_.size() / kBoltPageSize; }

  // Appends enough zeroed pages to hold `used_bytes` and writes their header.
  // Returns the first page's id.
  uint64_t append(size_t used_bytes, uint16_t flags, size_t count) {
    assert(used_bytes >= kPageHeaderBytes);
    if (count > kMaxElementsPerPage) bad_input("too many elements for one page");
    size_t pages = (used_bytes + kBoltPageSize - 1) / kBoltPageSize;
    if (pages - 1 > UINT32_MAX) bad_input("element too large for an overflow run");
    uint64_t id = page_count();
    bytes_.resize(bytes_.size() + pages * kBoltPageSize, '\0');
    write_header(id, flags, count, pages - 1);
    return id;
  }

  void write_header(uint64_t id, uint16_t flags, size_t count, size_t overflow) {
    size_t at = offset(id);
    put_u64(at, id);
    put_u16(at + 8, flags);
    put_u16(at + 10, static_cast<uint16_t>(count));
    put_u32(at + 12, static_cast<uint32_t>(overflow));
  }

  static size_t offset(uint64_t id) { return static_cast<size_t>(id) * kBoltPageSize; }

  void put_u16(size_t at, uint16_t v) { put_le(at, v, 2); }
  void put_u32(size_t at, uint32_t v) { put_le(at, v, 4); }
  void put_u64(size_t at, uint64_t v) { put_le(at, v, 8); }
  void put_bytes(size_t at, std::string_view b) {
    assert(at + b.size() <= bytes_.size());
    bytes_.replace(at, b.size(), b);
  }
  std::string_view view(size_t at, size_t n) const {
    return std::string_view(bytes_).substr(at, n);
  }

  std::string take() { return std::move(bytes_); }

 private:
  void put_le(size_t at, uint64_t v, int width) {
    assert(at + static_cast<size_t>(width) <= bytes_.size());
    for (int i = 0; i < width; ++i, v >>= 8) bytes_[at + i] = static_cast<char>(v & 0xff);
  }

  std::string bytes_;
};

struct LeafElement {
  std::string_view key;
  std::string_view value;
  uint32_t flags = 0;
};

struct ChildPage {
  std::string_view first_key;
  uint64_t page_id = 0;
};

size_t element_bytes(const LeafElement& e) {
  return kElementBytes + e.key.size() + e.value.size();
}
size_t element_bytes(const ChildPage& c) {
  return kElementBytes + c.first_key.size();
}

// Splits elements into consecutive runs, one per page, each as long as still fits a page but
// holding at least `min_per_page` elements (the last run excepted); a run that does not fit a
// page gets overflow pages. Branch pages take two children at least, so that every branch level
// has at most about half the pages of the level below even when keys are huge.
template <typename Element>
std::vector<std::span<const Element>> pack_pages(std::span<const Element> elements,
                                                 size_t min_per_page) {
  assert(min_per_page >= 1);
  std::vector<std::span<const Element>> runs;
  size_t begin = 0;
  size_t used = kPageHeaderBytes;
  for (size_t i = 0; i < elements.size(); ++i) {
    size_t bytes = element_bytes(elements[i]);
    if (i - begin >= min_per_page && used + bytes > kBoltPageSize) {
      runs.push_back(elements.subspan(begin, i - begin));
      begin = i;
      used = kPageHeaderBytes;
    }
    used += bytes;
  }
  if (begin < elements.size()) runs.push_back(elements.subspan(begin));
  return runs;
}

template <typename Element>
size_t page_bytes(std::span<const Element> run) {
  size_t used = kPageHeaderBytes;
  for (const Element& e : run) used += element_bytes(e);
  return used;
}

uint64_t write_leaf(PageFile& file, std::span<const LeafElement> run) {
  uint64_t id = file.append(page_bytes(run), kLeafPageFlag, run.size());
  size_t element_at = PageFile::offset(id) + kPageHeaderBytes;
  size_t data_at = element_at + run.size() * kElementBytes;
  for (const LeafElement& e : run) {
    file.put_u32(element_at, e.flags);
    file.put_u32(element_at + 4, static_cast<uint32_t>(data_at - element_at));
    file.put_u32(element_at + 8, static_cast<uint32_t>(e.key.size()));
    file.put_u32(element_at + 12, static_cast<uint32_t>(e.value.size()));
    file.put_bytes(data_at, e.key);
    file.put_bytes(data_at + e.key.size(), e.value);
    element_at += kElementBytes;
    data_at += e.key.size() + e.value.size();
  }
  return id;
}

uint64_t write_branch(PageFile& file, std::span<const ChildPage> run) {
  uint64_t id = file.append(page_bytes(run), kBranchPageFlag, run.size());
  size_t element_at = PageFile::offset(id) + kPageHeaderBytes;
  size_t data_at = element_at + run.size() * kElementBytes;
  for (const ChildPage& c : run) {
    file.put_u32(element_at, static_cast<uint32_t>(data_at - element_at));
    file.put_u32(element_at + 4, static_cast<uint32_t>(c.first_key.size()));
    file.put_u64(element_at + 8, c.page_id);
    file.put_bytes(data_at, c.first_key);
    element_at += kElementBytes;
    data_at += c.first_key.size();
  }
  return id;
}

// Writes a B+tree over `elements` (sorted) bottom-up and returns its root page id. A branch
// element names its child by the child's first key, as bbolt's cursor search expects.
uint64_t write_tree(PageFile& file, std::span<const LeafElement> elements) {
  if (elements.empty()) return file.append(kPageHeaderBytes, kLeafPageFlag, 0);
  std::vector<ChildPage> level;
  for (std::span<const LeafElement> run : pack_pages(elements, 1)) {
    level.push_back({run.front().key, write_leaf(file, run)});
  }
  // Each level has at most half (rounded up) the pages of the one below, so 64 levels are more
  // than any size_t count of pages needs.
  for (int height = 0; level.size() > 1 && height < 64; ++height) {
    std::vector<ChildPage> parents;
    for (std::span<const ChildPage> run : pack_pages(std::span<const ChildPage>(level), 2)) {
      parents.push_back({run.front().first_key, write_branch(file, run)});
    }
    assert(parents.size() <= (level.size() + 1) / 2);
    level = std::move(parents);
  }
  assert(level.size() == 1);
  return level.front().page_id;
}

void write_meta(PageFile& file, uint64_t id, uint64_t txid, uint64_t root, uint64_t high_water) {
  file.write_header(id, kMetaPageFlag, 0, 0);
  size_t at = PageFile::offset(id) + kPageHeaderBytes;
  file.put_u32(at, kMagic);
  file.put_u32(at + 4, kVersion);
  file.put_u32(at + 8, static_cast<uint32_t>(kBoltPageSize));
  file.put_u32(at + 12, 0);     // flags
  file.put_u64(at + 16, root);  // root bucket's root page
  file.put_u64(at + 24, 0);     // root bucket's sequence
  file.put_u64(at + 32, kFreelistPageId);
  file.put_u64(at + 40, high_water);
  file.put_u64(at + 48, txid);
  file.put_u64(at + kMetaChecksumOffset, fnv1a_64(file.view(at, kMetaChecksumOffset)));
}

std::string bucket_header(uint64_t root_page) {
  std::string h(kBucketHeaderBytes, '\0');
  for (int i = 0; i < 8; ++i) h[i] = static_cast<char>((root_page >> (8 * i)) & 0xff);
  return h;  // sequence (bytes 8..15) stays 0
}

std::optional<std::string> key_problem(std::string_view key, std::string_view what) {
  if (key.empty()) return std::string(what) + " is empty";
  if (key.size() > kBoltMaxKeySize) return std::string(what) + " is longer than bbolt allows";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> bolt_input_problem(const BoltBuckets& buckets) {
  for (const auto& [name, entries] : buckets) {
    if (auto p = key_problem(name, "a bucket name")) return p;
    for (size_t i = 0; i < entries.size(); ++i) {
      const auto& [key, value] = entries[i];
      if (auto p = key_problem(key, "a key in bucket " + name)) return p;
      if (value.size() > kBoltMaxValueSize) return "a value in bucket " + name + " is too long";
      if (i > 0 && !(entries[i - 1].first < key)) {
        return "keys in bucket " + name + " are not strictly ascending";
      }
    }
  }
  return std::nullopt;
}

std::string bolt_image(const BoltBuckets& buckets) {
  if (std::optional<std::string> problem = bolt_input_problem(buckets)) bad_input(*problem);
  PageFile file;
  std::vector<std::string> headers;  // owns the root bucket's values while they are written
  headers.reserve(buckets.size());
  std::vector<LeafElement> elements;
  for (const auto& [name, entries] : buckets) {
    elements.clear();
    elements.reserve(entries.size());
    for (const auto& [key, value] : entries) elements.push_back({key, value, 0});
    headers.push_back(bucket_header(write_tree(file, elements)));
  }
  std::vector<LeafElement> root_elements;
  size_t i = 0;
  for (const auto& entry : buckets) {
    root_elements.push_back({entry.first, headers[i++], kBucketLeafFlag});
  }
  uint64_t root = write_tree(file, root_elements);
  uint64_t high_water = file.page_count();
  file.write_header(kFreelistPageId, kFreelistPageFlag, 0, 0);  // no free pages
  // Both meta pages valid; bbolt reads the one with the larger txid.
  write_meta(file, 0, 0, root, high_water);
  write_meta(file, 1, 1, root, high_water);
  std::string image = file.take();
  assert(image.size() == high_water * kBoltPageSize && image.size() % kBoltPageSize == 0);
  return image;
}

}  // namespace synod::storage
