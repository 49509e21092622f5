// Runs every script in testdata/ and compares each command's transcript with the golden one.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "interaction.h"

namespace synod::golden {
namespace {

struct Block {
  std::vector<std::string> preamble;  // comments and blank lines before the command
  std::string command_line;
  std::string expected;
};

Command parse_command(const std::string& line) {
  Command c;
  std::stringstream ss(line);
  ss >> c.name;
  std::string word;
  while (ss >> word) {
    const auto eq = word.find('=');
    if (eq == std::string::npos) {
      c.args.push_back(word);
    } else {
      c.flags[word.substr(0, eq)] = word.substr(eq + 1);
    }
  }
  return c;
}

std::vector<Block> parse_file(const std::string& path) {
  std::ifstream in(path);
  std::vector<Block> blocks;
  Block cur;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      cur.preamble.push_back(line);
      continue;
    }
    cur.command_line = line;
    if (!std::getline(in, line) || line != "----") {
      ADD_FAILURE() << path << ": expected ---- after '" << cur.command_line << "'";
      return blocks;
    }
    while (std::getline(in, line) && !line.empty()) cur.expected += line + "\n";
    blocks.push_back(std::move(cur));
    cur = Block{};
    cur.preamble.push_back("");
  }
  return blocks;
}

std::vector<std::string> scripts() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(SYNOD_GOLDEN_DIR)) {
    if (e.path().extension() == ".txt") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, TranscriptMatches) {
  const std::string path = std::string(SYNOD_GOLDEN_DIR) + "/" + GetParam();
  const bool rewrite = std::getenv("SYNOD_REWRITE_GOLDEN") != nullptr;
  Interaction env;
  std::ostringstream rewritten;
  bool first = true;
  for (const Block& b : parse_file(path)) {
    for (const auto& p : b.preamble) {
      if (first && p.empty()) continue;
      rewritten << p << "\n";
    }
    first = false;
    std::string actual;
    try {
      actual = env.run(parse_command(b.command_line));
    } catch (const std::exception& e) {
      actual = std::string("error: ") + e.what() + "\n";
    }
    if (actual.empty()) actual = "ok\n";
    rewritten << b.command_line << "\n----\n" << actual;
    if (!rewrite) {
      EXPECT_EQ(b.expected, actual) << GetParam() << ": " << b.command_line;
    }
  }
  if (rewrite) std::ofstream(path) << rewritten.str();
}

INSTANTIATE_TEST_SUITE_P(Scripts, Golden, ::testing::ValuesIn(scripts()), [](const auto& info) {
  std::string name = info.param.substr(0, info.param.size() - 4);
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
});

}  // namespace
}  // namespace synod::golden
