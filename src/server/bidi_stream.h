// StreamWriter and BidiStream: server-side gRPC streams on the callback API, for the services
// whose answers come from other threads (Watch: the raft thread's watch hub; LeaseKeepAlive:
// the raft thread's lessor; Election.Observe: internal watches).
//
// StreamWriter<Base, Response> (Base: grpc::ServerWriteReactor<Response> or a bidi reactor):
// send() may be called from any thread; responses are written in the order sent, one write in
// flight (gRPC's rule). A client that reads slower than responses arrive is ended with UNAVAILABLE
// once kMaxQueuedBytes are queued (clients resume: a watch from its last revision + 1). When the
// client closes its side the stream ends, as etcd's do, once the requests marked with hold()
// are answered. gRPC is never called with the
// stream's lock held, so a reaction gRPC runs can never wait for it.
//
// Lifetime: owned by a shared_ptr; start() keeps a reference until OnDone, and a thread that
// holds another reference may still call send() (it is dropped once the stream is finishing).
#pragma once

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace synod::server {

template <typename Base, typename Response>
class StreamWriter : public Base {
 public:
  static constexpr size_t kMaxQueuedBytes = 64u << 20;

  // Keeps the stream alive until OnDone.
  void hold_self(std::shared_ptr<StreamWriter> self) {
    std::lock_guard lock(mu_);
    self_ = std::move(self);
  }

  // `answers` says how many requests taken with hold() these responses answer.
  void send(std::vector<Response>&& responses, int answers = 0) {
    Response* first = nullptr;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      held_ -= std::min(held_, answers);
      if (finishing_) return;
      for (Response& r : responses) {
        queued_bytes_ += r.ByteSizeLong();
        queue_.push_back(std::move(r));
      }
      if (queued_bytes_ > kMaxQueuedBytes) {
        spdlog::warn("{}: a client fell behind ({} bytes queued); ending its stream", name(),
                     queued_bytes_);
        // The write in flight (if any) keeps the front; the rest is dropped.
        while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
        finish = finish_locked(grpc::Status(
            grpc::StatusCode::UNAVAILABLE,
            "synod: stream fell behind; reconnect (a watch resumes from its last revision + 1)"));
      } else {
        if (!writing_ && !queue_.empty()) {
          writing_ = true;
          first = &queue_.front();
        }
        // The client closed its side and every held request is answered: end after the
        // writes (finish_locked waits for the one in flight).
        if (half_closed_ && held_ == 0) finish = finish_locked(grpc::Status::OK);
      }
    }
    if (finish) this->Finish(*finish);
    if (first != nullptr) this->StartWrite(first);
  }

  void end(const grpc::Status& status) {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      finish = finish_locked(status);
    }
    if (finish) this->Finish(*finish);
  }

 protected:
  // A reference for callbacks that answer later (null once the stream is done).
  std::shared_ptr<StreamWriter> self() {
    std::lock_guard lock(mu_);
    return self_;
  }
  // Marks a request as owed an answer: if the client closes its side meanwhile, the stream
  // stays open until send() delivered it (etcd answers a keep-alive before reading the next).
  void hold() {
    std::lock_guard lock(mu_);
    ++held_;
  }
  // The stream is over (on a gRPC thread); nothing is sent any more.
  virtual void on_done() {}
  virtual const char* name() const = 0;

  // The client will send nothing more: ends the stream now, or with the last held answer.
  void half_close() {
    {
      std::lock_guard lock(mu_);
      half_closed_ = true;
      if (held_ > 0) return;  // the last send() ends the stream
    }
    end(grpc::Status::OK);
  }
  bool finishing() {
    std::lock_guard lock(mu_);
    return finishing_;
  }

 private:
  void OnWriteDone(bool ok) override {
    Response* next = nullptr;
    std::optional<grpc::Status> finish;
    {
      std::lock_guard lock(mu_);
      queued_bytes_ -= std::min(queued_bytes_, queue_.front().ByteSizeLong());
      queue_.pop_front();
      if (!ok) queue_.clear();
      if (!ok || queue_.empty()) {
        writing_ = false;
        if (pending_finish_) {
          pending_finish_ = false;
          finish = final_status_;
        } else if (!ok) {
          finish = finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
        }
      } else {
        next = &queue_.front();
      }
    }
    if (finish) this->Finish(*finish);
    if (next != nullptr) this->StartWrite(next);
  }

  void OnDone() override {
    on_done();
    std::shared_ptr<StreamWriter> keep;
    {
      std::lock_guard lock(mu_);
      keep.swap(self_);
    }
  }

  // Marks the stream finishing. Returns the status to Finish with now, or nullopt if it was
  // finishing already or a write is in flight (OnWriteDone finishes it then).
  std::optional<grpc::Status> finish_locked(const grpc::Status& status) {
    if (finishing_) return std::nullopt;
    finishing_ = true;
    if (writing_) {
      pending_finish_ = true;
      final_status_ = status;
      return std::nullopt;
    }
    return status;
  }

  std::shared_ptr<StreamWriter> self_;  // held until OnDone
  std::mutex mu_;
  std::deque<Response> queue_;  // front: the write in flight
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  int held_ = 0;              // requests taken with hold() and not yet answered
  bool half_closed_ = false;  // the client will send nothing more
  bool finishing_ = false;
  bool pending_finish_ = false;
  grpc::Status final_status_;
};

// BidiStream: a StreamWriter that reads one request at a time and hands it to on_request().
template <typename Request, typename Response>
class BidiStream : public StreamWriter<grpc::ServerBidiReactor<Request, Response>, Response> {
 public:
  void start(std::shared_ptr<BidiStream> self) {
    this->hold_self(std::move(self));
    this->StartRead(&request_);
  }

 protected:
  // A request from the client (on a gRPC thread). The request may be moved from.
  virtual void on_request(Request& request) = 0;

 private:
  void OnReadDone(bool ok) override {
    if (!ok) {
      this->half_close();
      return;
    }
    on_request(request_);
    request_.Clear();
    if (this->finishing()) return;
    this->StartRead(&request_);
  }

  Request request_;
};

}  // namespace synod::server
