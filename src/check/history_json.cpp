#include "check/history_json.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>

namespace synod::check {

namespace {

using nlohmann::json;

// A value as the model sees it: strings as they are, integers as decimal text.
std::optional<std::string> value_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  return std::nullopt;
}

struct Open {
  Operation op;
  std::string f;
};

// The operation names each model knows (check/models.h).
struct FName {
  ObjectModel model;
  const char* f;
  OpKind kind;
};
constexpr FName kFNames[] = {
    {ObjectModel::kRegister, "read", OpKind::kGet},
    {ObjectModel::kRegister, "write", OpKind::kPut},
    {ObjectModel::kRegister, "cas", OpKind::kCas},
    {ObjectModel::kMutex, "acquire", OpKind::kAcquire},
    {ObjectModel::kMutex, "release", OpKind::kRelease},
    {ObjectModel::kMutex, "write", OpKind::kFencedPut},
    {ObjectModel::kMutex, "read", OpKind::kGet},
    {ObjectModel::kSet, "add", OpKind::kAdd},
    {ObjectModel::kSet, "read", OpKind::kReadAll},
    {ObjectModel::kList, "append", OpKind::kAppend},
    {ObjectModel::kList, "read", OpKind::kReadAll},
    {ObjectModel::kKv, "get", OpKind::kGet},
    {ObjectModel::kKv, "put", OpKind::kPut},
    {ObjectModel::kKv, "append", OpKind::kAppend},
};

class Reader {
 public:
  Reader(std::vector<Operation>& out, ObjectModel model, bool independent = false)
      : out_(out), model_(model), independent_(independent) {}

  // One event, as a JSON object in Synod's format (the importers translate to it).
  std::optional<std::string> event(json& e, uint64_t number) {
    if (!e.contains("process") || !e["process"].is_number_integer()) {
      return "\"process\" must be an integer";
    }
    const int64_t process = e["process"].get<int64_t>();
    if (process < 0 || process > UINT32_MAX) return "\"process\" out of range";
    if (!e.contains("type") || !e["type"].is_string()) return "\"type\" must be a string";
    const std::string type = e["type"].get<std::string>();
    if (!e.contains("f") || !e["f"].is_string()) return "\"f\" must be a string";
    const std::string f = e["f"].get<std::string>();
    if (!kind_of(f)) {
      return "unknown f \"" + f + "\" for the " + to_string(model_) +
             " model (known: " + known_fs() + ")";
    }
    json value = e.contains("value") ? e["value"] : json();
    std::optional<std::string> key;  // a completion without one completes its invocation's
    if (e.contains("key") && !e["key"].is_null()) {
      key = value_text(e["key"]);
      if (!key) return "\"key\" must be a string or an integer";
    } else if (independent_ && value.is_array() && value.size() == 2) {
      // Jepsen's independent keys: the value is [key, value].
      key = value_text(value[0]);
      if (!key) return "an independent key must be a string or an integer";
      json inner = value[1];
      value = std::move(inner);
    }
    uint64_t time = number;
    if (e.contains("time")) {
      if (!e["time"].is_number_integer() || e["time"].get<int64_t>() < 0) {
        return "\"time\" must be a non-negative integer";
      }
      time = e["time"].get<uint64_t>();
    }
    processes_.insert(process);
    if (type == "invoke") {
      keys_.insert(key.value_or(""));
      return invoke(static_cast<uint32_t>(process), f, key.value_or(""), value, time);
    }
    if (type == "ok" || type == "fail" || type == "info") {
      return complete(static_cast<uint32_t>(process), type, f, key, value, time);
    }
    return "unknown type \"" + type + "\" (known: invoke, ok, fail, info)";
  }

  // Invocations never completed are indeterminate.
  void finish() {
    for (auto& [process, open] : open_) emit(std::move(open.op), Outcome::kInfo, 0);
    open_.clear();
  }

  uint64_t processes() const { return processes_.size(); }
  uint64_t keys() const { return keys_.size(); }

 private:
  std::optional<std::string> invoke(uint32_t process, const std::string& f, const std::string& key,
                                    const json& value, uint64_t time) {
    if (open_.contains(process)) {
      return "process " + std::to_string(process) + " invokes while its previous operation is open";
    }
    // One operation at a time per process holds in time too, not only in line order: the
    // checkers order a process's operations by their times.
    if (auto last = completed_at_.find(process);
        last != completed_at_.end() && time < last->second) {
      return "process " + std::to_string(process) + " invokes at time " + std::to_string(time) +
             ", before its previous operation completed (" + std::to_string(last->second) + ")";
    }
    Open o;
    o.f = f;
    o.op.client = process;
    o.op.key = key;
    o.op.invoke_time = time;
    o.op.kind = *kind_of(f);
    if (o.op.kind == OpKind::kPut || o.op.kind == OpKind::kAdd || o.op.kind == OpKind::kAppend) {
      auto v = value_text(value);
      if (!v) return "a " + f + "'s \"value\" must be a string or an integer";
      o.op.value = *v;
    } else if (o.op.kind == OpKind::kFencedPut) {
      if (!value.is_array() || value.size() != 2 || !value[1].is_number_integer()) {
        return "a fenced write's \"value\" must be [value, token]";
      }
      auto v = value_text(value[0]);
      if (!v) return "a fenced write's value must be a string or an integer";
      o.op.value = *v;
      o.op.token = value[1].get<int64_t>();
    } else if (o.op.kind == OpKind::kCas) {
      if (!value.is_array() || value.size() != 2)
        return "a cas's \"value\" must be [expected, new]";
      auto expected = value_text(value[0]);
      auto next = value_text(value[1]);
      if (!expected || !next) return "a cas's values must be strings or integers";
      o.op.expected = *expected;
      o.op.value = *next;
    }
    open_.emplace(process, std::move(o));
    return std::nullopt;
  }

  std::optional<std::string> complete(uint32_t process, const std::string& type,
                                      const std::string& f, const std::optional<std::string>& key,
                                      const json& value, uint64_t time) {
    auto it = open_.find(process);
    if (it == open_.end()) {
      return "process " + std::to_string(process) + " completes an operation it never invoked";
    }
    Open o = std::move(it->second);
    open_.erase(it);
    if (o.f != f || o.op.key != key.value_or(o.op.key)) {
      return "process " + std::to_string(process) + " completes " + f + " " +
             key.value_or(o.op.key) + " but invoked " + o.f + " " + o.op.key;
    }
    if (time < o.op.invoke_time) return "completes before its invocation";
    Outcome outcome = Outcome::kOk;
    if (type == "fail") outcome = Outcome::kFail;
    if (type == "info") outcome = Outcome::kInfo;
    if (outcome == Outcome::kOk && o.op.kind == OpKind::kGet) {
      if (!value.is_null()) {
        auto v = value_text(value);
        if (!v) return "a read's \"value\" must be a string, an integer or null";
        o.op.output = *v;
      }
    }
    if (outcome == Outcome::kOk && o.op.kind == OpKind::kCas) o.op.cas_succeeded = true;
    if (outcome == Outcome::kOk && o.op.kind == OpKind::kAcquire) {
      if (!value.is_number_integer()) return "an acquire's \"value\" on ok must be its token";
      o.op.token = value.get<int64_t>();
    }
    if (outcome == Outcome::kOk && o.op.kind == OpKind::kReadAll) {
      if (!value.is_array()) return "a read's \"value\" must be an array of the elements";
      for (const json& x : value) {
        auto v = value_text(x);
        if (!v) return "elements must be strings or integers";
        o.op.elements.push_back(*v);
      }
    }
    completed_at_[process] = time;
    emit(std::move(o.op), outcome, time);
    return std::nullopt;
  }

  void emit(Operation op, Outcome outcome, uint64_t time) {
    op.outcome = outcome;
    op.complete_time = outcome == Outcome::kInfo ? 0 : time;
    op.id = out_.size();
    out_.push_back(std::move(op));
  }

  // What `f` means under the model, if anything.
  std::optional<OpKind> kind_of(const std::string& f) const {
    for (const FName& n : kFNames) {
      if (n.model == model_ && f == n.f) return n.kind;
    }
    return std::nullopt;
  }
  std::string known_fs() const {
    std::string out;
    for (const FName& n : kFNames) {
      if (n.model == model_) out += std::string(out.empty() ? "" : ", ") + n.f;
    }
    return out;
  }

  std::vector<Operation>& out_;
  const ObjectModel model_;
  const bool independent_;
  std::map<uint32_t, Open> open_;
  std::map<uint32_t, uint64_t> completed_at_;  // per process: when its last operation completed
  std::set<int64_t> processes_;
  std::set<std::string> keys_;
};

// EDN as Jepsen writes histories: one line of history.edn is a flat map of keywords to nil,
// booleans, integers, strings, keywords, or vectors and sets of those, e.g.
//   {:type :ok, :f :cas, :value [3 0], :process 2, :time 3311702, :index 17}
// Maps whose :process is not an integer (the nemesis) are skipped.
class EdnLine {
 public:
  explicit EdnLine(const std::string& text) : s_(text) {}

  // One value at the start of the text (what follows it is ignored); nullopt if there is none.
  std::optional<json> value() {
    skip();
    return element();
  }

  std::optional<json> parse(std::string& error) {
    skip();
    if (!eat('{')) return fail(error, "not an EDN map");
    json m = json::object();
    while (true) {
      skip();
      if (eat('}')) break;
      std::optional<json> key = scalar();
      if (!key || !key->is_string() || key_text_.empty())
        return fail(error, "a map key must be a keyword");
      const std::string name = key_text_;
      skip();
      std::optional<json> value = element();
      if (!value) return fail(error, "bad value for :" + name);
      m[name] = *value;
    }
    return m;
  }

 private:
  std::optional<json> fail(std::string& error, const std::string& what) {
    error = what + " at column " + std::to_string(pos_ + 1);
    return std::nullopt;
  }
  void skip() {
    while (pos_ < s_.size() &&
           (std::isspace(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == ','))
      ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // A scalar, or a vector ([...]) or set (#{...}) of elements, as a JSON array.
  std::optional<json> element() {
    char close = ']';
    if (!eat('[')) {
      if (pos_ + 1 >= s_.size() || s_[pos_] != '#' || s_[pos_ + 1] != '{') return scalar();
      pos_ += 2;
      close = '}';
    }
    json v = json::array();
    while (true) {
      skip();
      if (eat(close)) return v;
      std::optional<json> x = element();
      if (!x) return std::nullopt;
      v.push_back(*x);
    }
  }
  // A keyword (as its name, and key_text_ set), nil, true/false, an integer or a string.
  std::optional<json> scalar() {
    key_text_.clear();
    if (pos_ >= s_.size()) return std::nullopt;
    if (s_[pos_] == '"') {
      std::string out;
      for (++pos_; pos_ < s_.size() && s_[pos_] != '"'; ++pos_) {
        if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
        out.push_back(s_[pos_]);
      }
      if (!eat('"')) return std::nullopt;
      return json(out);
    }
    const size_t start = pos_;
    while (pos_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[pos_])) &&
           std::string_view(",{}[]\"").find(s_[pos_]) == std::string_view::npos) {
      ++pos_;
    }
    const std::string token = s_.substr(start, pos_ - start);
    if (token.empty()) return std::nullopt;
    if (token[0] == ':') {
      key_text_ = token.substr(1);
      return json(key_text_);
    }
    if (token == "nil") return json(nullptr);
    if (token == "true" || token == "false") return json(token == "true");
    char* end = nullptr;
    const long long n = std::strtoll(token.c_str(), &end, 10);
    if (*end != '\0') return std::nullopt;
    return json(n);
  }

  const std::string& s_;
  size_t pos_ = 0;
  std::string key_text_;
};

// Jepsen's text log (jepsen.util), as in Porcupine's test_data/jepsen and test_data/etcd:
//   INFO  jepsen.util - 3\t:ok\t:cas\t[3 0]
// process, :type, :f, then the value in EDN: nil, an integer, [a b], a keyword (":timed-out").
// Lines of anything else (another logger, the nemesis) are skipped: nullopt, not an error.
std::optional<json> parse_jepsen_log_line(const std::string& text, std::string& error) {
  const size_t marker = text.find("jepsen.util - ");
  if (marker == std::string::npos) return std::nullopt;
  std::istringstream in(text.substr(marker + 14));
  int64_t process = 0;
  std::string type, f;
  if (!(in >> process) || !(in >> type) || !(in >> f)) return std::nullopt;
  if (type.size() < 2 || type[0] != ':' || f.size() < 2 || f[0] != ':') return std::nullopt;
  json e;
  e["process"] = process;
  e["type"] = type.substr(1);
  e["f"] = f.substr(1);
  std::string rest;
  std::getline(in, rest);
  const std::optional<json> value = EdnLine(rest).value();  // trailing fields (:hint) ignored
  if (!value) {
    error = "the value is not EDN";
    return std::nullopt;
  }
  e["value"] = *value;
  return e;
}

}  // namespace

std::optional<HistoryFormat> parse_history_format(const std::string& name) {
  if (name == "synod") return HistoryFormat::kSynod;
  if (name == "jepsen-log") return HistoryFormat::kJepsenLog;
  if (name == "edn") return HistoryFormat::kEdn;
  return std::nullopt;
}

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF). JSON text is; Jepsen's files should be, but nothing made them so, and an operation
// read from them must be writable as JSON again.
bool is_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
    const uint8_t b = byte(i);
    size_t n = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // cut off
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (size_t k = 2; k <= n; ++k)
      if ((byte(i + k) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

// One line as an event in Synod's format, or nullopt for a line an importer skips (another
// logger, the nemesis); `error` is set for a malformed line.
std::optional<json> parse_line(HistoryFormat format, const std::string& text, std::string& error) {
  if (format == HistoryFormat::kSynod) {
    json e = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (e.is_discarded()) error = "not a JSON value";
    if (!e.is_discarded() && !e.is_object()) error = "not a JSON object";
    if (!error.empty()) return std::nullopt;
    return e;
  }
  std::optional<json> e = format == HistoryFormat::kJepsenLog ? parse_jepsen_log_line(text, error)
                                                              : EdnLine(text).parse(error);
  if (!e || !(*e)["process"].is_number_integer()) return std::nullopt;  // not a client's
  if (!is_utf8(text)) {
    error = "not UTF-8 text";
    return std::nullopt;
  }
  return e;
}

std::optional<std::string> read_history(std::istream& in, HistoryFormat format,
                                        std::vector<Operation>& out, HistoryStats* stats,
                                        ObjectModel model, bool independent) {
  Reader reader(out, model, independent);
  std::string text;
  uint64_t number = 0;
  uint64_t events = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string error;
    std::optional<json> e = parse_line(format, text, error);
    if (!error.empty()) return "line " + std::to_string(number) + ": " + error;
    if (!e) continue;
    ++events;
    // Without "time" (the Jepsen log) the line number orders the events.
    if (auto problem = reader.event(*e, number)) {
      return "line " + std::to_string(number) + ": " + *problem;
    }
  }
  reader.finish();
  if (stats != nullptr) *stats = {events, reader.processes(), reader.keys()};
  return std::nullopt;
}

std::optional<std::string> read_history_jsonl(std::istream& in, std::vector<Operation>& out,
                                              HistoryStats* stats, ObjectModel model) {
  return read_history(in, HistoryFormat::kSynod, out, stats, model);
}

void write_history_jsonl(const std::vector<Operation>& history, std::ostream& out) {
  struct Event {
    uint64_t time;
    int order;  // completions (0) before invocations (1) at one instant
    const Operation* op;
    bool invoke;
  };
  std::vector<Event> events;
  events.reserve(2 * history.size());
  for (const Operation& op : history) {
    events.push_back({op.invoke_time, 1, &op, true});
    // An indeterminate operation's "info" goes where its client gave up on it, if known.
    const uint64_t completed = std::max(op.invoke_time, op.complete_time);
    // A completion at its own invocation's instant (an "info" whose time is not known) follows
    // that invocation: the stable sort keeps it right after it, and before the next invocation
    // of its process, which completed later and so comes later in the history.
    events.push_back({completed, completed == op.invoke_time ? 1 : 0, &op, false});
  }
  std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return a.time != b.time ? a.time < b.time : a.order < b.order;
  });
  for (const Event& e : events) {
    const Operation& op = *e.op;
    json line;
    line["process"] = op.client;
    const bool invoke = e.invoke;
    line["type"] = invoke                                         ? "invoke"
                   : op.outcome == Outcome::kInfo                 ? "info"
                   : op.outcome == Outcome::kFail                 ? "fail"
                   : op.kind == OpKind::kCas && !op.cas_succeeded ? "fail"
                                                                  : "ok";
    line["f"] = op.kind == OpKind::kGet ? "read" : op.kind == OpKind::kPut ? "write" : "cas";
    line["key"] = op.key;
    if (op.kind == OpKind::kPut) line["value"] = op.value;
    if (op.kind == OpKind::kCas) line["value"] = json::array({op.expected, op.value});
    if (op.kind == OpKind::kGet) {
      line["value"] = (!invoke && op.output) ? json(*op.output) : json(nullptr);
    }
    line["time"] = e.time;
    out << line.dump() << "\n";
  }
}

}  // namespace synod::check
