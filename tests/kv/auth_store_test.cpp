// The auth store as replicated state: users, roles and permissions applied through Store::apply,
// and every KV request checked against its caller while authentication is enabled.
#include "kv/auth_store.h"

#include <gtest/gtest.h>

#include "kv/store.h"
#include "test_backend.h"

namespace synod::kv {
namespace {

using authpb::Permission;

class KV_SUITE(AuthStoreTest) : public ::testing::Test {
 protected:
  ApplyResult apply(synodpb::Request req) { return store_->apply(++index_, req); }

  // An auth change made by `user` (empty: nobody) at the current auth revision.
  std::optional<Error> change(synodpb::AuthRequest op, const std::string& user = "root") {
    synodpb::Request req;
    *req.mutable_auth() = std::move(op);
    stamp(user, &req);
    ApplyResult r = apply(req);
    if (r.error()) return *r.error();
    EXPECT_NE(r.response<AuthApplied>(), nullptr);
    return std::nullopt;
  }
  void stamp(const std::string& user, synodpb::Request* req) {
    if (user.empty()) return;
    req->set_auth_user(user);
    req->set_auth_revision(store_->auth().revision());
  }
  std::optional<Error> user_add(const std::string& name) {
    synodpb::AuthRequest op;
    op.mutable_user_add()->set_name(name);
    op.mutable_user_add()->set_password_hash("hash-of-" + name);
    return change(op);
  }
  std::optional<Error> role_add(const std::string& name) {
    synodpb::AuthRequest op;
    op.set_role_add(name);
    return change(op);
  }
  std::optional<Error> grant_role(const std::string& user, const std::string& role) {
    synodpb::AuthRequest op;
    op.mutable_user_grant_role()->set_user(user);
    op.mutable_user_grant_role()->set_role(role);
    return change(op);
  }
  std::optional<Error> grant(const std::string& role, Permission::Type type, const std::string& key,
                             const std::string& end = "") {
    synodpb::AuthRequest op;
    op.mutable_role_grant_permission()->set_name(role);
    Permission* p = op.mutable_role_grant_permission()->mutable_perm();
    p->set_permtype(type);
    p->set_key(key);
    p->set_range_end(end);
    return change(op);
  }
  std::optional<Error> enable() {
    synodpb::AuthRequest op;
    op.mutable_enable();
    return change(op);
  }
  // root (with the root role), and alice with role "app": readwrite on prefix "app/", read on
  // key "config"; authentication enabled.
  void set_up_users() {
    ASSERT_FALSE(user_add("root"));
    ASSERT_FALSE(grant_role("root", "root"));
    ASSERT_FALSE(user_add("alice"));
    ASSERT_FALSE(role_add("app"));
    ASSERT_FALSE(grant("app", Permission::READWRITE, "app/", "app0"));
    ASSERT_FALSE(grant("app", Permission::READ, "config"));
    ASSERT_FALSE(grant_role("alice", "app"));
    ASSERT_FALSE(enable());
  }
  std::optional<Error> put_as(const std::string& user, const std::string& key) {
    synodpb::Request req;
    req.mutable_put()->set_key(key);
    req.mutable_put()->set_value("v");
    stamp(user, &req);
    ApplyResult r = apply(req);
    if (r.error()) return *r.error();
    return std::nullopt;
  }
  std::optional<Error> check(const std::string& user, const std::string& key,
                             const std::string& end, Access access) {
    return store_->auth().check(Caller{user, store_->auth().revision()}, key, end, access);
  }
  std::optional<mvccpb::KeyValue> get(const std::string& key) {
    etcdserverpb::RangeRequest r;
    r.set_key(key);
    auto resp = store_->range(r);
    if (!resp || resp->kvs_size() == 0) return std::nullopt;
    return resp->kvs(0);
  }

  std::unique_ptr<testing::TestBackend> tb_ = testing::make_test_backend();
  std::unique_ptr<Store> store_ = std::make_unique<Store>(tb_->get());
  uint64_t index_ = 0;
};

TEST_F(KV_SUITE(AuthStoreTest), EnablingNeedsARootUserWithTheRootRole) {
  EXPECT_EQ(enable(), errors::root_user_missing());
  ASSERT_FALSE(user_add("root"));
  EXPECT_EQ(enable(), errors::root_role_missing());
  ASSERT_FALSE(grant_role("root", "root"));  // the root role need not exist as a role
  EXPECT_FALSE(enable());
  EXPECT_TRUE(store_->auth().enabled());
}

TEST_F(KV_SUITE(AuthStoreTest), UsersAndRolesKeepEtcdsErrors) {
  EXPECT_EQ(user_add(""), errors::user_empty());
  ASSERT_FALSE(user_add("bob"));
  EXPECT_EQ(user_add("bob"), errors::user_exists());
  EXPECT_EQ(role_add(""), errors::role_empty());
  ASSERT_FALSE(role_add("r"));
  EXPECT_EQ(role_add("r"), errors::role_exists());
  EXPECT_EQ(grant_role("nobody", "r"), errors::user_not_found());
  EXPECT_EQ(grant_role("bob", "missing"), errors::role_not_found());
  ASSERT_FALSE(grant_role("bob", "r"));
  const uint64_t revision = store_->auth().revision();
  EXPECT_FALSE(grant_role("bob", "r"));  // granted again: nothing changes
  EXPECT_EQ(store_->auth().revision(), revision);
  synodpb::AuthRequest revoke;
  revoke.mutable_user_revoke_role()->set_name("bob");
  revoke.mutable_user_revoke_role()->set_role("other");
  EXPECT_EQ(change(revoke), errors::role_not_granted());
  synodpb::AuthRequest revoke_perm;
  revoke_perm.mutable_role_revoke_permission()->set_role("r");
  revoke_perm.mutable_role_revoke_permission()->set_key("k");
  EXPECT_EQ(change(revoke_perm), errors::permission_not_granted());
}

TEST_F(KV_SUITE(AuthStoreTest), EveryChangeBumpsTheAuthRevision) {
  const uint64_t start = store_->auth().revision();
  EXPECT_EQ(start, 1u);
  ASSERT_FALSE(user_add("bob"));
  ASSERT_FALSE(role_add("r"));
  ASSERT_FALSE(grant("r", Permission::READ, "k"));
  EXPECT_EQ(store_->auth().revision(), start + 3);
}

TEST_F(KV_SUITE(AuthStoreTest), WithAuthDisabledNothingIsChecked) {
  EXPECT_FALSE(put_as("", "anything"));
  EXPECT_FALSE(check("", "k", "", Access::kWrite));
}

TEST_F(KV_SUITE(AuthStoreTest), APutWithoutAUserIsRefusedAndChangesNothing) {
  set_up_users();
  const int64_t revision = store_->revision();
  EXPECT_EQ(put_as("", "app/x"), errors::user_empty());
  EXPECT_EQ(store_->revision(), revision);
  EXPECT_FALSE(get("app/x"));
}

// A member's own write (the oracle's limit, the shard map) is not a caller's: it is applied
// under authentication without a user; the same write from nobody is refused.
TEST_F(KV_SUITE(AuthStoreTest), AnInternalWriteNeedsNoCaller) {
  set_up_users();
  synodpb::Request req;
  req.mutable_put()->set_key("/synod/oracle/limit");
  req.mutable_put()->set_value("1000000");
  ApplyResult refused = apply(req);
  ASSERT_NE(refused.error(), nullptr);
  EXPECT_EQ(*refused.error(), errors::user_empty());
  req.set_internal(true);
  EXPECT_EQ(store_->authorize(req), std::nullopt);
  EXPECT_TRUE(apply(req).ok());
  EXPECT_TRUE(get("/synod/oracle/limit"));
}

TEST_F(KV_SUITE(AuthStoreTest), AUserWritesOnlyWhereARoleLetsIt) {
  set_up_users();
  EXPECT_FALSE(put_as("alice", "app/x"));
  EXPECT_EQ(put_as("alice", "config"), errors::permission_denied());  // read only
  EXPECT_EQ(put_as("alice", "other"), errors::permission_denied());
  EXPECT_EQ(put_as("alice", "app0"), errors::permission_denied());  // just past the range
  EXPECT_FALSE(get("other"));
  EXPECT_FALSE(put_as("root", "other"));  // root may do anything
}

TEST_F(KV_SUITE(AuthStoreTest), ARangeIsAllowedOnlyIfThePermissionsCoverAllOfIt) {
  set_up_users();
  EXPECT_FALSE(check("alice", "app/", "app0", Access::kRead));
  EXPECT_FALSE(check("alice", "app/a", "app/b", Access::kRead));
  EXPECT_EQ(check("alice", "app/", "b", Access::kRead), errors::permission_denied());
  EXPECT_EQ(check("alice", "app/", std::string(1, '\0'), Access::kRead),
            errors::permission_denied());  // from app/ to the end
  EXPECT_FALSE(check("alice", "config", "", Access::kRead));
  EXPECT_EQ(check("alice", "config", "", Access::kWrite), errors::permission_denied());
  EXPECT_EQ(check("alice", "config", "configz", Access::kRead), errors::permission_denied());
}

TEST_F(KV_SUITE(AuthStoreTest), AdjacentGrantsFromSeveralRolesCoverTheirUnion) {
  set_up_users();
  ASSERT_FALSE(role_add("more"));
  ASSERT_FALSE(grant("more", Permission::READ, "app0", "b"));
  ASSERT_FALSE(grant_role("alice", "more"));
  EXPECT_FALSE(check("alice", "app/", "b", Access::kRead));
  EXPECT_EQ(check("alice", "app/", "b", Access::kWrite), errors::permission_denied());
  EXPECT_EQ(check("alice", "app/", "c", Access::kRead), errors::permission_denied());
}

TEST_F(KV_SUITE(AuthStoreTest), AFromKeyGrantCoversEveryKeyAfterIt) {
  set_up_users();
  ASSERT_FALSE(grant("app", Permission::READ, "m", std::string(1, '\0')));
  EXPECT_FALSE(check("alice", "m", std::string(1, '\0'), Access::kRead));
  EXPECT_FALSE(check("alice", "zzz", "", Access::kRead));
  EXPECT_EQ(check("alice", "l", std::string(1, '\0'), Access::kRead), errors::permission_denied());
}

TEST_F(KV_SUITE(AuthStoreTest), ARequestCheckedBeforeAnAuthChangeIsRefusedAfterIt) {
  set_up_users();
  synodpb::Request req;
  req.mutable_put()->set_key("app/x");
  stamp("alice", &req);  // checked at this auth revision
  synodpb::AuthRequest revoke;
  revoke.mutable_user_revoke_role()->set_name("alice");
  revoke.mutable_user_revoke_role()->set_role("app");
  ASSERT_FALSE(change(revoke));
  ApplyResult r = apply(req);
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(*r.error(), errors::auth_old_revision());
  EXPECT_EQ(put_as("alice", "app/x"), errors::permission_denied());
}

TEST_F(KV_SUITE(AuthStoreTest), ATxnNeedsReadOnItsComparesAndRangesAndWriteOnItsPuts) {
  set_up_users();
  auto txn_as = [&](std::function<void(etcdserverpb::TxnRequest*)> fill) {
    synodpb::Request req;
    fill(req.mutable_txn());
    stamp("alice", &req);
    ApplyResult r = apply(req);
    return r.error() ? std::optional<Error>(*r.error()) : std::nullopt;
  };
  EXPECT_FALSE(txn_as([](etcdserverpb::TxnRequest* t) {
    t->add_compare()->set_key("config");
    t->add_success()->mutable_request_put()->set_key("app/y");
  }));
  EXPECT_EQ(txn_as([](etcdserverpb::TxnRequest* t) {
              t->add_compare()->set_key("secret");
              t->add_success()->mutable_request_put()->set_key("app/y");
            }),
            errors::permission_denied());
  // A branch that will not run is checked too (etcd's checkTxnAuth).
  EXPECT_EQ(txn_as([](etcdserverpb::TxnRequest* t) {
              t->add_success()->mutable_request_put()->set_key("app/y");
              t->add_failure()->mutable_request_delete_range()->set_key("other");
            }),
            errors::permission_denied());
  // And a nested txn.
  EXPECT_EQ(
      txn_as([](etcdserverpb::TxnRequest* t) {
        t->add_success()->mutable_request_txn()->add_success()->mutable_request_range()->set_key(
            "secret");
      }),
      errors::permission_denied());
}

TEST_F(KV_SUITE(AuthStoreTest), ManagingUsersNeedsRootOnceEnabled) {
  set_up_users();
  synodpb::AuthRequest add;
  add.mutable_user_add()->set_name("mallory");
  EXPECT_EQ(change(add, "alice"), errors::permission_denied());
  EXPECT_EQ(change(add, ""), errors::user_empty());
  EXPECT_EQ(store_->auth().user("mallory"), nullptr);
  EXPECT_FALSE(change(add, "root"));
}

TEST_F(KV_SUITE(AuthStoreTest), RootCannotBeRemovedWhileEnabled) {
  set_up_users();
  synodpb::AuthRequest del;
  del.set_user_delete("root");
  EXPECT_EQ(change(del), errors::invalid_auth_management());
  synodpb::AuthRequest del_role;
  del_role.set_role_delete("root");
  EXPECT_EQ(change(del_role), errors::invalid_auth_management());
  synodpb::AuthRequest revoke;
  revoke.mutable_user_revoke_role()->set_name("root");
  revoke.mutable_user_revoke_role()->set_role("root");
  EXPECT_EQ(change(revoke), errors::invalid_auth_management());
}

TEST_F(KV_SUITE(AuthStoreTest), DeletingARoleTakesItFromItsUsers) {
  set_up_users();
  synodpb::AuthRequest del;
  del.set_role_delete("app");
  ASSERT_FALSE(change(del));
  EXPECT_TRUE(store_->auth().user("alice")->roles().empty());
  ASSERT_FALSE(role_add("app"));  // a new role of the same name grants alice nothing
  EXPECT_EQ(put_as("alice", "app/x"), errors::permission_denied());
}

TEST_F(KV_SUITE(AuthStoreTest), ALoginAppliesOnlyIfThePasswordWasCheckedAtTheCurrentRevision) {
  set_up_users();
  synodpb::AuthRequest login;
  login.mutable_login()->set_name("alice");
  login.mutable_login()->set_token("t.1");
  login.mutable_login()->set_checked_revision(store_->auth().revision());
  EXPECT_FALSE(change(login, ""));
  login.mutable_login()->set_checked_revision(store_->auth().revision() - 1);
  EXPECT_EQ(change(login, ""), errors::auth_old_revision());
  login.mutable_login()->set_name("nobody");
  EXPECT_EQ(change(login, ""), errors::auth_failed());
}

TEST_F(KV_SUITE(AuthStoreTest), RevokingALeaseNeedsWriteOnItsKeys) {
  set_up_users();
  synodpb::Request grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(60);
  ASSERT_TRUE(apply(grant).ok());
  synodpb::Request put;
  put.mutable_put()->set_key("other");
  put.mutable_put()->set_lease(7);
  stamp("root", &put);
  ASSERT_TRUE(apply(put).ok());
  synodpb::Request revoke;
  revoke.mutable_lease_revoke()->set_id(7);
  stamp("alice", &revoke);
  ApplyResult r = apply(revoke);
  ASSERT_NE(r.error(), nullptr);
  EXPECT_EQ(*r.error(), errors::permission_denied());
  EXPECT_TRUE(get("other"));
  // A lease expiry is the leader's decision and is not checked.
  synodpb::Request expiry;
  expiry.mutable_lease_revoke()->set_id(7);
  expiry.set_expiry_epoch(1);
  EXPECT_TRUE(apply(expiry).ok());
  EXPECT_FALSE(get("other"));
}

TEST_F(KV_SUITE(AuthStoreTest), TheAuthStoreSurvivesARestartAndAnImage) {
  set_up_users();
  const uint64_t revision = store_->auth().revision();
  store_.reset();
  tb_->reopen();
  store_ = std::make_unique<Store>(tb_->get());
  EXPECT_TRUE(store_->auth().enabled());
  EXPECT_EQ(store_->auth().revision(), revision);
  EXPECT_EQ(store_->auth().user_names(), (std::vector<std::string>{"alice", "root"}));
  EXPECT_EQ(put_as("alice", "other"), errors::permission_denied());

  const std::string image = store_->image();
  auto other = testing::make_test_backend();
  Store copy(other->get());
  ASSERT_TRUE(copy.restore(image));
  EXPECT_TRUE(copy.auth().enabled());
  EXPECT_EQ(copy.auth().role_names(), (std::vector<std::string>{"app"}));
  EXPECT_EQ(copy.auth().user("alice")->password(), "hash-of-alice");
}

}  // namespace
}  // namespace synod::kv
