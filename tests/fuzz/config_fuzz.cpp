// The config file (`synod server --config-file`): a hand-edited file of "key: value" lines. A bad
// file must get a one-line error, never a crash; one that loads is resolved as the server does.
//
// Input: the file's bytes. The URL parsers, which resolve() runs on every URL flag, also get
// each line of the input directly.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "server/config.h"

namespace synod {
namespace {

constexpr size_t kMaxLines = 64;

const fuzz::ScratchDir& scratch() {
  static const fuzz::ScratchDir dir;
  return dir;
}

void parse_urls(std::string_view text) {
  size_t lines = 0;
  while (!text.empty() && lines++ < kMaxLines) {
    const size_t end = text.find('\n');
    const std::string line(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    std::string error;
    if (const auto url = server::parse_url(line, &error)) {
      if (url->str().empty()) fuzz::property_failed("a parsed URL prints empty");
    } else if (error.empty()) {
      fuzz::property_failed("parse_url refused a URL without a reason");
    }
    (void)server::parse_url_list(line, &error);
  }
}

}  // namespace
}  // namespace synod

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse_urls(text);
  const std::filesystem::path path = scratch().path() / "synod.conf";
  fuzz::write_file(path, text);
  server::ServerConfig config;
  std::string error;
  if (!server::load_config_file(path.string(), &config, &error)) {
    if (error.empty()) fuzz::property_failed("a refused config file has no error message");
    return 0;
  }
  const std::optional<server::ResolvedConfig> resolved = server::resolve(config, &error);
  if (!resolved) {
    if (error.empty()) fuzz::property_failed("a config refused by resolve() has no message");
    return 0;
  }
  std::vector<uint64_t> ids;
  for (const server::ClusterMember& m : resolved->initial_cluster)
    ids.push_back(server::member_id(m.peer_urls, resolved->raw.initial_cluster_token));
  (void)server::cluster_id(ids);
  return 0;
}
