// The backend a test binary runs the kv tests on: MemBackend in kv_tests, RocksBackend in
// kv_rocks_tests, so the same tests pin both.
#pragma once

#include <memory>

#include "kv/backend.h"

// Suite names carry the backend (StoreTest, StoreTestRocks) so both binaries register distinct
// ctest names.
#ifndef SYNOD_KV_BACKEND_SUFFIX
#define SYNOD_KV_BACKEND_SUFFIX
#endif
#define KV_SUITE_CAT2(a, b) a##b
#define KV_SUITE_CAT(a, b) KV_SUITE_CAT2(a, b)
#define KV_SUITE(name) KV_SUITE_CAT(name, SYNOD_KV_BACKEND_SUFFIX)

namespace synod::kv::testing {

class TestBackend {
 public:
  virtual ~TestBackend() = default;
  virtual Backend& get() = 0;
  // A process restart: RocksBackend closes and reopens its directory; MemBackend keeps its map.
  virtual void reopen() = 0;
};

std::unique_ptr<TestBackend> make_test_backend();

}  // namespace synod::kv::testing
