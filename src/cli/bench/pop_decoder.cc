#include "cli/bench/pop_decoder.h"

#include <fmt/format.h>

namespace ordo::cli::bench {

namespace ondemand = simdjson::ondemand;

namespace {

// Trims the spaces simdjson's raw_json_token() keeps after a token.
std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

bool PopDecoder::Fail(simdjson::error_code e, std::string* error) {
  *error = fmt::format("unreadable pop answer: {}", simdjson::error_message(e));
  return false;
}

SendStamp PopDecoder::ReadStamp(ondemand::value data) {
  SendStamp stamp;
  ondemand::object o;
  if (data.get_object().get(o)) return stamp;
  bool has_t = false, has_i = false;
  for (auto field : o) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return stamp;
    if (key == "t") {
      has_t = !field.value().get_int64().get(stamp.t);
    } else if (key == "i") {
      has_i = !field.value().get_uint64().get(stamp.i);
    }
  }
  stamp.valid = has_t && has_i;
  return stamp;
}

bool PopDecoder::Decode(std::string_view body, const std::string& group, std::string* ack_body,
                        size_t* messages, std::vector<SendStamp>* stamps, std::string* error) {
  *messages = 0;
  if (stamps != nullptr) stamps->clear();
  scratch_.assign(body);
  scratch_.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  ondemand::document doc;
  if (auto e = parser_
                   .iterate(simdjson::padded_string_view(scratch_.data(), scratch_.size(),
                                                         scratch_.capacity()))
                   .get(doc)) {
    return Fail(e, error);
  }
  ondemand::object root;
  if (auto e = doc.get_object().get(root)) return Fail(e, error);
  std::string_view top_lease;
  ack_body->clear();
  *ack_body += R"({)";
  if (!group.empty()) {
    *ack_body += R"("consumerGroup":")";
    *ack_body += group;
    *ack_body += R"(",)";
  }
  *ack_body += R"("acknowledgments":[)";
  for (auto field : root) {
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return Fail(e, error);
    ondemand::value value;
    if (auto e = field.value().get(value)) return Fail(e, error);
    if (key == "leaseId") {
      top_lease = TrimRight(value.raw_json_token());
      continue;
    }
    if (key != "messages") continue;
    ondemand::array items;
    if (auto e = value.get_array().get(items)) return Fail(e, error);
    for (auto item : items) {
      ondemand::object m;
      if (auto e = item.get_object().get(m)) return Fail(e, error);
      std::string_view txn, partition, lease;
      SendStamp stamp;
      for (auto f : m) {
        std::string_view k;
        if (auto e = f.unescaped_key().get(k)) return Fail(e, error);
        if (k == "data") {
          if (stamps == nullptr) continue;  // the payload is skipped unread
          ondemand::value v;
          if (auto e = f.value().get(v)) return Fail(e, error);
          stamp = ReadStamp(v);
          continue;
        }
        std::string_view* slot = k == "transactionId" ? &txn
                                 : k == "partitionId" ? &partition
                                 : k == "leaseId"     ? &lease
                                                      : nullptr;
        if (slot == nullptr) continue;
        ondemand::value v;
        if (auto e = f.value().get(v)) return Fail(e, error);
        *slot = TrimRight(v.raw_json_token());
      }
      if (lease.empty()) lease = top_lease;
      if (txn.empty() || partition.empty() || lease.empty()) {
        *error = "a popped message lacks transactionId, partitionId or leaseId";
        return false;
      }
      if (*messages > 0) *ack_body += ',';
      *ack_body += R"({"transactionId":)";
      *ack_body += txn;
      *ack_body += R"(,"partitionId":)";
      *ack_body += partition;
      *ack_body += R"(,"leaseId":)";
      *ack_body += lease;
      *ack_body += R"(,"status":"completed"})";
      if (stamps != nullptr) stamps->push_back(stamp);
      ++*messages;
    }
  }
  *ack_body += "]}";
  return true;
}

}  // namespace ordo::cli::bench
