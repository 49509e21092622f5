#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>

#include "storage/rocks_backend.h"
#include "test_backend.h"

namespace synod::kv::testing {
namespace {

class RocksTestBackend final : public TestBackend {
 public:
  RocksTestBackend() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("synod-kv-rocks-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    open();
  }
  ~RocksTestBackend() override {
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  Backend& get() override { return *backend_; }
  void reopen() override {
    backend_.reset();
    open();
  }

 private:
  void open() {
    auto opened = storage::RocksBackend::open(dir_.string());
    if (!opened) ADD_FAILURE() << opened.error();
    backend_ = std::move(opened).value();
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::RocksBackend> backend_;
};

}  // namespace

std::unique_ptr<TestBackend> make_test_backend() {
  return std::make_unique<RocksTestBackend>();
}

}  // namespace synod::kv::testing
