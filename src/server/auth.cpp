#include "server/auth.h"

#include <sodium.h>

#include <atomic>

#include "server/context.h"

namespace synod::server {

std::optional<std::string> Tokens::user_of(std::string_view token) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mu_);
  auto it = tokens_.find(std::string(token));
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires <= now) {
    tokens_.erase(it);
    return std::nullopt;
  }
  it->second.expires = now + ttl_;
  return it->second.user;
}

void Tokens::on_applied(const synodpb::AuthRequest& req) {
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(mu_);
  auto forget_user = [&](const std::string& user) {
    std::erase_if(tokens_, [&](const auto& entry) { return entry.second.user == user; });
  };
  switch (req.op_case()) {
    case synodpb::AuthRequest::kLogin:
      tokens_[req.login().token()] = Entry{req.login().name(), now + ttl_};
      // Expired tokens go when the table has doubled since the last sweep: bounded memory at
      // a cost spread over logins.
      if (tokens_.size() > 2 * swept_size_ + 64) sweep(now);
      break;
    case synodpb::AuthRequest::kUserDelete:
      forget_user(req.user_delete());
      break;
    case synodpb::AuthRequest::kUserChangePassword:
      forget_user(req.user_change_password().name());
      break;
    case synodpb::AuthRequest::kDisable:
      tokens_.clear();
      break;
    default:
      break;
  }
}

void Tokens::sweep(Clock::time_point now) {
  std::erase_if(tokens_, [&](const auto& entry) { return entry.second.expires <= now; });
  swept_size_ = tokens_.size();
}

size_t Tokens::size() const {
  std::lock_guard lock(mu_);
  return tokens_.size();
}

std::string Tokens::generate() {
  static constexpr std::string_view kLetters =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  static std::atomic<uint64_t> counter{0};
  std::string token;
  for (int i = 0; i < 16; ++i) {
    token += kLetters[randombytes_uniform(static_cast<uint32_t>(kLetters.size()))];
  }
  return token + "." + std::to_string(counter.fetch_add(1) + 1);
}

int64_t unix_now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

kv::Expected<kv::Caller, kv::Error> caller_of(const ServerContext& ctx,
                                              const grpc::ServerContextBase& call) {
  if (!ctx.node->auth_enabled()) return kv::Caller{};
  const auto& metadata = call.client_metadata();
  auto it = metadata.find("token");
  if (it == metadata.end()) {
    // With --client-cert-auth, a verified client certificate's common name is the user when no
    // token is given (etcd's AuthInfoFromTLS).
    std::shared_ptr<const grpc::AuthContext> auth = call.auth_context();
    if (auth && auth->IsPeerAuthenticated()) {
      std::vector<grpc::string_ref> names = auth->FindPropertyValues("x509_common_name");
      if (!names.empty() && names.front().size() > 0) {
        return kv::Caller{std::string(names.front().data(), names.front().size()),
                          ctx.node->auth_revision()};
      }
    }
    return kv::Caller{};
  }
  const std::string_view token(it->second.data(), it->second.size());
  if (ctx.jwt != nullptr) {
    // A signed token carries the auth revision it was made at: a request made with it after
    // the permissions changed is refused at apply (auth: revision in header is old), and the
    // client logs in again.
    std::optional<JwtClaims> claims = ctx.jwt->verify(token, unix_now_s());
    if (!claims) return kv::Unexpected{kv::errors::invalid_auth_token()};
    return kv::Caller{std::move(claims->user), claims->revision, true};
  }
  std::optional<std::string> user = ctx.tokens->user_of(token);
  if (!user) return kv::Unexpected{kv::errors::invalid_auth_token()};
  return kv::Caller{std::move(*user), ctx.node->auth_revision()};
}

std::optional<kv::Error> check_admin(const ServerContext& ctx, const grpc::ServerContextBase& call,
                                     AdminErrors form) {
  auto caller = caller_of(ctx, call);
  std::optional<kv::Error> error =
      caller
          ? ctx.node->read_store([&](const kv::Store& s) { return s.auth().check_admin(*caller); })
          : std::optional<kv::Error>(caller.error());
  if (!error || form == AdminErrors::kEtcdserver) return error;
  // The auth store's texts: "auth: " where the API says "etcdserver: ", and one wording of its own.
  std::string text = error->message;
  if (*error == kv::errors::user_not_found()) text = "etcdserver: user not found";
  constexpr std::string_view kPrefix = "etcdserver: ";
  if (text.starts_with(kPrefix)) text = "auth: " + text.substr(kPrefix.size());
  return kv::Error{kv::kGrpcUnknown, text};
}

std::string grpc_error_text(const kv::Error& error) {
  const char* name = kv::grpc_code_name(error.grpc_code);
  const std::string code = name != nullptr ? name : "Code(" + std::to_string(error.grpc_code) + ")";
  return "rpc error: code = " + code + " desc = " + error.message;
}

std::optional<std::string> hash_password(std::string_view password) {
  if (sodium_init() < 0) return std::nullopt;
  char hash[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(hash, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return std::nullopt;
  }
  return std::string(hash);
}

bool password_matches(std::string_view hash, std::string_view password) {
  if (sodium_init() < 0) return false;
  // crypto_pwhash_str_verify wants a NUL-terminated string of at most STRBYTES.
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  const std::string terminated(hash);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

}  // namespace synod::server
