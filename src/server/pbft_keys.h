// PBFT member keys on disk. `synod keys new` makes a member's key pairs in its data dir:
//
//   DATA/pbft/secret.key        the member's X25519 and Ed25519 secrets (mode 0600; never copied)
//   DATA/pbft/public/NAME.pub   its public keys, for the operator to copy into every other
//                               member's DATA/pbft/public/ and to give to BFT clients
//
// A PBFT member starts only with its secret and the public keys of every --initial-cluster
// member; anything missing or malformed is a clear error naming the file. The files are text:
// "key value" lines, values in hex, '#' comments.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/pbft/crypto.h"

namespace synod::server {

// Where a data dir keeps them.
std::string pbft_key_dir(const std::string& data_dir);
std::string pbft_secret_path(const std::string& data_dir);
std::string pbft_public_dir(const std::string& data_dir);

// Makes fresh keys for member `name` in `data_dir` (refuses to replace existing ones unless
// `force`). On success `*public_path` names the public file to distribute.
bool generate_member_keys(const std::string& data_dir, const std::string& name, bool force,
                          std::string* public_path, std::string* error);

// Every NAME.pub in `dir`, by the name each file gives (which must match its file name).
std::optional<std::map<std::string, pbft::PublicKeys>> read_public_keys(const std::string& dir,
                                                                        std::string* error);

// The keyring a member runs with: its secret, and the public keys of `members` (name, member
// ID), each of which must be in DATA/pbft/public/.
std::shared_ptr<const pbft::Keyring> load_member_keyring(
    const std::string& data_dir, const std::string& name,
    const std::vector<std::pair<std::string, uint64_t>>& members, std::string* error);

// Text forms (exposed for tests).
std::string format_public_keys(const std::string& name, const pbft::PublicKeys& keys);
std::optional<std::pair<std::string, pbft::PublicKeys>> parse_public_keys(const std::string& text,
                                                                          std::string* error);

}  // namespace synod::server
