// Turns the raw columns both engines read for Store::NextTimedEvent into the answer. Pure; any
// thread.
#pragma once

#include <algorithm>
#include <optional>

#include "broker/types.h"

namespace ordo::broker {

inline std::optional<Micros> NextTimedEventFrom(std::optional<Micros> lease_expiry,
                                                std::optional<Micros> backoff_end,
                                                int64_t delayed_processing_s,
                                                int64_t window_buffer_s, Micros now,
                                                std::optional<Micros> delayed_head = {}) {
  std::optional<Micros> next;
  auto consider = [&next](std::optional<Micros> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  consider(lease_expiry);
  consider(backoff_end);
  consider(delayed_head);  // a per-message delay (delayMs) ending at a partition's head
  if (delayed_processing_s > 0 || window_buffer_s > 0) consider(now + kVisibilityRecheck);
  return next;
}

}  // namespace ordo::broker
