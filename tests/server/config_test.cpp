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
  c.initial_cluster =
      "a=http://127.0.0.1:2380,b=http://127.0.0.1:2390,c=http://127.0.0.1:2400";
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
  EXPECT_FALSE(parse_url("https://127.0.0.1:2379", &error));
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

TEST(Config, MemberIdsDependOnUrlsAndToken) {
  std::string error;
  auto a = *parse_url_list("http://127.0.0.1:2380", &error);
  auto b = *parse_url_list("http://127.0.0.1:2390", &error);
  EXPECT_NE(member_id(a, "t"), member_id(b, "t"));
  EXPECT_NE(member_id(a, "t"), member_id(a, "u"));
  EXPECT_EQ(member_id(a, "t"), member_id(a, "t"));
  EXPECT_EQ(cluster_id({1, 2, 3}, "t"), cluster_id({3, 1, 2}, "t"));
}

TEST(Config, LoadsAConfigFileAndRefusesUnknownKeys) {
  char path[] = "/tmp/synod-config-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << "# a member\nname: s1\ndata-dir: /tmp/s1\nelection-timeout: 2000\n";
  }
  ServerConfig c;
  std::string error;
  ASSERT_TRUE(load_config_file(path, &c, &error)) << error;
  EXPECT_EQ(c.name, "s1");
  EXPECT_EQ(c.data_dir, "/tmp/s1");
  EXPECT_EQ(c.election_timeout_ms, 2000u);
  {
    std::ofstream out(path);
    out << "nmae: s1\n";
  }
  EXPECT_FALSE(load_config_file(path, &c, &error));
  EXPECT_NE(error.find("unknown key 'nmae'"), std::string::npos) << error;
  std::remove(path);
}

}  // namespace
}  // namespace synod::server
