#include "kv/mem_backend.h"
#include "test_backend.h"

namespace synod::kv::testing {
namespace {

class MemTestBackend final : public TestBackend {
 public:
  Backend& get() override { return backend_; }
  void reopen() override {}

 private:
  MemBackend backend_;
};

}  // namespace

std::unique_ptr<TestBackend> make_test_backend() {
  return std::make_unique<MemTestBackend>();
}

}  // namespace synod::kv::testing
