// Reading Synod's JSON-lines histories: pairing invocations with completions, the meaning of
// ok / fail / info, and clear errors that name the line.
#include <gtest/gtest.h>

#include <sstream>

#include "check/history_json.h"

namespace synod::check {
namespace {

std::optional<std::string> read(const std::string& text, std::vector<Operation>& ops) {
  std::istringstream in(text);
  return read_history_jsonl(in, ops);
}

TEST(HistoryJson, PairsEachInvocationWithItsProcessCompletion) {
  std::vector<Operation> ops;
  ASSERT_FALSE(read(R"({"process":1,"type":"invoke","f":"write","key":"x","value":"a","time":5}
{"process":2,"type":"invoke","f":"read","key":"x","time":6}

{"process":2,"type":"ok","f":"read","key":"x","value":null,"time":7}
{"process":1,"type":"ok","f":"write","key":"x","value":"a","time":9}
)",
                    ops));
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind, OpKind::kGet);
  EXPECT_EQ(ops[0].client, 2u);
  EXPECT_FALSE(ops[0].output);  // null: the key was absent
  EXPECT_EQ(ops[0].invoke_time, 6u);
  EXPECT_EQ(ops[0].complete_time, 7u);
  EXPECT_EQ(ops[1].kind, OpKind::kPut);
  EXPECT_EQ(ops[1].value, "a");
  EXPECT_EQ(ops[1].outcome, Outcome::kOk);
}

TEST(HistoryJson, CasOkSwappedCasFailNeverTookEffectAndOpenInvocationsAreIndeterminate) {
  std::vector<Operation> ops;
  ASSERT_FALSE(read(R"({"process":0,"type":"invoke","f":"cas","value":[1,2]}
{"process":0,"type":"ok","f":"cas","value":[1,2]}
{"process":0,"type":"invoke","f":"cas","value":[5,6]}
{"process":0,"type":"fail","f":"cas","value":[5,6]}
{"process":3,"type":"invoke","f":"write","value":7}
)",
                    ops));
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_TRUE(ops[0].cas_succeeded);
  EXPECT_EQ(ops[0].expected, "1");    // integers are read as their decimal text
  EXPECT_EQ(ops[0].invoke_time, 1u);  // no time: the line number
  EXPECT_EQ(ops[1].outcome, Outcome::kFail);
  EXPECT_EQ(ops[2].outcome, Outcome::kInfo);  // never completed
  EXPECT_EQ(ops[2].value, "7");
}

TEST(HistoryJson, MalformedLinesAreRefusedWithTheirNumber) {
  const std::pair<const char*, const char*> cases[] = {
      {"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\nnot json\n",
       "line 2: not a JSON value"},
      {"{\"type\":\"invoke\",\"f\":\"read\"}\n", "line 1: \"process\" must be an integer"},
      {"{\"process\":0,\"type\":\"begin\",\"f\":\"read\"}\n", "line 1: unknown type \"begin\""},
      {"{\"process\":0,\"type\":\"ok\",\"f\":\"read\"}\n", "never invoked"},
      {"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"invoke\","
       "\"f\":\"read\"}\n",
       "line 2: process 0 invokes while its previous operation is open"},
      {"{\"process\":0,\"type\":\"invoke\",\"f\":\"cas\",\"value\":\"x\"}\n",
       "must be [expected, new]"},
      {"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"time\":9}\n{\"process\":0,"
       "\"type\":\"ok\",\"f\":\"read\",\"time\":3}\n",
       "completes before its invocation"},
  };
  for (const auto& [text, want] : cases) {
    std::vector<Operation> ops;
    auto error = read(text, ops);
    ASSERT_TRUE(error) << text;
    EXPECT_NE(error->find(want), std::string::npos) << *error;
  }
}

TEST(HistoryImport, JepsenLogLinesBecomeOperationsAndOtherLinesAreSkipped) {
  std::istringstream in(
      "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n"
      "INFO  jepsen.core - something else\n"
      "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n"
      "INFO  jepsen.util - 4 \t:invoke :write \t38 \t:hint 0\n"
      "INFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n"
      "INFO  jepsen.util - 4 \t:info :write \t:timed-out \t:hint 0\n");
  std::vector<Operation> ops;
  ASSERT_FALSE(read_history(in, HistoryFormat::kJepsenLog, ops));
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind, OpKind::kCas);
  EXPECT_EQ(ops[0].expected, "3");
  EXPECT_EQ(ops[0].value, "0");
  EXPECT_EQ(ops[0].outcome, Outcome::kFail);
  EXPECT_EQ(ops[0].invoke_time, 1u);  // line numbers order the log
  EXPECT_EQ(ops[1].kind, OpKind::kPut);
  EXPECT_EQ(ops[1].value, "38");
  EXPECT_EQ(ops[1].outcome, Outcome::kInfo);
}

TEST(HistoryImport, EdnMapsBecomeOperations) {
  std::istringstream in(
      "{:type :invoke, :f :read, :value nil, :process 0, :time 10, :index 0}\n"
      "{:type :info, :f :start, :value nil, :process :nemesis, :time 11}\n"
      "{:type :ok, :f :read, :value 4, :process 0, :time 20, :index 1}\n");
  std::vector<Operation> ops;
  ASSERT_FALSE(read_history(in, HistoryFormat::kEdn, ops));
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].output, "4");
  EXPECT_EQ(ops[0].invoke_time, 10u);
  EXPECT_EQ(ops[0].complete_time, 20u);
  std::istringstream bad("{:type :invoke :f}\n");
  auto error = read_history(bad, HistoryFormat::kEdn, ops);
  ASSERT_TRUE(error);
  EXPECT_NE(error->find("line 1: bad value for :f"), std::string::npos) << *error;
}

TEST(HistoryImport, IndependentKeysComeFromTheValueTuple) {
  std::istringstream in(
      "INFO  jepsen.util - 2\t:invoke\t:cas\t[7 [3 4]]\n"
      "INFO  jepsen.util - 2\t:info\t:cas\t:timed-out\n"
      "INFO  jepsen.util - 3\t:invoke\t:read\t[7 nil]\n"
      "INFO  jepsen.util - 3\t:ok\t:read\t[7 4]\n");
  std::vector<Operation> ops;
  ASSERT_FALSE(read_history(in, HistoryFormat::kJepsenLog, ops, nullptr, ObjectModel::kRegister,
                            /*independent=*/true));
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].key, "7");
  EXPECT_EQ(ops[0].expected, "3");
  EXPECT_EQ(ops[0].outcome, Outcome::kInfo);  // completed without a tuple: its invocation's key
  EXPECT_EQ(ops[1].key, "7");
  EXPECT_EQ(ops[1].output, "4");
}

TEST(HistoryImport, EdnSetsReadAsArrays) {
  std::istringstream in(
      "{:type :invoke, :f :read, :value nil, :process 0}\n"
      "{:type :ok, :f :read, :value #{1 2}, :process 0}\n");
  std::vector<Operation> ops;
  ASSERT_FALSE(read_history(in, HistoryFormat::kEdn, ops, nullptr, ObjectModel::kSet));
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].elements, (std::vector<std::string>{"1", "2"}));
}

}  // namespace
}  // namespace synod::check
