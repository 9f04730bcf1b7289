// Wall-clock time in microseconds since the Unix epoch (UTC), and ISO-8601 formatting.
// A Clock is injectable so the conformance suite can move time without sleeping. Any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace ordo {

using Micros = int64_t;
using Clock = std::function<Micros()>;

Micros SystemNowMicros();
inline Clock SystemClock() { return &SystemNowMicros; }

// "2026-11-22T05:09:40.294990Z"
std::string FormatIso8601(Micros t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+hh:mm|-hh:mm]" (also a space instead of 'T').
std::optional<Micros> ParseIso8601(std::string_view s);

}  // namespace ordo
