#include "server/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include <openssl/sha.h>

#include "replica/engine_factory.h"

namespace synod::server {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\"'");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\"'");
  return s.substr(b, e - b + 1);
}

constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ULL;

uint64_t fnv1a(std::string_view data, uint64_t h) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The URLs in etcd's form (scheme://host:port), sorted and concatenated without a separator.
std::string sorted_urls(const std::vector<Url>& peer_urls) {
  std::vector<std::string> urls;
  for (const Url& u : peer_urls) urls.push_back(u.str());
  std::sort(urls.begin(), urls.end());
  std::string joined;
  for (const std::string& u : urls) joined += u;
  return joined;
}

// The first 8 bytes of the SHA-1 of `data`, big-endian (etcd's binary.BigEndian.Uint64).
uint64_t sha1_prefix(std::string_view data) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | digest[i];
  return value;
}

}  // namespace

std::optional<Url> parse_url(const std::string& text, std::string* error) {
  const std::string scheme_sep = "://";
  size_t p = text.find(scheme_sep);
  if (p == std::string::npos) {
    *error = "URL '" + text + "' has no scheme (expected http://host:port or https://host:port)";
    return std::nullopt;
  }
  Url url;
  url.scheme = text.substr(0, p);
  if (url.scheme != "http" && url.scheme != "https") {
    *error = "URL '" + text + "': scheme '" + url.scheme + "' is not supported (use http or https)";
    return std::nullopt;
  }
  std::string rest = text.substr(p + scheme_sep.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    *error = "URL '" + text + "' has no host:port";
    return std::nullopt;
  }
  url.host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    *error = "URL '" + text + "' has an invalid port";
    return std::nullopt;
  }
  url.port = static_cast<uint16_t>(value);
  return url;
}

std::optional<std::vector<Url>> parse_url_list(const std::string& text, std::string* error) {
  std::vector<Url> urls;
  for (const std::string& item : split(text, ',')) {
    auto url = parse_url(trim(item), error);
    if (!url) return std::nullopt;
    urls.push_back(*url);
  }
  if (urls.empty()) {
    *error = "empty URL list";
    return std::nullopt;
  }
  return urls;
}

namespace {

// https:// URLs need a certificate and key; requiring client certificates needs a CA to check
// them with. A file given for plaintext URLs is an error too: it would not be used.
std::optional<std::string> check_tls(const ServerConfig& c, const ResolvedConfig& r) {
  auto any_https = [](const std::vector<Url>& urls) {
    return std::any_of(urls.begin(), urls.end(), [](const Url& u) { return u.scheme == "https"; });
  };
  auto check = [&](const std::vector<Url>& listen, const std::vector<Url>& advertise,
                   const char* urls, const std::string& cert, const std::string& key,
                   const std::string& ca, bool cert_auth,
                   const char* prefix) -> std::optional<std::string> {
    const bool tls = any_https(listen);
    if (tls != any_https(advertise)) {
      return std::string("--") + urls + " and the advertised URLs must all be http or all https";
    }
    if (tls && (cert.empty() || key.empty())) {
      return std::string("https:// in --") + urls + " needs --" + prefix + "cert-file and --" +
             prefix + "key-file";
    }
    if (!tls && (!cert.empty() || !key.empty() || cert_auth)) {
      return std::string("--") + prefix + "cert-file, --" + prefix + "key-file and --" + prefix +
             "client-cert-auth need https:// in --" + urls;
    }
    if (cert_auth && ca.empty()) {
      return std::string("--") + prefix + "client-cert-auth needs --" + prefix + "trusted-ca-file";
    }
    return std::nullopt;
  };
  // As etcd: https:// metrics URLs show the client certificate (and ask for clients' own under
  // --client-cert-auth).
  if (any_https(r.listen_metrics) && (c.cert_file.empty() || c.key_file.empty())) {
    return std::string("https:// in --listen-metrics-urls needs --cert-file and --key-file");
  }
  if (auto e = check(r.listen_client, r.advertise_client, "listen-client-urls", c.cert_file,
                     c.key_file, c.trusted_ca_file, c.client_cert_auth, "")) {
    return e;
  }
  return check(r.listen_peer, r.advertise_peer, "listen-peer-urls", c.peer_cert_file,
               c.peer_key_file, c.peer_trusted_ca_file, c.peer_client_cert_auth, "peer-");
}

}  // namespace

std::optional<ResolvedConfig> resolve(ServerConfig config, std::string* error) {
  ResolvedConfig r;
  if (config.name.empty()) {
    *error = "--name must not be empty";
    return std::nullopt;
  }
  if (config.data_dir.empty()) config.data_dir = config.name + ".synod";
  if (config.initial_cluster.empty()) {
    config.initial_cluster = config.name + "=" + config.initial_advertise_peer_urls;
  }
  auto list = [&](const std::string& flag, const std::string& value, std::vector<Url>* out) {
    std::string e;
    auto urls = parse_url_list(value, &e);
    if (!urls) {
      *error = "--" + flag + ": " + e;
      return false;
    }
    *out = *urls;
    return true;
  };
  if (!list("listen-client-urls", config.listen_client_urls, &r.listen_client) ||
      !list("advertise-client-urls", config.advertise_client_urls, &r.advertise_client) ||
      !list("listen-peer-urls", config.listen_peer_urls, &r.listen_peer) ||
      !list("initial-advertise-peer-urls", config.initial_advertise_peer_urls, &r.advertise_peer)) {
    return std::nullopt;
  }
  if (config.metrics != "basic" && config.metrics != "extensive") {
    *error = "--metrics must be 'basic' or 'extensive', got '" + config.metrics + "'";
    return std::nullopt;
  }
  if (!config.listen_metrics_urls.empty() &&
      !list("listen-metrics-urls", config.listen_metrics_urls, &r.listen_metrics)) {
    return std::nullopt;
  }
  if (auto tls_error = check_tls(config, r)) {
    *error = *tls_error;
    return std::nullopt;
  }
  if (config.max_txn_ops == 0) {
    *error = "--max-txn-ops must be at least 1";
    return std::nullopt;
  }
  if (config.max_request_bytes == 0 || config.max_request_bytes > (1u << 30)) {
    *error = "--max-request-bytes must be in 1..1073741824";
    return std::nullopt;
  }
  if (config.auth_token.starts_with("jwt,") || config.auth_token == "jwt") {
    r.jwt = parse_jwt_options(std::string_view(config.auth_token).substr(3), error);
    if (!r.jwt) return std::nullopt;
  } else if (config.auth_token != "simple") {
    *error =
        "--auth-token must be 'simple' or 'jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256"
        "[,ttl=5m]', got '" +
        config.auth_token + "'";
    return std::nullopt;
  }
  if (config.auth_token_ttl_s == 0) {
    *error = "--auth-token-ttl must be at least 1 second";
    return std::nullopt;
  }
  const std::optional<replica::EngineKind> engine = replica::parse_engine(config.engine);
  if (!engine) {
    *error = "--engine must be 'raft', 'multipaxos' or 'pbft', got '" + config.engine + "'";
    return std::nullopt;
  }
  if (config.initial_cluster_state != "new" && config.initial_cluster_state != "existing") {
    *error = "--initial-cluster-state must be 'new' or 'existing', got '" +
             config.initial_cluster_state + "'";
    return std::nullopt;
  }
  r.new_cluster = config.initial_cluster_state == "new";
  std::map<std::string, size_t> by_name;
  for (const std::string& item : split(config.initial_cluster, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      *error = "--initial-cluster: '" + item + "' is not name=url";
      return std::nullopt;
    }
    std::string name = trim(item.substr(0, eq));
    std::string e;
    auto url = parse_url(trim(item.substr(eq + 1)), &e);
    if (!url) {
      *error = "--initial-cluster: " + e;
      return std::nullopt;
    }
    auto [it, inserted] = by_name.emplace(name, r.initial_cluster.size());
    if (inserted) r.initial_cluster.push_back(ClusterMember{name, {}});
    r.initial_cluster[it->second].peer_urls.push_back(*url);
  }
  auto self = by_name.find(config.name);
  if (self == by_name.end()) {
    *error = "--initial-cluster has no entry for --name '" + config.name + "'";
    return std::nullopt;
  }
  std::vector<std::string> mine, listed;
  for (const Url& u : r.advertise_peer) mine.push_back(u.str());
  for (const Url& u : r.initial_cluster[self->second].peer_urls) listed.push_back(u.str());
  std::sort(mine.begin(), mine.end());
  std::sort(listed.begin(), listed.end());
  if (mine != listed) {
    *error = "--initial-cluster lists " + config.name +
             " with peer URLs that differ from --initial-advertise-peer-urls";
    return std::nullopt;
  }
  if (config.heartbeat_interval_ms == 0 ||
      config.election_timeout_ms < 5 * config.heartbeat_interval_ms) {
    *error = "--election-timeout must be at least 5 times --heartbeat-interval";
    return std::nullopt;
  }
  if (*engine == replica::EngineKind::kPbft) {
    if (r.initial_cluster.size() < 4) {
      *error =
          "--engine pbft needs at least 4 members in --initial-cluster (n >= 3f + 1 to "
          "tolerate f >= 1 Byzantine members)";
      return std::nullopt;
    }
    if (config.pbft_state_interval == 0 || config.pbft_state_interval % 128 != 0) {
      *error =
          "--pbft-state-interval must be a positive multiple of 128 (the checkpoint "
          "interval), got " +
          std::to_string(config.pbft_state_interval);
      return std::nullopt;
    }
  }
  if (config.commit_protocol != "2pc" && config.commit_protocol != "3pc") {
    *error = "--commit-protocol must be 2pc or 3pc, got '" + config.commit_protocol + "'";
    return std::nullopt;
  }
  if (config.shards > 0) {
    if (config.shards > 1024) {
      *error = "--shards must be at most 1024, got " + std::to_string(config.shards);
      return std::nullopt;
    }
    if (config.replication == 0 || config.replication > r.initial_cluster.size()) {
      *error = "--replication must be between 1 and the number of members in --initial-cluster (" +
               std::to_string(r.initial_cluster.size()) + "), got " +
               std::to_string(config.replication);
      return std::nullopt;
    }
    if (*engine == replica::EngineKind::kPbft) {
      *error = "--shards works with --engine raft or multipaxos, not pbft";
      return std::nullopt;
    }
  }
  r.raw = config;
  return r;
}

bool load_config_file(const std::string& path, ServerConfig* config, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read config file '" + path + "'";
    return false;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    if (trim(line).empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) {
      *error = path + ":" + std::to_string(number) + ": expected 'key: value'";
      return false;
    }
    const std::string key = trim(line.substr(0, colon));
    const std::string value = trim(line.substr(colon + 1));
    auto bool_value = [&](bool* out) {
      if (value != "true" && value != "false") return false;
      *out = value == "true";
      return true;
    };
    auto number_value = [&](auto* out) {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), *out);
      return ec == std::errc() && end == value.data() + value.size();
    };
    bool ok = true;
    if (key == "name")
      config->name = value;
    else if (key == "data-dir")
      config->data_dir = value;
    else if (key == "listen-client-urls")
      config->listen_client_urls = value;
    else if (key == "advertise-client-urls")
      config->advertise_client_urls = value;
    else if (key == "listen-peer-urls")
      config->listen_peer_urls = value;
    else if (key == "listen-metrics-urls")
      config->listen_metrics_urls = value;
    else if (key == "metrics")
      config->metrics = value;
    else if (key == "cert-file")
      config->cert_file = value;
    else if (key == "key-file")
      config->key_file = value;
    else if (key == "trusted-ca-file")
      config->trusted_ca_file = value;
    else if (key == "client-cert-auth")
      ok = bool_value(&config->client_cert_auth);
    else if (key == "peer-cert-file")
      config->peer_cert_file = value;
    else if (key == "peer-key-file")
      config->peer_key_file = value;
    else if (key == "peer-trusted-ca-file")
      config->peer_trusted_ca_file = value;
    else if (key == "peer-client-cert-auth")
      ok = bool_value(&config->peer_client_cert_auth);
    else if (key == "max-request-bytes")
      ok = number_value(&config->max_request_bytes);
    else if (key == "max-txn-ops")
      ok = number_value(&config->max_txn_ops);
    else if (key == "auth-token")
      config->auth_token = value;
    else if (key == "auth-token-ttl")
      ok = number_value(&config->auth_token_ttl_s);
    else if (key == "initial-advertise-peer-urls")
      config->initial_advertise_peer_urls = value;
    else if (key == "initial-cluster")
      config->initial_cluster = value;
    else if (key == "initial-cluster-state")
      config->initial_cluster_state = value;
    else if (key == "initial-cluster-token")
      config->initial_cluster_token = value;
    else if (key == "heartbeat-interval")
      ok = number_value(&config->heartbeat_interval_ms);
    else if (key == "election-timeout")
      ok = number_value(&config->election_timeout_ms);
    else if (key == "snapshot-count")
      ok = number_value(&config->snapshot_count);
    else if (key == "pbft-state-interval")
      ok = number_value(&config->pbft_state_interval);
    else if (key == "log-level")
      config->log_level = value;
    else if (key == "engine")
      config->engine = value;
    else if (key == "shards")
      ok = number_value(&config->shards);
    else if (key == "replication")
      ok = number_value(&config->replication);
    else if (key == "commit-protocol")
      config->commit_protocol = value;
    else {
      *error = path + ":" + std::to_string(number) + ": unknown key '" + key + "'";
      return false;
    }
    if (!ok) {
      *error = path + ":" + std::to_string(number) + ": '" + key + "' wants a number";
      return false;
    }
  }
  return true;
}

uint64_t member_id(const std::vector<Url>& peer_urls, const std::string& token) {
  return sha1_prefix(sorted_urls(peer_urls) + token);
}

uint64_t added_member_id(const std::vector<Url>& peer_urls, int64_t unix_seconds) {
  return sha1_prefix(sorted_urls(peer_urls) + std::to_string(unix_seconds));
}

uint64_t cluster_id(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string bytes;
  bytes.reserve(8 * member_ids.size());
  for (uint64_t id : member_ids) {
    for (int shift = 56; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(id >> shift));
  }
  return sha1_prefix(bytes);
}

uint64_t fnv_member_id(const std::vector<Url>& peer_urls, const std::string& token) {
  std::vector<std::string> urls;
  for (const Url& u : peer_urls) urls.push_back(u.str());
  std::sort(urls.begin(), urls.end());
  uint64_t h = kFnvOffsetBasis;
  for (const std::string& u : urls) h = fnv1a(u + ",", h);
  h = fnv1a(token, h);
  return h == 0 ? 1 : h;
}

}  // namespace synod::server
