#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/serve.h"
#include "json/writer.h"

namespace ordo::cli {

namespace {

// %j: the log message as a JSON string, escaped, for the JSON log format.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    json::AppendEscaped(escaped, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

bool SetupLogging(const std::string& level, const std::string& format, std::string* error) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    *error = "--log-level must be one of trace, debug, info, warn, error, critical, off";
    return false;
  }
  auto logger = spdlog::stderr_color_mt("ordo");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":%j})");
    spdlog::set_formatter(std::move(formatter));
  } else if (format == "text") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  } else {
    *error = "--log-format must be text or json";
    return false;
  }
  return true;
}

}  // namespace ordo::cli
