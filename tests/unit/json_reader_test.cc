#include "json/reader.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/message.h"

namespace ordo::json {
namespace {

// Request bodies are parsed in place, relying on the padding http::Request promises.
static_assert(kPadding <= http::Request::kBodyPadding,
              "http::Request::kBodyPadding must cover simdjson's padding");

Status ValidateString(std::string body) { return Validate(Padded(body)); }

TEST(JsonValidateTest, AcceptsWellFormedDocuments) {
  for (const char* body : {R"({"items":[{"queue":"q","payload":{"a":[1,2.5,null,true]}}]})", "[]",
                           "{}", R"("just a string")", "42", "null",
                           "  \n {\"a\" : \"caf\xc3\xa9 \\u00e9 \\ud83d\\ude00\"}  \n"}) {
    EXPECT_TRUE(ValidateString(body).ok()) << body << ": " << ValidateString(body).message();
  }
}

TEST(JsonValidateTest, RefusesInvalidUtf8WithAClearMessage) {
  for (const char* body : {"{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}",
                           "[\"ok\", \"\xc0\xaf\"]", "{\"\xe2\x82\":1}"}) {
    const Status s = ValidateString(body);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << body;
    EXPECT_EQ(s.message(), "request body is not valid UTF-8") << body;
  }
}

TEST(JsonValidateTest, RefusesTruncatedDocuments) {
  for (const char* body : {R"({"a":[1,2)", R"({"a":)", R"({"a")", R"(["x)", "{", "[", "tru",
                           R"({"a":1,})", R"([1,])"}) {
    const Status s = ValidateString(body);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << body;
    EXPECT_EQ(s.message().rfind("request body is not valid JSON: ", 0), 0u) << s.message();
    EXPECT_GT(s.message().size(), std::string("request body is not valid JSON: ").size());
  }
}

TEST(JsonValidateTest, RefusesTrailingGarbageAndEmptyBodies) {
  for (const char* body : {R"({"a":1} x)", R"({"a":1}{"b":2})", "[] []", "1 2", "", "   ",
                           R"({'a':1})", R"({"a":01})", "{\"a\":\"tab\tinside\"}"}) {
    EXPECT_EQ(ValidateString(body).code(), Code::kInvalidArgument) << body;
  }
}

TEST(JsonValidateTest, ValidatesInPlaceWithOnlyThePaddingAllocated) {
  std::string body = R"({"a":[1,2,3]})";
  simdjson::padded_string_view view = Padded(body);
  EXPECT_GE(body.capacity(), body.size() + kPadding);
  EXPECT_EQ(view.data(), body.data());
  EXPECT_EQ(std::string_view(view), std::string_view(body));
  EXPECT_TRUE(Validate(body).ok());
}

TEST(JsonValidateTest, LargeBodiesAreValidatedToo) {
  std::string body = "[";
  while (body.size() < (2 << 20)) body += R"({"k":"value"},)";
  body += "0]";
  EXPECT_TRUE(ValidateString(body).ok());
  body.back() = ',';
  EXPECT_FALSE(ValidateString(body).ok());
  EXPECT_TRUE(ValidateString("[1]").ok());  // the thread's parser still works afterwards
}

// Collects RawValue of every field of a top-level object, in order.
std::vector<std::pair<std::string, std::string>> RawFields(std::string body) {
  std::vector<std::pair<std::string, std::string>> out;
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  EXPECT_EQ(parser.iterate(Padded(body)).get(doc), simdjson::SUCCESS);
  simdjson::ondemand::object object;
  EXPECT_EQ(doc.get_object().get(object), simdjson::SUCCESS);
  for (auto field : object) {
    std::string_view key;
    EXPECT_EQ(field.unescaped_key().get(key), simdjson::SUCCESS);
    simdjson::ondemand::value value;
    EXPECT_EQ(field.value().get(value), simdjson::SUCCESS);
    auto raw = RawValue(value);
    EXPECT_TRUE(raw.ok()) << raw.status().message();
    if (raw.ok()) out.emplace_back(std::string(key), std::string(*raw));
  }
  return out;
}

TEST(JsonRawValueTest, KeepsTheOriginalBytes) {
  const std::string body =
      "{ \"object\" : { \"x\" : [1,  2 ] ,\n \"s\":\"\\u00e9\" }  ,\n"
      "  \"array\":[ 1 , \"two\" , {\"3\": null} ]\t,"
      "\"string\" : \"h\\u00e9llo \\\"q\\\" caf\xc3\xa9 \\ud83d\\ude00\"  ,"
      "\"number\": -1.50e3 , \"int\":7,\"true\" : true , \"false\":false, \"null\" : null ,"
      "\"empty_object\":{ },\"empty_array\":[ ],"
      "\"last\": {\"k\": [ {\"deep\": \"\\n\"} ] }\n}\n";
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"object", "{ \"x\" : [1,  2 ] ,\n \"s\":\"\\u00e9\" }"},
      {"array", "[ 1 , \"two\" , {\"3\": null} ]"},
      {"string", "\"h\\u00e9llo \\\"q\\\" caf\xc3\xa9 \\ud83d\\ude00\""},
      {"number", "-1.50e3"},
      {"int", "7"},
      {"true", "true"},
      {"false", "false"},
      {"null", "null"},
      {"empty_object", "{ }"},
      {"empty_array", "[ ]"},
      {"last", "{\"k\": [ {\"deep\": \"\\n\"} ] }"},
  };
  EXPECT_EQ(RawFields(body), expected);
}

TEST(JsonRawValueTest, ArrayElementsAndTheLastValueOfTheDocument) {
  std::string body = "[ {\"a\" : 1} ,[2] , \"s\" ,3.0 , {\"z\":[]}  ]";
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  ASSERT_EQ(parser.iterate(Padded(body)).get(doc), simdjson::SUCCESS);
  simdjson::ondemand::array array;
  ASSERT_EQ(doc.get_array().get(array), simdjson::SUCCESS);
  std::vector<std::string> raws;
  for (auto element : array) {
    simdjson::ondemand::value value;
    ASSERT_EQ(element.get(value), simdjson::SUCCESS);
    auto raw = RawValue(value);
    ASSERT_TRUE(raw.ok());
    raws.emplace_back(*raw);
  }
  EXPECT_EQ(raws, (std::vector<std::string>{"{\"a\" : 1}", "[2]", "\"s\"", "3.0", "{\"z\":[]}"}));
}

}  // namespace
}  // namespace ordo::json
