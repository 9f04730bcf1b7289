// `ordo bench` against a real broker, for a second each (BENCHMARKS.md: CI may run the load
// generator briefly to prove it still works; the figures themselves are never checked): push,
// fill then drain, and e2e report a RESULT line with every message accounted for, e2e's
// --latency-log holds a line per delivered message, and a log it cannot write is refused before
// any load is sent. `ordo bench host`, which needs no broker, reports its sleeps and CPU loop.
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace ordo::integration {
namespace {

struct BenchRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `ordo bench ARGS` (space-separated, none containing a space) and waits for it.
BenchRun Bench(const std::string& args) {
  std::vector<std::string> argv = {OrdoBinary(), "bench"};
  std::istringstream words(args);
  for (std::string w; words >> w;) argv.push_back(w);
  BenchRun run;
  int status = RunProgram(std::move(argv), &run.output);
  if (status >= 0 && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  return run;
}

// The key=value pairs of the output's RESULT line (empty when it has none).
std::map<std::string, std::string> ResultOf(const std::string& output) {
  std::map<std::string, std::string> fields;
  size_t at = output.rfind("RESULT ");
  if (at == std::string::npos) return fields;
  std::istringstream line(output.substr(at, output.find('\n', at) - at));
  std::string word;
  while (line >> word) {
    size_t eq = word.find('=');
    if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return fields;
}

class BenchSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(OrdoBinary().empty()) << "no ordo binary: set ORDO_BINARY";
    ASSERT_TRUE(broker_.Start());
    url_ = "http://127.0.0.1:" + std::to_string(broker_.port());
  }
  BrokerProcess broker_;
  std::string url_;
};

TEST_F(BenchSmokeTest, E2eDeliversEveryMessageAndLogsEachOnesLatency) {
  const std::string log = broker_.dir() + "/latency.log";
  BenchRun run = Bench("e2e --url " + url_ + " --queue " + UniqueName("bench-e2e") +
                       " --rate 200 --duration 1 --partitions 4 --producers 4 --consumers 2"
                       " --batch 10 --payload-bytes 100 --settle 5 --progress 0 --latency-log " +
                       log);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::map<std::string, std::string> result = ResultOf(run.output);
  EXPECT_EQ(result["mode"], "e2e") << run.output;
  EXPECT_EQ(result["msgs"], "200") << run.output;
  EXPECT_EQ(result["lost"], "0") << run.output;
  EXPECT_EQ(result["errors"], "0") << run.output;

  // A line per delivered message: its due time (ms since the start, within the 1 s schedule)
  // and its latency (µs).
  std::ifstream in(log);
  ASSERT_TRUE(in) << "no latency log at " << log;
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    std::istringstream fields(line);
    double due_ms = -1;
    long long latency_us = -1;
    std::string extra;
    ASSERT_TRUE(fields >> due_ms >> latency_us) << "line " << lines << ": " << line;
    EXPECT_FALSE(fields >> extra) << "line " << lines << ": " << line;
    EXPECT_GE(due_ms, 0) << line;
    EXPECT_LT(due_ms, 1000) << line;
    EXPECT_GE(latency_us, 0) << line;
  }
  EXPECT_EQ(lines, 200);
}

TEST_F(BenchSmokeTest, PushFillAndDrainReportEveryMessage) {
  BenchRun push = Bench("push --url " + url_ + " --queue " + UniqueName("bench-push") +
                        " --connections 2 --batch 1 --partitions 4 --duration 0.5 --progress 0");
  ASSERT_EQ(push.exit_code, 0) << push.output;
  std::map<std::string, std::string> pushed = ResultOf(push.output);
  EXPECT_EQ(pushed["mode"], "push") << push.output;
  EXPECT_EQ(pushed["errors"], "0") << push.output;
  EXPECT_GT(std::stoll(pushed["msgs"].empty() ? "0" : pushed["msgs"]), 0) << push.output;

  const std::string queue = UniqueName("bench-drain");
  BenchRun fill = Bench("fill --url " + url_ + " --queue " + queue +
                        " --messages 300 --connections 2 --batch 10 --partitions 4 --progress 0");
  ASSERT_EQ(fill.exit_code, 0) << fill.output;
  EXPECT_EQ(ResultOf(fill.output)["msgs"], "300") << fill.output;

  BenchRun drain = Bench("drain --url " + url_ + " --queue " + queue +
                         " --consumers 2 --batch 100 --expect 300 --progress 0");
  ASSERT_EQ(drain.exit_code, 0) << drain.output;
  std::map<std::string, std::string> drained = ResultOf(drain.output);
  EXPECT_EQ(drained["mode"], "drain") << drain.output;
  EXPECT_EQ(drained["msgs"], "300") << drain.output;
  EXPECT_EQ(drained["errors"], "0") << drain.output;
}

TEST_F(BenchSmokeTest, ALatencyLogItCannotWriteIsRefusedBeforeAnyLoad) {
  const std::string queue = UniqueName("bench-e2e-refused");
  BenchRun run = Bench("e2e --url " + url_ + " --queue " + queue +
                       " --rate 100 --duration 1 --progress 0"
                       " --latency-log /nonexistent-ordo-dir/latency.log");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("cannot write --latency-log /nonexistent-ordo-dir/latency.log"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("RESULT"), std::string::npos) << run.output;
}

int64_t Field(std::map<std::string, std::string>& fields, const std::string& key) {
  const std::string& v = fields[key];
  return v.empty() ? -1 : std::stoll(v);
}

TEST(BenchHostTest, ReportsHowLateItsSleepsWokeAndWhatItsLoopCost) {
  ASSERT_FALSE(OrdoBinary().empty()) << "no ordo binary: set ORDO_BINARY";
  BenchRun run = Bench("host --seconds 0.3 --sleep-us 2000 --loop-steps 3000000");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::map<std::string, std::string> result = ResultOf(run.output);
  EXPECT_EQ(result["mode"], "host") << run.output;
  // Each sleep lasts at least the 2 ms asked: at most 150 fit in 0.3 s.
  const int64_t wakes = Field(result, "wakes");
  EXPECT_GT(wakes, 0) << run.output;
  EXPECT_LE(wakes, 150) << run.output;
  const int64_t p50 = Field(result, "late_p50_us");
  EXPECT_GE(p50, 0) << run.output;
  EXPECT_LE(p50, Field(result, "late_p99_us")) << run.output;
  EXPECT_LE(Field(result, "late_p99_us"), Field(result, "late_max_us")) << run.output;
  EXPECT_LE(Field(result, "late_over_5ms"), wakes) << run.output;
  // The thread cannot get more CPU time than wall time (1 ms of clock granularity allowed).
  const double cpu_ms = std::stod(result["loop_cpu_ms"].empty() ? "-1" : result["loop_cpu_ms"]);
  const double wall_ms = std::stod(result["loop_wall_ms"].empty() ? "-1" : result["loop_wall_ms"]);
  EXPECT_GT(cpu_ms, 0) << run.output;
  EXPECT_LE(cpu_ms, wall_ms + 1) << run.output;
  EXPECT_FALSE(result["steal_pct"].empty()) << run.output;
}

TEST(BenchHostTest, RefusesASleepOfNothing) {
  ASSERT_FALSE(OrdoBinary().empty()) << "no ordo binary: set ORDO_BINARY";
  BenchRun run = Bench("host --sleep-us 0");
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("--sleep-us"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("RESULT"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace ordo::integration
