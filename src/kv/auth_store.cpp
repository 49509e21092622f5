#include "kv/auth_store.h"

#include <algorithm>
#include <cassert>

#include "kv/keys.h"
#include "kv/records.h"

namespace synod::kv {
namespace {

const std::string kEnabledKey = std::string(1, keys::kAuth) + "e";
const std::string kRevisionKey = std::string(1, keys::kAuth) + "v";
const std::string kUserPrefix = std::string(1, keys::kAuth) + "u";
const std::string kRolePrefix = std::string(1, keys::kAuth) + "r";

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  return end;
}

bool holds_root(const authpb::User& user) {
  return std::find(user.roles().begin(), user.roles().end(), kRootRole) != user.roles().end();
}

Error permission_not_given() {
  return {kGrpcInvalidArgument, "etcdserver: permission not given"};
}

}  // namespace

AuthStore::AuthStore() = default;

AuthStore AuthStore::load(const Backend& backend) {
  std::string why;
  std::optional<AuthStore> store = decode(backend, &why);
  if (!store) records::corrupted(why);
  return std::move(*store);
}

std::optional<AuthStore> AuthStore::decode(const Backend& backend, std::string* why) {
  AuthStore store;
  if (std::optional<std::string> v = backend.get(kEnabledKey)) store.enabled_ = *v == "\x01";
  if (std::optional<std::string> v = backend.get(kRevisionKey)) {
    std::optional<uint64_t> revision = keys::decode_u64(*v);
    if (!revision) {
      *why = "auth revision";
      return std::nullopt;
    }
    store.revision_ = *revision;
  }
  bool ok = true;
  backend.scan(kUserPrefix, prefix_end(kUserPrefix), [&](std::string_view k, std::string_view v) {
    authpb::User user;
    ok = user.ParseFromArray(v.data(), static_cast<int>(v.size()));
    if (ok) store.users_.emplace(std::string(k.substr(kUserPrefix.size())), std::move(user));
    return ok;
  });
  if (!ok) {
    *why = "auth user";
    return std::nullopt;
  }
  backend.scan(kRolePrefix, prefix_end(kRolePrefix), [&](std::string_view k, std::string_view v) {
    authpb::Role role;
    ok = role.ParseFromArray(v.data(), static_cast<int>(v.size()));
    if (ok) store.roles_.emplace(std::string(k.substr(kRolePrefix.size())), std::move(role));
    return ok;
  });
  if (!ok) {
    *why = "auth role";
    return std::nullopt;
  }
  store.refresh_permissions();
  return store;
}

const authpb::User* AuthStore::user(std::string_view name) const {
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : &it->second;
}

const authpb::Role* AuthStore::role(std::string_view name) const {
  auto it = roles_.find(name);
  return it == roles_.end() ? nullptr : &it->second;
}

std::vector<std::string> AuthStore::user_names() const {
  std::vector<std::string> names;
  for (const auto& [name, user] : users_) names.push_back(name);
  return names;
}

std::vector<std::string> AuthStore::role_names() const {
  std::vector<std::string> names;
  for (const auto& [name, role] : roles_) names.push_back(name);
  return names;
}

bool AuthStore::has_role(std::string_view user_name, std::string_view role_name) const {
  const authpb::User* u = user(user_name);
  if (u == nullptr) return false;
  return std::find(u->roles().begin(), u->roles().end(), role_name) != u->roles().end();
}

std::optional<Error> AuthStore::check(const Caller& caller, std::string_view key,
                                      std::string_view range_end, Access access) const {
  if (!enabled_) return std::nullopt;
  if (caller.revision == 0) return errors::user_empty();
  // The caller was resolved before a change its request would now have to see (etcd's TOCTOU
  // guard): a revoked permission must not let one more write through.
  if (caller.revision < revision_) return errors::auth_old_revision();
  const authpb::User* u = user(caller.user);
  if (u == nullptr) return errors::permission_denied();
  if (holds_root(*u)) return std::nullopt;
  auto it = permissions_.find(caller.user);
  if (it == permissions_.end()) return errors::permission_denied();
  Interval wanted{std::string(key), std::string(key) + '\0'};
  if (range_end == std::string_view("\0", 1)) {
    wanted.end = std::nullopt;
  } else if (!range_end.empty() && range_end > key) {
    wanted.end = std::string(range_end);
  }
  const auto& granted = access == Access::kRead ? it->second.read : it->second.write;
  if (covers(granted, wanted)) return std::nullopt;
  return errors::permission_denied();
}

std::optional<Error> AuthStore::check_admin(const Caller& caller) const {
  if (!enabled_) return std::nullopt;
  if (caller.user.empty()) return errors::user_empty();
  const authpb::User* u = user(caller.user);
  if (u == nullptr) return errors::user_not_found();
  if (!holds_root(*u)) return errors::permission_denied();
  return std::nullopt;
}

std::optional<Error> AuthStore::check_login(const synodpb::Login& login) const {
  if (!enabled_) return errors::auth_not_enabled();
  const authpb::User* u = user(login.name());
  if (u == nullptr || u->options().no_password()) return errors::auth_failed();
  if (login.checked_revision() != revision_) return errors::auth_old_revision();
  return std::nullopt;
}

std::optional<Error> AuthStore::apply(const synodpb::AuthRequest& req, BatchView& view) {
  const uint64_t revision_before = revision_;
  std::optional<Error> error = apply_op(req, view);
  assert(!error || revision_ == revision_before);
  if (!error && revision_ != revision_before) {
    view.put(kRevisionKey, keys::encode_u64(revision_));
    refresh_permissions();
  }
  return error;
}

// Each case follows etcd 3.4's authStore method of the same name; a change bumps the revision
// (commitRevision), a request that changes nothing (enable twice, a role granted again) does not.
std::optional<Error> AuthStore::apply_op(const synodpb::AuthRequest& req, BatchView& view) {
  switch (req.op_case()) {
    case synodpb::AuthRequest::kEnable: {
      if (enabled_) return std::nullopt;
      const authpb::User* root = user(kRootUser);
      if (root == nullptr) return errors::root_user_missing();
      if (!holds_root(*root)) return errors::root_role_missing();
      enabled_ = true;
      view.put(kEnabledKey, "\x01");
      return std::nullopt;
    }
    case synodpb::AuthRequest::kDisable:
      if (!enabled_) return std::nullopt;
      enabled_ = false;
      view.put(kEnabledKey, std::string(1, '\0'));
      ++revision_;
      return std::nullopt;
    case synodpb::AuthRequest::kUserAdd: {
      const synodpb::UserAdd& add = req.user_add();
      if (add.name().empty()) return errors::user_empty();
      if (user(add.name()) != nullptr) return errors::user_exists();
      authpb::User u;
      u.set_name(add.name());
      u.set_password(add.password_hash());
      *u.mutable_options() = add.options();
      put_user(u, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kUserDelete: {
      const std::string& name = req.user_delete();
      if (enabled_ && name == kRootUser) return errors::invalid_auth_management();
      if (user(name) == nullptr) return errors::user_not_found();
      users_.erase(name);
      view.del(kUserPrefix + name);
      ++revision_;
      return std::nullopt;
    }
    case synodpb::AuthRequest::kUserChangePassword: {
      const synodpb::UserPassword& change = req.user_change_password();
      const authpb::User* found = user(change.name());
      if (found == nullptr) return errors::user_not_found();
      authpb::User u = *found;
      u.set_password(change.password_hash());
      put_user(u, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kUserGrantRole: {
      const etcdserverpb::AuthUserGrantRoleRequest& grant = req.user_grant_role();
      const authpb::User* found = user(grant.user());
      if (found == nullptr) return errors::user_not_found();
      // The root role need not exist as a role to be granted.
      if (grant.role() != kRootRole && role(grant.role()) == nullptr) {
        return errors::role_not_found();
      }
      if (has_role(grant.user(), grant.role())) return std::nullopt;
      authpb::User u = *found;
      u.add_roles(grant.role());
      std::sort(u.mutable_roles()->begin(), u.mutable_roles()->end());
      put_user(u, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kUserRevokeRole: {
      const etcdserverpb::AuthUserRevokeRoleRequest& revoke = req.user_revoke_role();
      if (enabled_ && revoke.name() == kRootUser && revoke.role() == kRootRole) {
        return errors::invalid_auth_management();
      }
      const authpb::User* found = user(revoke.name());
      if (found == nullptr) return errors::user_not_found();
      if (!has_role(revoke.name(), revoke.role())) return errors::role_not_granted();
      authpb::User u = *found;
      auto* roles = u.mutable_roles();
      roles->erase(std::remove(roles->begin(), roles->end(), revoke.role()), roles->end());
      put_user(u, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kRoleAdd: {
      const std::string& name = req.role_add();
      if (name.empty()) return errors::role_empty();
      if (role(name) != nullptr) return errors::role_exists();
      authpb::Role r;
      r.set_name(name);
      put_role(r, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kRoleDelete: {
      const std::string& name = req.role_delete();
      if (enabled_ && name == kRootRole) return errors::invalid_auth_management();
      if (role(name) == nullptr) return errors::role_not_found();
      roles_.erase(name);
      view.del(kRolePrefix + name);
      // Users lose the role, so a role created later under the same name grants nothing.
      for (auto& [user_name, u] : users_) {
        auto* roles = u.mutable_roles();
        auto end = std::remove(roles->begin(), roles->end(), name);
        if (end == roles->end()) continue;
        roles->erase(end, roles->end());
        view.put(kUserPrefix + user_name, u.SerializeAsString());
      }
      ++revision_;
      return std::nullopt;
    }
    case synodpb::AuthRequest::kRoleGrantPermission: {
      const etcdserverpb::AuthRoleGrantPermissionRequest& grant = req.role_grant_permission();
      const authpb::Role* found = role(grant.name());
      if (found == nullptr) return errors::role_not_found();
      if (!grant.has_perm()) return permission_not_given();
      authpb::Role r = *found;
      auto* perms = r.mutable_keypermission();
      auto same = std::find_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
        return p.key() == grant.perm().key() && p.range_end() == grant.perm().range_end();
      });
      if (same != perms->end()) {
        same->set_permtype(grant.perm().permtype());
      } else {
        *perms->Add() = grant.perm();
        std::stable_sort(perms->begin(), perms->end(),
                         [](const authpb::Permission& a, const authpb::Permission& b) {
                           return a.key() < b.key();
                         });
      }
      put_role(r, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kRoleRevokePermission: {
      const etcdserverpb::AuthRoleRevokePermissionRequest& revoke = req.role_revoke_permission();
      const authpb::Role* found = role(revoke.role());
      if (found == nullptr) return errors::role_not_found();
      authpb::Role r = *found;
      auto* perms = r.mutable_keypermission();
      auto end = std::remove_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
        return p.key() == revoke.key() && p.range_end() == revoke.range_end();
      });
      if (end == perms->end()) return errors::permission_not_granted();
      perms->erase(end, perms->end());
      put_role(r, view);
      return std::nullopt;
    }
    case synodpb::AuthRequest::kLogin:
      return check_login(req.login());
    default:
      return errors::empty_request();
  }
}

void AuthStore::put_user(const authpb::User& user, BatchView& view) {
  view.put(kUserPrefix + user.name(), user.SerializeAsString());
  users_[user.name()] = user;
  ++revision_;
}

void AuthStore::put_role(const authpb::Role& role, BatchView& view) {
  view.put(kRolePrefix + role.name(), role.SerializeAsString());
  roles_[role.name()] = role;
  ++revision_;
}

// etcd's getMergedPerms: a user's read and write ranges over all its roles (a role granted but
// since deleted counts for nothing).
void AuthStore::refresh_permissions() {
  permissions_.clear();
  for (const auto& [name, u] : users_) {
    std::vector<Interval> read;
    std::vector<Interval> write;
    for (const std::string& role_name : u.roles()) {
      const authpb::Role* r = role(role_name);
      if (r == nullptr) continue;
      for (const authpb::Permission& p : r->keypermission()) {
        Interval ivl{p.key(), p.key() + '\0'};
        if (p.range_end() == std::string_view("\0", 1)) {
          ivl.end = std::nullopt;
        } else if (!p.range_end().empty()) {
          if (p.range_end() <= p.key()) continue;  // an empty range grants nothing
          ivl.end = p.range_end();
        }
        if (p.permtype() != authpb::Permission::WRITE) read.push_back(ivl);
        if (p.permtype() != authpb::Permission::READ) write.push_back(ivl);
      }
    }
    permissions_[name] = Merged{merge(std::move(read)), merge(std::move(write))};
  }
}

std::vector<AuthStore::Interval> AuthStore::merge(std::vector<Interval> intervals) {
  std::sort(intervals.begin(), intervals.end(),
            [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
  std::vector<Interval> merged;
  for (Interval& ivl : intervals) {
    if (!merged.empty()) {
      Interval& last = merged.back();
      // Overlapping or touching: [a, b) and [b, c) cover [a, c).
      if (!last.end || ivl.begin <= *last.end) {
        if (last.end && (!ivl.end || *ivl.end > *last.end)) last.end = ivl.end;
        continue;
      }
    }
    merged.push_back(std::move(ivl));
  }
  return merged;
}

// Merged intervals are disjoint and do not touch, so the union covers `wanted` only if one of
// them does: the last that begins at or before it.
bool AuthStore::covers(const std::vector<Interval>& merged, const Interval& wanted) {
  auto after =
      std::upper_bound(merged.begin(), merged.end(), wanted.begin,
                       [](const std::string& key, const Interval& ivl) { return key < ivl.begin; });
  if (after == merged.begin()) return false;
  const Interval& ivl = *std::prev(after);
  if (!ivl.end) return true;
  return wanted.end && *wanted.end <= *ivl.end;
}

}  // namespace synod::kv
