// Helpers for reading request bodies with simdjson.
//
// Padding: simdjson reads up to SIMDJSON_PADDING (64 in simdjson 3.0.1) bytes past the end of the
// input. Every function here that takes a "padded" body REQUIRES that those bytes are allocated
// (their contents do not matter). http::Request::body guarantees kBodyPadding (64) spare bytes of
// capacity; tests/unit/json_reader_test.cc asserts that this covers SIMDJSON_PADDING. For any
// other string, call Padded() first.
//
// Validate() runs the DOM parser over the whole body (structure and UTF-8) so that the On-Demand
// parser used afterwards, which validates lazily, only ever sees well-formed input.
//
// Any thread: the DOM parser is thread_local, and the functions keep no other state.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace ordo::json {

inline constexpr size_t kPadding = simdjson::SIMDJSON_PADDING;

// Reserves size()+kPadding bytes in s (a no-op if already there) and returns a view that
// simdjson may parse in place. The view is valid until s is next modified.
simdjson::padded_string_view Padded(std::string& s);

// Ok if padded_body is one complete, well-formed JSON document in valid UTF-8; otherwise
// kInvalidArgument, e.g. "request body is not valid UTF-8" or
// "request body is not valid JSON: <simdjson's reason>".
// REQUIRES: kPadding readable bytes after padded_body's end.
Status Validate(std::string_view padded_body);

// The original bytes of v as they appear in the document: objects and arrays with their inner
// whitespace, strings with their quotes and escapes unchanged, numbers/true/false/null as
// written. Trailing whitespace is never included. An object or array is consumed; a scalar is
// only peeked. Either way the caller may go on to the next field or element.
Result<std::string_view> RawValue(simdjson::ondemand::value v);

}  // namespace ordo::json
