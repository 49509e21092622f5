// `synod server` configuration: etcd's flag names and meanings, from flags or a config file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/jwt.h"

namespace synod::server {

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  uint16_t port = 0;
  std::string host_port() const { return host + ":" + std::to_string(port); }
  std::string str() const { return scheme + "://" + host_port(); }
};

// Parses "http://host:port" or "https://host:port". Returns nullopt and sets `error` on
// anything else.
std::optional<Url> parse_url(const std::string& text, std::string* error);
std::optional<std::vector<Url>> parse_url_list(const std::string& text, std::string* error);

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: <name>.synod
  std::string listen_client_urls = "http://localhost:2379";
  std::string advertise_client_urls = "http://localhost:2379";
  std::string listen_peer_urls = "http://localhost:2380";
  std::string initial_advertise_peer_urls = "http://localhost:2380";
  // More URLs serving /metrics and /health over plain HTTP (the client URLs serve them too).
  std::string listen_metrics_urls;
  // "basic", or "extensive": also the per-RPC gRPC counters (a server interceptor, which costs
  // about a fifth more CPU per serializable read).
  std::string metrics = "basic";
  std::string initial_cluster;  // default: <name>=<initial-advertise-peer-urls>
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  uint32_t heartbeat_interval_ms = 100;
  uint32_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 10000;
  // PBFT: a member keeps and digests its state every this many applied entries, for others'
  // verified state transfer; the log is compacted only there. Equal on every member.
  uint64_t pbft_state_interval = 4096;
  std::string log_level = "info";
  std::string engine = "raft";  // consensus engine: raft, multipaxos or pbft (fixed for a data dir)
  // Scale-out (shards.h): the keyspace split into this many replication groups of `replication`
  // members each; 0 keeps one group. Fixed for a data dir and equal on every member.
  uint32_t shards = 0;
  uint32_t replication = 3;
  // Sharded: how this member commits the cross-shard transactions it coordinates, "2pc" or
  // "3pc" (a precommit in every participant before the decision). Members may differ.
  std::string commit_protocol = "2pc";
  // etcd's request limits: a request bigger than this (after encoding) is refused with
  // "etcdserver: request is too large"; a txn with more operations with "too many operations".
  uint64_t max_request_bytes = 1536 * 1024;
  uint32_t max_txn_ops = 128;
  // Tokens handed out by Authenticate: "simple" (etcd's default), forgotten after
  // auth_token_ttl seconds without use; or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=..."
  // (jwt.h), signed tokens any member verifies.
  std::string auth_token = "simple";
  uint32_t auth_token_ttl_s = 300;
  // TLS (PEM files, read at start): https:// client URLs serve with cert_file/key_file, and
  // with client_cert_auth require a client certificate signed by trusted_ca_file; the peer_*
  // set does the same between members (https:// peer URLs).
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  bool client_cert_auth = false;
  std::string peer_cert_file;
  std::string peer_key_file;
  std::string peer_trusted_ca_file;
  bool peer_client_cert_auth = false;
};

// The validated, parsed form.
struct ClusterMember {
  std::string name;
  std::vector<Url> peer_urls;
};

struct ResolvedConfig {
  ServerConfig raw;
  std::vector<Url> listen_client;
  std::vector<Url> advertise_client;
  std::vector<Url> listen_peer;
  std::vector<Url> advertise_peer;
  std::vector<Url> listen_metrics;
  std::vector<ClusterMember> initial_cluster;
  bool new_cluster = true;
  std::optional<JwtOptions> jwt;  // --auth-token jwt,...
};

// Validates and fills defaults. On error returns nullopt with a one-line message naming the
// flag at fault.
std::optional<ResolvedConfig> resolve(ServerConfig config, std::string* error);

// Reads a config file of "key: value" lines with etcd's keys (name, data-dir,
// listen-client-urls, ...; '#' comments). Unknown keys are an error.
bool load_config_file(const std::string& path, ServerConfig* config, std::string* error);

// Member and cluster ids, computed as etcd 3.4 does (etcdserver/api/membership: member.go
// newMember, cluster.go genID), so the same flags give the same ids as etcd. Each is the first
// 8 bytes, read big-endian, of a SHA-1:
//   member_id:       of the sorted peer URLs concatenated (no separator), then the token;
//   added_member_id: of the sorted peer URLs concatenated, then the Unix time in seconds in
//                    decimal (etcd's MemberAdd passes an empty cluster name, so no token);
//   cluster_id:      of the founding member ids, sorted, each as 8 bytes big-endian.
uint64_t member_id(const std::vector<Url>& peer_urls, const std::string& token);
uint64_t added_member_id(const std::vector<Url>& peer_urls, int64_t unix_seconds);
uint64_t cluster_id(std::vector<uint64_t> member_ids);

// The founding member ids of a data dir bootstrapped before Synod computed etcd's ids: FNV-1a
// over the sorted peer URLs (each followed by ',') and the token, 0 mapped to 1. Ids live in the
// data dir, so such a cluster keeps them; this recomputes them from --initial-cluster.
uint64_t fnv_member_id(const std::vector<Url>& peer_urls, const std::string& token);

}  // namespace synod::server
