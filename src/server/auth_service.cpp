// etcdserverpb.Auth with etcd 3.4's behaviour (etcdserver/v3_server.go, auth/store.go): changes
// are log entries that every member applies (the root check happens there, against the
// replicated store); reads of users and roles are served after a ReadIndex barrier.
#include <spdlog/spdlog.h>

#include "server/services.h"

namespace synod::server {

namespace {

// A login retried this often when the auth store keeps changing under it gives up with the
// store's answer (revision of auth store is old); etcd retries without a bound.
constexpr int kLoginAttempts = 5;
// etcd's words when a member given only the JWT public key is asked to log someone in.
constexpr const char* kVerifyOnly = "auth: token signing attempted with verify-only key";
constexpr const char* kSignFailed = "auth: failed to sign the token";

// The answer when the member cannot hash a password (libsodium out of memory): nothing proposed.
const grpc::Status kHashFailed(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "synod: cannot hash the password now; try again");

}  // namespace

template <typename Response>
void AuthService::change(grpc::CallbackServerContext* c, grpc::ServerUnaryReactor* reactor,
                         Response* resp, synodpb::AuthRequest op) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return reactor->Finish(to_status(caller.error()));
  synodpb::Request request;
  *request.mutable_auth() = std::move(op);
  stamp(*caller, &request);
  ctx_.node->propose(std::move(request), [this, reactor, resp](const kv::ApplyResult& result) {
    if (const Error* e = result.error()) return reactor->Finish(to_status(*e));
    if (result.response<kv::AuthApplied>() == nullptr) {
      return reactor->Finish(
          grpc::Status(grpc::StatusCode::INTERNAL, "etcdserver: unexpected result"));
    }
    ctx_.fill_header(resp->mutable_header(), ctx_.revision());
    reactor->Finish(grpc::Status::OK);
  });
}

void AuthService::read(
    grpc::CallbackServerContext* c, grpc::ServerUnaryReactor* reactor,
    std::function<std::optional<Error>(const kv::AuthStore&, const kv::Caller&)> read,
    etcdserverpb::ResponseHeader* header) {
  auto caller = caller_of(ctx_, *c);
  if (!caller) return reactor->Finish(to_status(caller.error()));
  ctx_.node->read_barrier([this, reactor, read = std::move(read), header,
                           caller = std::move(*caller)](std::optional<Error> e) {
    if (!e) {
      e = ctx_.node->read_store([&](const kv::Store& s) { return read(s.auth(), caller); });
    }
    if (e) return reactor->Finish(to_status(*e));
    ctx_.fill_header(header, ctx_.revision());
    reactor->Finish(grpc::Status::OK);
  });
}

grpc::ServerUnaryReactor* AuthService::AuthEnable(grpc::CallbackServerContext* c,
                                                  const etcdserverpb::AuthEnableRequest*,
                                                  etcdserverpb::AuthEnableResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  op.mutable_enable();
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::AuthDisable(grpc::CallbackServerContext* c,
                                                   const etcdserverpb::AuthDisableRequest*,
                                                   etcdserverpb::AuthDisableResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  op.mutable_disable();
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::Authenticate(grpc::CallbackServerContext* c,
                                                    const etcdserverpb::AuthenticateRequest* req,
                                                    etcdserverpb::AuthenticateResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  // Linearizable, as etcd's: a user added just before is found.
  ctx_.node->read_barrier([this, reactor, req, resp](std::optional<Error> e) {
    if (e) return reactor->Finish(to_status(*e));
    ctx_.executor->post([this, reactor, req, resp] { login(reactor, req, resp, 1); });
  });
  return reactor;
}

void AuthService::login(grpc::ServerUnaryReactor* reactor,
                        const etcdserverpb::AuthenticateRequest* req,
                        etcdserverpb::AuthenticateResponse* resp, int attempt) {
  std::string hash;
  uint64_t revision = 0;
  std::optional<Error> refused =
      ctx_.node->read_store([&](const kv::Store& s) -> std::optional<Error> {
        const kv::AuthStore& auth = s.auth();
        if (!auth.enabled()) return kv::errors::auth_not_enabled();
        const authpb::User* user = auth.user(req->name());
        if (user == nullptr || user->options().no_password()) return kv::errors::auth_failed();
        hash = user->password();
        revision = auth.revision();
        return std::nullopt;
      });
  if (refused) return reactor->Finish(to_status(*refused));
  if (!password_matches(hash, req->password())) {
    spdlog::warn("auth: authentication failed for user {}", req->name());
    return reactor->Finish(to_status(kv::errors::auth_failed()));
  }
  std::string token;
  if (ctx_.jwt == nullptr) {
    token = Tokens::generate();
  } else if (std::optional<std::string> signed_token =
                 ctx_.jwt->sign(req->name(), revision, unix_now_s())) {
    token = std::move(*signed_token);
  } else {
    return reactor->Finish(
        to_status(Error{kv::kGrpcUnknown, ctx_.jwt->can_sign() ? kSignFailed : kVerifyOnly}));
  }
  synodpb::Request request;
  synodpb::Login* entry = request.mutable_auth()->mutable_login();
  entry->set_name(req->name());
  entry->set_token(token);
  entry->set_checked_revision(revision);
  ctx_.node->propose(std::move(request), [this, reactor, req, resp, token,
                                          attempt](const kv::ApplyResult& result) {
    if (const Error* e = result.error()) {
      if (*e == kv::errors::auth_old_revision() && attempt < kLoginAttempts) {
        ctx_.executor->post([=, this] { this->login(reactor, req, resp, attempt + 1); });
        return;
      }
      return reactor->Finish(to_status(*e));
    }
    resp->set_token(token);
    ctx_.fill_header(resp->mutable_header(), ctx_.revision());
    reactor->Finish(grpc::Status::OK);
  });
}

grpc::ServerUnaryReactor* AuthService::UserAdd(grpc::CallbackServerContext* c,
                                               const etcdserverpb::AuthUserAddRequest* req,
                                               etcdserverpb::AuthUserAddResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  if (req->name().empty()) {
    reactor->Finish(to_status(kv::errors::user_empty()));
    return reactor;
  }
  ctx_.executor->post([this, c, reactor, req, resp] {
    synodpb::AuthRequest op;
    synodpb::UserAdd* add = op.mutable_user_add();
    add->set_name(req->name());
    *add->mutable_options() = req->options();
    if (!req->options().no_password()) {
      std::optional<std::string> hash = hash_password(req->password());
      if (!hash) return reactor->Finish(kHashFailed);
      add->set_password_hash(std::move(*hash));
    }
    change(c, reactor, resp, std::move(op));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserChangePassword(
    grpc::CallbackServerContext* c, const etcdserverpb::AuthUserChangePasswordRequest* req,
    etcdserverpb::AuthUserChangePasswordResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  ctx_.executor->post([this, c, reactor, req, resp] {
    synodpb::AuthRequest op;
    op.mutable_user_change_password()->set_name(req->name());
    std::optional<std::string> hash = hash_password(req->password());
    if (!hash) return reactor->Finish(kHashFailed);
    op.mutable_user_change_password()->set_password_hash(std::move(*hash));
    change(c, reactor, resp, std::move(op));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserDelete(grpc::CallbackServerContext* c,
                                                  const etcdserverpb::AuthUserDeleteRequest* req,
                                                  etcdserverpb::AuthUserDeleteResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  op.set_user_delete(req->name());
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserGrantRole(
    grpc::CallbackServerContext* c, const etcdserverpb::AuthUserGrantRoleRequest* req,
    etcdserverpb::AuthUserGrantRoleResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  *op.mutable_user_grant_role() = *req;
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserRevokeRole(
    grpc::CallbackServerContext* c, const etcdserverpb::AuthUserRevokeRoleRequest* req,
    etcdserverpb::AuthUserRevokeRoleResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  *op.mutable_user_revoke_role() = *req;
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::RoleAdd(grpc::CallbackServerContext* c,
                                               const etcdserverpb::AuthRoleAddRequest* req,
                                               etcdserverpb::AuthRoleAddResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  op.set_role_add(req->name());
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::RoleDelete(grpc::CallbackServerContext* c,
                                                  const etcdserverpb::AuthRoleDeleteRequest* req,
                                                  etcdserverpb::AuthRoleDeleteResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  op.set_role_delete(req->role());
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::RoleGrantPermission(
    grpc::CallbackServerContext* c, const etcdserverpb::AuthRoleGrantPermissionRequest* req,
    etcdserverpb::AuthRoleGrantPermissionResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  *op.mutable_role_grant_permission() = *req;
  change(c, reactor, resp, std::move(op));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::RoleRevokePermission(
    grpc::CallbackServerContext* c, const etcdserverpb::AuthRoleRevokePermissionRequest* req,
    etcdserverpb::AuthRoleRevokePermissionResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  synodpb::AuthRequest op;
  *op.mutable_role_revoke_permission() = *req;
  change(c, reactor, resp, std::move(op));
  return reactor;
}

// A user may read itself, and a role it holds; everything else needs root (etcd's
// authApplierV3.UserGet and RoleGet).
grpc::ServerUnaryReactor* AuthService::UserGet(grpc::CallbackServerContext* c,
                                               const etcdserverpb::AuthUserGetRequest* req,
                                               etcdserverpb::AuthUserGetResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  read(
      c, reactor,
      [req, resp](const kv::AuthStore& auth, const kv::Caller& caller) -> std::optional<Error> {
        if (auto e = auth.check_admin(caller); e && caller.user != req->name()) return e;
        const authpb::User* user = auth.user(req->name());
        if (user == nullptr) return kv::errors::user_not_found();
        for (const std::string& role : user->roles()) resp->add_roles(role);
        return std::nullopt;
      },
      resp->mutable_header());
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::UserList(grpc::CallbackServerContext* c,
                                                const etcdserverpb::AuthUserListRequest*,
                                                etcdserverpb::AuthUserListResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  read(
      c, reactor,
      [resp](const kv::AuthStore& auth, const kv::Caller& caller) -> std::optional<Error> {
        if (auto e = auth.check_admin(caller)) return e;
        for (const std::string& name : auth.user_names()) resp->add_users(name);
        return std::nullopt;
      },
      resp->mutable_header());
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::RoleGet(grpc::CallbackServerContext* c,
                                               const etcdserverpb::AuthRoleGetRequest* req,
                                               etcdserverpb::AuthRoleGetResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  read(
      c, reactor,
      [req, resp](const kv::AuthStore& auth, const kv::Caller& caller) -> std::optional<Error> {
        if (auto e = auth.check_admin(caller); e && !auth.has_role(caller.user, req->role())) {
          return e;
        }
        const authpb::Role* role = auth.role(req->role());
        if (role == nullptr) return kv::errors::role_not_found();
        for (const authpb::Permission& p : role->keypermission()) *resp->add_perm() = p;
        return std::nullopt;
      },
      resp->mutable_header());
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::RoleList(grpc::CallbackServerContext* c,
                                                const etcdserverpb::AuthRoleListRequest*,
                                                etcdserverpb::AuthRoleListResponse* resp) {
  grpc::ServerUnaryReactor* reactor = c->DefaultReactor();
  read(
      c, reactor,
      [resp](const kv::AuthStore& auth, const kv::Caller& caller) -> std::optional<Error> {
        if (auto e = auth.check_admin(caller)) return e;
        for (const std::string& name : auth.role_names()) resp->add_roles(name);
        return std::nullopt;
      },
      resp->mutable_header());
  return reactor;
}

}  // namespace synod::server
