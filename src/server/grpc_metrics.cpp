#include "server/grpc_metrics.h"

#include <google/protobuf/descriptor.h>

#include "kv/errors.h"

namespace synod::server {

namespace {

using grpc::experimental::InterceptionHookPoints;

class Counting final : public grpc::experimental::Interceptor {
 public:
  explicit Counting(GrpcMetrics::Method* m) : m_(m) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* b) override {
    if (b->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      m_->received.add();
    }
    if (b->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) m_->sent.add();
    if (b->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const auto code = static_cast<size_t>(b->GetSendStatus().error_code());
      if (code < m_->handled.size()) m_->handled[code].add();
    }
    b->Proceed();
  }

 private:
  GrpcMetrics::Method* m_;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(const GrpcMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    GrpcMetrics::Method* m = metrics_->find(info->method());
    if (m == nullptr) return nullptr;
    m->started.add();
    return new Counting(m);
  }

 private:
  const GrpcMetrics* metrics_;
};

}  // namespace

GrpcMetrics::GrpcMetrics(const std::vector<std::string>& services) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* s = pool->FindServiceByName(name);
    if (s == nullptr) continue;
    for (int i = 0; i < s->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* md = s->method(i);
      auto m = std::make_unique<Method>();
      m->service = name;
      m->name = md->name();
      m->type = md->client_streaming() ? (md->server_streaming() ? "bidi_stream" : "client_stream")
                                       : (md->server_streaming() ? "server_stream" : "unary");
      methods_.emplace("/" + name + "/" + md->name(), std::move(m));
    }
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
GrpcMetrics::interceptor_factory() {
  return std::make_unique<Factory>(this);
}

GrpcMetrics::Method* GrpcMetrics::find(const char* path) const {
  if (path == nullptr) return nullptr;
  auto it = methods_.find(std::string_view(path));
  return it == methods_.end() ? nullptr : it->second.get();
}

std::string GrpcMetrics::unfinished() const {
  std::string out;
  for (const auto& [path, m] : methods_) {
    uint64_t handled = 0;
    for (const metrics::Counter& c : m->handled) handled += c.value();
    const uint64_t started = m->started.value();
    if (started <= handled) continue;
    if (!out.empty()) out += ", ";
    out += m->service + "/" + m->name + " x" + std::to_string(started - handled);
  }
  return out;
}

void GrpcMetrics::render(metrics::Exposition& e) const {
  auto labels = [](const Method& m) {
    return metrics::Labels{
        {"grpc_method", m.name}, {"grpc_service", m.service}, {"grpc_type", m.type}};
  };
  e.family("grpc_server_handled_total",
           "Total number of RPCs completed on the server, regardless of success or failure.",
           "counter");
  for (const auto& [path, m] : methods_) {
    for (size_t code = 0; code < m->handled.size(); ++code) {
      metrics::Labels l = labels(*m);
      l.insert(l.begin(), {"grpc_code", kv::grpc_code_name(static_cast<int>(code))});
      e.sample("grpc_server_handled_total", l, static_cast<double>(m->handled[code].value()));
    }
  }
  e.family("grpc_server_msg_received_total",
           "Total number of RPC stream messages received on the server.", "counter");
  for (const auto& [path, m] : methods_) {
    e.sample("grpc_server_msg_received_total", labels(*m),
             static_cast<double>(m->received.value()));
  }
  e.family("grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.",
           "counter");
  for (const auto& [path, m] : methods_) {
    e.sample("grpc_server_msg_sent_total", labels(*m), static_cast<double>(m->sent.value()));
  }
  e.family("grpc_server_started_total", "Total number of RPCs started on the server.", "counter");
  for (const auto& [path, m] : methods_) {
    e.sample("grpc_server_started_total", labels(*m), static_cast<double>(m->started.value()));
  }
}

}  // namespace synod::server
