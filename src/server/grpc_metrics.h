// Client RPC counters with the names and labels of go-grpc-prometheus, which etcd exports:
// grpc_server_started_total, grpc_server_handled_total (by status code),
// grpc_server_msg_received_total and grpc_server_msg_sent_total, each by grpc_service,
// grpc_method and grpc_type. A gRPC server interceptor counts; the methods are known up front
// (from the services' descriptors), so counting takes no lock.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

#include "base/metrics.h"

namespace synod::server {

class GrpcMetrics {
 public:
  // `services`: full service names ("etcdserverpb.KV", ...) whose methods are counted.
  explicit GrpcMetrics(const std::vector<std::string>& services);

  // The interceptor factory to give grpc::ServerBuilder (it refers to this object, which must
  // outlive the server).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> interceptor_factory();

  void render(metrics::Exposition& e) const;
  // "Service/Method xN" for each method with calls started and not yet answered.
  std::string unfinished() const;

  struct Method {
    std::string service;
    std::string name;
    const char* type = "unary";
    metrics::Counter started;
    metrics::Counter received;
    metrics::Counter sent;
    std::array<metrics::Counter, 17> handled;  // by grpc::StatusCode
  };
  // The counters of "/package.Service/Method", or nullptr for a method not counted.
  Method* find(const char* path) const;

 private:
  std::map<std::string, std::unique_ptr<Method>, std::less<>> methods_;
};

}  // namespace synod::server
