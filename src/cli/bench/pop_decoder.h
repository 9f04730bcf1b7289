// PopDecoder: reads the answer of GET /api/v1/pop/queue/... and writes the /api/v1/ack/batch body
// that acknowledges every message in it. Identifiers are copied as their raw JSON tokens, so they
// go back exactly as the broker wrote them; payloads are skipped unread, except that `e2e` asks
// for the send stamp its producers put in each payload ({"t":<ns>,"i":<index>,...}).
//
// Thread contract: one consumer coroutine owns a decoder (it keeps a parser and a scratch buffer,
// reused so a pop costs no allocation once they have grown).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

namespace ordo::cli::bench {

// The stamp an e2e producer put in a payload: `t` is the (scheduled) send time in nanoseconds of
// the steady clock, `i` the message's index in the run. `valid` is false for payloads without it.
struct SendStamp {
  int64_t t = 0;
  uint64_t i = 0;
  bool valid = false;
};

class PopDecoder {
 public:
  // Decodes `body`; sets `*messages` to the number of messages and `*ack_body` to an ack of all of
  // them with status "completed" (for `group`; empty: queue mode). When `stamps` is not null it
  // receives one SendStamp per message, in order. Returns false with `*error` on an answer that is
  // not the documented shape.
  bool Decode(std::string_view body, const std::string& group, std::string* ack_body,
              size_t* messages, std::vector<SendStamp>* stamps, std::string* error);

 private:
  static bool Fail(simdjson::error_code e, std::string* error);
  static SendStamp ReadStamp(simdjson::ondemand::value data);

  simdjson::ondemand::parser parser_;
  std::string scratch_;
};

}  // namespace ordo::cli::bench
