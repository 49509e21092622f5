#include "cli/keys.h"

#include <iostream>
#include <memory>
#include <string>

#include "core/pbft/crypto.h"
#include "server/pbft_keys.h"

namespace synod::cli {

namespace {

struct KeysFlags {
  CLI::App* make = nullptr;
  CLI::App* show = nullptr;
  std::string data_dir;
  std::string name = "default";
  bool force = false;
};

int run_new(const KeysFlags& f) {
  const std::string dir = f.data_dir.empty() ? f.name + ".synod" : f.data_dir;
  std::string public_path, error;
  if (!server::generate_member_keys(dir, f.name, f.force, &public_path, &error)) {
    std::cerr << "synod keys new: " << error << "\n";
    return 1;
  }
  std::cout << "made the PBFT keys of member " << f.name
            << ":\n  secret: " << server::pbft_secret_path(dir)
            << " (stays on this member)\n  public: " << public_path << "\ncopy " << f.name
            << ".pub into the pbft/public/ directory of every other member's data dir, and "
               "theirs into "
            << server::pbft_public_dir(dir) << "; BFT clients take the directory of all of them\n";
  return 0;
}

int run_show(const KeysFlags& f) {
  const std::string dir = f.data_dir.empty() ? f.name + ".synod" : f.data_dir;
  std::string error;
  auto keys = server::read_public_keys(server::pbft_public_dir(dir), &error);
  if (!keys) {
    std::cerr << "synod keys show: " << error << "\n";
    return 1;
  }
  for (const auto& [name, k] : *keys) {
    std::cout << name << " kx " << pbft::to_hex(k.kx) << " sign " << pbft::to_hex(k.sign) << "\n";
  }
  return 0;
}

}  // namespace

std::function<int()> add_keys_command(CLI::App& app) {
  auto f = std::make_shared<KeysFlags>();
  CLI::App* keys = app.add_subcommand("keys", "PBFT member keys (--engine pbft)");
  keys->require_subcommand(1);
  f->make = keys->add_subcommand(
      "new", "make a member's key pairs in its data dir (secret) and a public file to share");
  f->show = keys->add_subcommand("show", "list the public keys a member's data dir holds");
  for (CLI::App* sub : {f->make, f->show}) {
    sub->add_option("--data-dir", f->data_dir, "the member's data dir (default: <name>.synod)");
    sub->add_option("--name", f->name, "the member's --name (default)");
  }
  f->make->add_flag("--force", f->force, "replace existing keys");
  return [f]() { return f->make->parsed() ? run_new(*f) : run_show(*f); };
}

}  // namespace synod::cli
