// kv::AuthStore: users, roles and key permissions, with etcd 3.4's semantics (auth/store.go,
// auth/range_perm_cache.go), as replicated state: every change is a log entry applied by every
// member, stamped with a revision of its own (the auth revision).
//
// A user holds roles; a role holds permissions (read, write or readwrite) on a key or a key
// range. The role "root" may do everything, and authentication can only be enabled once a user
// "root" holds it. While enabled, every KV request is checked against its caller's permissions
// (check), and managing users and roles needs root (check_admin).
//
// Layout (table 'a' of kv/keys.h): "ae" the enabled flag, "av" the auth revision (be64),
// "au<name>" an authpb.User, "ar<name>" an authpb.Role. Passwords are stored as the hashes the
// proposing member computed (the store never sees a password).
//
// Determinism: no clocks, randomness or I/O; every replica that applied the same entries holds
// the same AuthStore. Thread-safety: none (the Store's caller serializes).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authpb/auth.pb.h"
#include "kv/backend.h"
#include "kv/batch_view.h"
#include "kv/errors.h"
#include "synodpb/request.pb.h"

namespace synod::kv {

inline constexpr std::string_view kRootUser = "root";
inline constexpr std::string_view kRootRole = "root";

// Who makes a request: the user a member resolved from the caller's token, and the auth
// revision at which it did (etcd's AuthInfo). revision 0: no user was given.
struct Caller {
  std::string user;
  uint64_t revision = 0;
  // The revision came with the credential (a JWT's claim), so a read checks it as it is; without
  // it, reads take the store's revision at the check (the caller was resolved just before).
  bool revision_from_token = false;
};

enum class Access { kRead, kWrite };

class AuthStore {
 public:
  // An empty store: disabled, revision 1 (etcd commits revision 1 when it creates the store).
  AuthStore();
  // The store a backend holds (an empty backend holds the empty store). Aborts on a record that
  // does not decode: the backend is this member's own, so that is on-disk corruption.
  static AuthStore load(const Backend& backend);
  // The same for tables that came from outside (a peer's image): nullopt, with the record at
  // fault in `why`, on a record that does not decode.
  static std::optional<AuthStore> decode(const Backend& backend, std::string* why);

  bool enabled() const { return enabled_; }
  uint64_t revision() const { return revision_; }
  const authpb::User* user(std::string_view name) const;
  const authpb::Role* role(std::string_view name) const;
  // Names in byte order.
  std::vector<std::string> user_names() const;
  std::vector<std::string> role_names() const;
  bool has_role(std::string_view user, std::string_view role) const;

  // etcd's isOpPermitted: nullopt if authentication is disabled or the caller may access
  // [key, range_end) (range_end empty: key alone; "\0": every key from key on). Errors: no user
  // given (user name is empty), the revision the caller was resolved at is older than the
  // store's (revision of auth store is old), or the permissions do not cover the range.
  std::optional<Error> check(const Caller& caller, std::string_view key, std::string_view range_end,
                             Access access) const;
  // etcd's IsAdminPermitted: the caller holds the root role (or authentication is disabled).
  std::optional<Error> check_admin(const Caller& caller) const;

  // Applies one change (not a login: that changes nothing here) as etcd's auth store does,
  // writing it to `view` and bumping the revision. On an error neither this nor `view` changed.
  std::optional<Error> apply(const synodpb::AuthRequest& req, BatchView& view);
  // A login's checks at apply time: authentication enabled, the user still there with a
  // password, and nothing changed since the password was checked.
  std::optional<Error> check_login(const synodpb::Login& login) const;

 private:
  // A user's permissions merged over its roles: disjoint, sorted intervals [begin, end), end
  // nullopt for no upper bound.
  struct Interval {
    std::string begin;
    std::optional<std::string> end;
  };
  struct Merged {
    std::vector<Interval> read;
    std::vector<Interval> write;
  };

  std::optional<Error> apply_op(const synodpb::AuthRequest& req, BatchView& view);
  void put_user(const authpb::User& user, BatchView& view);
  void put_role(const authpb::Role& role, BatchView& view);
  void refresh_permissions();
  static std::vector<Interval> merge(std::vector<Interval> intervals);
  static bool covers(const std::vector<Interval>& merged, const Interval& wanted);

  bool enabled_ = false;
  uint64_t revision_ = 1;
  std::map<std::string, authpb::User, std::less<>> users_;
  std::map<std::string, authpb::Role, std::less<>> roles_;
  std::map<std::string, Merged, std::less<>> permissions_;  // by user, from users_ and roles_
};

}  // namespace synod::kv
