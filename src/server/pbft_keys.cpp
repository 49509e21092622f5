#include "server/pbft_keys.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace synod::server {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxKeyFileBytes = 1 << 16;

template <size_t N>
bool from_hex(const std::string& text, std::array<uint8_t, N>* out) {
  if (text.size() != 2 * N) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < N; ++i) {
    const int hi = nibble(text[2 * i]);
    const int lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

// "key value" lines (blank lines and '#' comments skipped); nullopt on a repeated key or a line
// without a value.
std::optional<std::map<std::string, std::string>> parse_lines(const std::string& text,
                                                              std::string* error) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string key, value, extra;
    if (!(words >> key >> value) || (words >> extra)) {
      *error = "malformed line '" + line + "'";
      return std::nullopt;
    }
    if (!out.emplace(key, value).second) {
      *error = "'" + key + "' given twice";
      return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> read_small_file(const std::string& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read " + path;
    return std::nullopt;
  }
  std::string text(kMaxKeyFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxKeyFileBytes) {
    *error = path + " is too large to be a key file";
    return std::nullopt;
  }
  return text;
}

bool write_file(const std::string& path, const std::string& text, mode_t mode, std::string* error) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !(out << text) || !out.flush()) {
      *error = "cannot write " + tmp;
      return false;
    }
  }
  if (::chmod(tmp.c_str(), mode) != 0) {
    *error = "cannot set the mode of " + tmp;
    return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    *error = "cannot rename " + tmp + ": " + ec.message();
    return false;
  }
  return true;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string pbft_key_dir(const std::string& data_dir) {
  return data_dir + "/pbft";
}
std::string pbft_secret_path(const std::string& data_dir) {
  return pbft_key_dir(data_dir) + "/secret.key";
}
std::string pbft_public_dir(const std::string& data_dir) {
  return pbft_key_dir(data_dir) + "/public";
}

std::string format_public_keys(const std::string& name, const pbft::PublicKeys& keys) {
  return "# Synod PBFT public keys of member " + name +
         ": copy this file into every member's pbft/public/ directory and give it to BFT "
         "clients\nname " +
         name + "\nkx " + pbft::to_hex(keys.kx) + "\nsign " + pbft::to_hex(keys.sign) + "\n";
}

std::optional<std::pair<std::string, pbft::PublicKeys>> parse_public_keys(const std::string& text,
                                                                          std::string* error) {
  auto lines = parse_lines(text, error);
  if (!lines) return std::nullopt;
  pbft::PublicKeys keys;
  auto name = lines->find("name");
  auto kx = lines->find("kx");
  auto sign = lines->find("sign");
  if (name == lines->end() || kx == lines->end() || sign == lines->end() || lines->size() != 3) {
    *error = "a public key file has exactly the lines name, kx and sign";
    return std::nullopt;
  }
  if (!from_hex(kx->second, &keys.kx) || !from_hex(sign->second, &keys.sign)) {
    *error = "kx and sign must be 64 hex digits each";
    return std::nullopt;
  }
  return std::make_pair(name->second, keys);
}

bool generate_member_keys(const std::string& data_dir, const std::string& name, bool force,
                          std::string* public_path, std::string* error) {
  if (!valid_name(name)) {
    *error = "member name '" + name + "' must be letters, digits, '-', '_' or '.'";
    return false;
  }
  const std::string secret_path = pbft_secret_path(data_dir);
  if (!force && fs::exists(secret_path)) {
    *error = secret_path + " exists already (--force replaces it, and every member then needs " +
             "the new public keys)";
    return false;
  }
  std::error_code ec;
  fs::create_directories(pbft_public_dir(data_dir), ec);
  if (ec) {
    *error = "cannot create " + pbft_public_dir(data_dir) + ": " + ec.message();
    return false;
  }
  const pbft::SecretKeys keys = pbft::make_keys();
  const std::string secret = "# Synod PBFT secret keys of member " + name +
                             ": never copy this file off the member\nname " + name +
                             "\nkx-secret " + pbft::to_hex(keys.kx) + "\nsign-secret " +
                             pbft::to_hex(keys.sign) + "\nkx " + pbft::to_hex(keys.pub.kx) +
                             "\nsign " + pbft::to_hex(keys.pub.sign) + "\n";
  if (!write_file(secret_path, secret, 0600, error)) return false;
  *public_path = pbft_public_dir(data_dir) + "/" + name + ".pub";
  return write_file(*public_path, format_public_keys(name, keys.pub), 0644, error);
}

std::optional<std::map<std::string, pbft::PublicKeys>> read_public_keys(const std::string& dir,
                                                                        std::string* error) {
  std::map<std::string, pbft::PublicKeys> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    *error = "cannot list " + dir + ": " + ec.message();
    return std::nullopt;
  }
  for (const fs::directory_entry& e : it) {
    if (e.path().extension() != ".pub") continue;
    const std::string path = e.path().string();
    auto text = read_small_file(path, error);
    if (!text) return std::nullopt;
    std::string why;
    auto parsed = parse_public_keys(*text, &why);
    if (!parsed) {
      *error = path + ": " + why;
      return std::nullopt;
    }
    if (parsed->first + ".pub" != e.path().filename().string()) {
      *error = path + " names member '" + parsed->first + "' (the file should be " + parsed->first +
               ".pub)";
      return std::nullopt;
    }
    out.emplace(parsed->first, parsed->second);
  }
  return out;
}

std::shared_ptr<const pbft::Keyring> load_member_keyring(
    const std::string& data_dir, const std::string& name,
    const std::vector<std::pair<std::string, uint64_t>>& members, std::string* error) {
  const std::string secret_path = pbft_secret_path(data_dir);
  const std::string hint = " (make keys with `synod keys new --data-dir " + data_dir + " --name " +
                           name + "` and share the public files)";
  if (!fs::exists(secret_path)) {
    *error = "PBFT member '" + name + "' has no keys: " + secret_path + " is missing" + hint;
    return nullptr;
  }
  auto text = read_small_file(secret_path, error);
  if (!text) return nullptr;
  std::string why;
  auto lines = parse_lines(*text, &why);
  pbft::SecretKeys mine;
  if (!lines || !lines->count("kx-secret") || !lines->count("sign-secret") || !lines->count("kx") ||
      !lines->count("sign") || !from_hex(lines->at("kx-secret"), &mine.kx) ||
      !from_hex(lines->at("sign-secret"), &mine.sign) || !from_hex(lines->at("kx"), &mine.pub.kx) ||
      !from_hex(lines->at("sign"), &mine.pub.sign)) {
    *error = secret_path + " is malformed" + (why.empty() ? "" : ": " + why);
    return nullptr;
  }
  if (lines->count("name") && lines->at("name") != name) {
    *error = secret_path + " holds the keys of member '" + lines->at("name") + "', not of --name " +
             name;
    return nullptr;
  }
  auto publics = read_public_keys(pbft_public_dir(data_dir), error);
  if (!publics) return nullptr;
  std::map<uint64_t, pbft::PublicKeys> replicas;
  for (const auto& [member, id] : members) {
    auto it = publics->find(member);
    if (it == publics->end()) {
      *error = "PBFT member '" + name + "' lacks the public keys of member '" + member +
               "': copy " + member + ".pub (made by `synod keys new` in " + member +
               "'s data dir) into " + pbft_public_dir(data_dir);
      return nullptr;
    }
    if (member == name && it->second != mine.pub) {
      *error = pbft_public_dir(data_dir) + "/" + name + ".pub does not match " + secret_path;
      return nullptr;
    }
    replicas.emplace(id, it->second);
  }
  return std::make_shared<const pbft::Keyring>(mine, std::move(replicas));
}

}  // namespace synod::server
