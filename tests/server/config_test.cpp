#include "server/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace synod::server {
namespace {

ServerConfig three_members(const std::string& name, int index) {
  ServerConfig c;
  c.name = name;
  const std::string peer = "http://127.0.0.1:" + std::to_string(2380 + 10 * index);
  const std::string client = "http://127.0.0.1:" + std::to_string(2379 + 10 * index);
  c.listen_client_urls = c.advertise_client_urls = client;
  c.listen_peer_urls = c.initial_advertise_peer_urls = peer;
  c.initial_cluster = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2390,c=http://127.0.0.1:2400";
  return c;
}

TEST(Config, ParsesEtcdStyleUrls) {
  std::string error;
  auto url = parse_url("http://127.0.0.1:2379", &error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 2379);
  EXPECT_EQ(url->host_port(), "127.0.0.1:2379");
}

TEST(Config, RefusesUrlsWithoutSchemeOrPort) {
  std::string error;
  EXPECT_FALSE(parse_url("127.0.0.1:2379", &error));
  EXPECT_NE(error.find("no scheme"), std::string::npos);
  EXPECT_FALSE(parse_url("http://127.0.0.1", &error));
  EXPECT_FALSE(parse_url("http://127.0.0.1:99999", &error));
  EXPECT_FALSE(parse_url("unix://127.0.0.1:2379", &error));
  EXPECT_NE(error.find("not supported"), std::string::npos);
}

TEST(Config, HttpsUrlsNeedACertificateAndKey) {
  std::string error;
  ServerConfig c = three_members("b", 1);
  c.listen_client_urls = c.advertise_client_urls = "https://127.0.0.1:2389";
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("--cert-file"), std::string::npos) << error;
  c.cert_file = "member.crt";
  c.key_file = "member.key";
  EXPECT_TRUE(resolve(c, &error)) << error;
  c.client_cert_auth = true;
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("--trusted-ca-file"), std::string::npos) << error;
  c.trusted_ca_file = "ca.crt";
  EXPECT_TRUE(resolve(c, &error)) << error;
}

TEST(Config, HttpsMetricsUrlsUseTheClientCertificate) {
  std::string error;
  ServerConfig c = three_members("b", 1);
  c.listen_metrics_urls = "https://127.0.0.1:2381";
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("https:// in --listen-metrics-urls needs --cert-file"), std::string::npos)
      << error;
  c.listen_client_urls = c.advertise_client_urls = "https://127.0.0.1:2389";
  c.cert_file = "member.crt";
  c.key_file = "member.key";
  EXPECT_TRUE(resolve(c, &error)) << error;
}

TEST(Config, TlsFilesWithoutHttpsAreRefused) {
  std::string error;
  ServerConfig c = three_members("b", 1);
  c.peer_cert_file = "member.crt";
  c.peer_key_file = "member.key";
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("need https:// in --listen-peer-urls"), std::string::npos) << error;
}

TEST(Config, ListenAndAdvertisedUrlsAgreeOnTls) {
  std::string error;
  ServerConfig c = three_members("b", 1);
  c.listen_client_urls = "https://127.0.0.1:2389";
  c.cert_file = "member.crt";
  c.key_file = "member.key";
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("must all be http or all https"), std::string::npos) << error;
}

TEST(Config, ResolvesAThreeMemberCluster) {
  std::string error;
  auto r = resolve(three_members("b", 1), &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->initial_cluster.size(), 3u);
  EXPECT_TRUE(r->new_cluster);
  EXPECT_EQ(r->raw.data_dir, "b.synod");
}

TEST(Config, RefusesAMemberMissingFromTheInitialCluster) {
  std::string error;
  EXPECT_FALSE(resolve(three_members("d", 1), &error));
  EXPECT_NE(error.find("--initial-cluster"), std::string::npos) << error;
}

TEST(Config, RefusesMismatchedAdvertisedPeerUrls) {
  std::string error;
  EXPECT_FALSE(resolve(three_members("a", 1), &error));
  EXPECT_NE(error.find("--initial-advertise-peer-urls"), std::string::npos) << error;
}

TEST(Config, RefusesAnUnknownClusterState) {
  ServerConfig c = three_members("a", 0);
  c.initial_cluster_state = "old";
  std::string error;
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("--initial-cluster-state"), std::string::npos) << error;
}

std::vector<Url> urls(const std::string& list) {
  std::string error;
  auto parsed = parse_url_list(list, &error);
  EXPECT_TRUE(parsed) << error;
  return parsed.value_or(std::vector<Url>{});
}

// The expected ids below are what etcd 3.4.23 reported (etcdctl member list -w json) for a
// cluster started with the same --initial-cluster and --initial-cluster-token.
TEST(Config, MemberAndClusterIdsAreEtcds) {
  const std::string token = "tok-abc";
  const uint64_t n1 = member_id(urls("http://127.0.0.1:23380"), token);
  const uint64_t n2 = member_id(urls("http://127.0.0.1:23382"), token);
  const uint64_t n3 = member_id(urls("http://127.0.0.1:23384"), token);
  EXPECT_EQ(n1, 0xed39f4d34f156a86ULL);
  EXPECT_EQ(n2, 0xc1da7cf139ac43e5ULL);
  EXPECT_EQ(n3, 0x434f8f3fd7402ef0ULL);
  EXPECT_EQ(cluster_id({n1, n2, n3}), 17112546913908254356ULL);
  EXPECT_EQ(cluster_id({n3, n1, n2}), 17112546913908254356ULL);  // order does not matter
}

TEST(Config, DefaultFlagsGiveEtcdsDefaultIds) {
  // etcd with no cluster flags: default=http://localhost:2380, token etcd-cluster.
  const ServerConfig defaults;
  const uint64_t id =
      member_id(urls(defaults.initial_advertise_peer_urls), defaults.initial_cluster_token);
  EXPECT_EQ(id, 0x8e9e05c52164694dULL);
  EXPECT_EQ(cluster_id({id}), 0xcdf818194e3a8c32ULL);
}

TEST(Config, MemberIdSortsSeveralPeerUrls) {
  const uint64_t id = member_id(urls("http://127.0.0.1:23432,http://127.0.0.1:23431"), "t2");
  EXPECT_EQ(id, 0xc231eef01228daceULL);
  EXPECT_EQ(member_id(urls("http://127.0.0.1:23431,http://127.0.0.1:23432"), "t2"), id);
  EXPECT_EQ(cluster_id({id}), 0xf2984eb84c197455ULL);
}

TEST(Config, AddedMemberIdIsEtcdsForTheSecondOfTheAdd) {
  // etcdctl member add --learner --peer-urls=http://127.0.0.1:23390, answered within Unix
  // second 1796416448.
  EXPECT_EQ(added_member_id(urls("http://127.0.0.1:23390"), 1796416448), 0x6f5c427d17550a6ULL);
  EXPECT_NE(added_member_id(urls("http://127.0.0.1:23390"), 1796416449), 0x6f5c427d17550a6ULL);
}

TEST(Config, FnvMemberIdsOfOlderDataDirsStayAsTheyWere) {
  EXPECT_EQ(fnv_member_id(urls("http://127.0.0.1:2380"), "t"), 0x7d83527e4404d711ULL);
  EXPECT_EQ(fnv_member_id(urls("http://127.0.0.1:2390,http://127.0.0.1:2385"), "etcd-cluster"),
            0xbb610bd33fbc7106ULL);
}

TEST(Config, LoadsAConfigFileAndRefusesUnknownKeys) {
  char path[] = "/tmp/synod-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "# a member\nname: s1\ndata-dir: /tmp/s1\nelection-timeout: 2000\n"
        << "cert-file: /etc/synod/member.crt\nclient-cert-auth: true\nauth-token-ttl: 60\n";
  }
  ServerConfig c;
  std::string error;
  ASSERT_TRUE(load_config_file(path, &c, &error)) << error;
  EXPECT_EQ(c.name, "s1");
  EXPECT_EQ(c.data_dir, "/tmp/s1");
  EXPECT_EQ(c.election_timeout_ms, 2000u);
  EXPECT_EQ(c.cert_file, "/etc/synod/member.crt");
  EXPECT_TRUE(c.client_cert_auth);
  EXPECT_EQ(c.auth_token_ttl_s, 60u);
  {
    std::ofstream out(path);
    out << "client-cert-auth: yes\n";
  }
  EXPECT_FALSE(load_config_file(path, &c, &error));
  {
    std::ofstream out(path);
    out << "nmae: s1\n";
  }
  EXPECT_FALSE(load_config_file(path, &c, &error));
  EXPECT_NE(error.find("unknown key 'nmae'"), std::string::npos) << error;
  std::remove(path);
}

TEST(Config, ShardsAndReplicationAreChecked) {
  std::string error;
  ServerConfig c = three_members("b", 1);
  c.shards = 64;
  EXPECT_TRUE(resolve(c, &error)) << error;
  c.shards = 1025;
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("--shards must be at most 1024"), std::string::npos) << error;
  c.shards = 4;
  c.replication = 4;  // more than the three members
  EXPECT_FALSE(resolve(c, &error));
  EXPECT_NE(error.find("--replication must be between 1 and"), std::string::npos) << error;
  c.replication = 0;
  EXPECT_FALSE(resolve(c, &error));
  c.replication = 2;
  EXPECT_TRUE(resolve(c, &error)) << error;
  c.engine = "multipaxos";
  EXPECT_TRUE(resolve(c, &error)) << error;
}

TEST(Config, ShardsComeFromTheConfigFileToo) {
  const std::string path = ::testing::TempDir() + "/synod-shards.conf";
  {
    std::ofstream out(path);
    out << "name: a\nshards: 16\nreplication: 1\n";
  }
  ServerConfig c;
  std::string error;
  ASSERT_TRUE(load_config_file(path, &c, &error)) << error;
  EXPECT_EQ(c.shards, 16u);
  EXPECT_EQ(c.replication, 1u);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace synod::server
