// History importers: `synod check` reads histories recorded by Synod's clients or by other tools
// (Jepsen's log and history.edn). A malformed file must be refused with its line and reason.
//
// Input: a control byte, then the history text. Control: bits 0-1 the format (Synod JSON lines,
// Jepsen log, EDN), bits 2-4 the object model, bit 5 independent keys. A history that reads is
// validated; a register history (the model write_history_jsonl writes) is also written back in
// Synod's format, which must read again to as many operations.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "check/history_json.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace synod;
  using namespace synod::check;
  fuzz::ByteReader in(data, size);
  const uint8_t control = in.byte();
  static constexpr HistoryFormat kFormats[] = {HistoryFormat::kSynod, HistoryFormat::kJepsenLog,
                                               HistoryFormat::kEdn};
  static constexpr ObjectModel kModels[] = {ObjectModel::kRegister, ObjectModel::kMutex,
                                            ObjectModel::kSet, ObjectModel::kList,
                                            ObjectModel::kKv};
  const HistoryFormat format = kFormats[(control & 3) % 3];
  const ObjectModel model = kModels[((control >> 2) & 7) % 5];
  const bool independent = (control & 0x20) != 0;

  std::istringstream text{std::string(in.rest())};
  std::vector<Operation> history;
  HistoryStats stats;
  if (read_history(text, format, history, &stats, model, independent)) return 0;
  if (std::optional<std::string> why = validate(history)) {
    std::fprintf(stderr, "%s\n", why->c_str());
    fuzz::property_failed("an importer accepted a history that validate() refuses");
  }
  if (model != ObjectModel::kRegister) return 0;
  std::ostringstream written;
  write_history_jsonl(history, written);
  std::istringstream again(written.str());
  std::vector<Operation> reread;
  if (std::optional<std::string> why = read_history_jsonl(again, reread, nullptr, model)) {
    std::fprintf(stderr, "%s\n", why->c_str());
    fuzz::property_failed("a history written by write_history_jsonl does not read back");
  }
  if (reread.size() != history.size())
    fuzz::property_failed("a history read back with another number of operations");
  return 0;
}
