#include "json/writer.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace ordo::json {
namespace {

std::string Escaped(std::string_view s) {
  std::string out;
  AppendEscaped(out, s);
  return out;
}

// Parses text as a JSON document holding one string and returns that string.
std::string ParseString(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  EXPECT_EQ(parser.parse(padded).get(root), simdjson::SUCCESS) << text;
  std::string_view s;
  EXPECT_EQ(root.get_string().get(s), simdjson::SUCCESS) << text;
  return std::string(s);
}

bool IsValidJson(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element root;
  return parser.parse(padded).get(root) == simdjson::SUCCESS;
}

TEST(JsonEscapeTest, QuotesAndBackslashes) {
  EXPECT_EQ(Escaped(""), R"("")");
  EXPECT_EQ(Escaped("plain"), R"("plain")");
  EXPECT_EQ(Escaped(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(Escaped(R"(C:\dir\)"), R"("C:\\dir\\")");
  EXPECT_EQ(Escaped("/"), R"("/")");
}

TEST(JsonEscapeTest, EveryControlCharacter) {
  for (int c = 0; c < 0x20; ++c) {
    std::string expected;
    if (c == '\b') {
      expected = "\\b";
    } else if (c == '\t') {
      expected = "\\t";
    } else if (c == '\n') {
      expected = "\\n";
    } else if (c == '\f') {
      expected = "\\f";
    } else if (c == '\r') {
      expected = "\\r";
    } else {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\u%04x", c);
      expected = buf;
    }
    const std::string input(1, static_cast<char>(c));
    EXPECT_EQ(Escaped(input), "\"" + expected + "\"") << "char " << c;
    EXPECT_EQ(ParseString(Escaped(input)), input) << "char " << c;
  }
}

TEST(JsonEscapeTest, DelAndNonAsciiPassThrough) {
  EXPECT_EQ(Escaped("\x7f"), "\"\x7f\"");
  EXPECT_EQ(Escaped("caf\xc3\xa9"), "\"caf\xc3\xa9\"");            // 2 bytes: é
  EXPECT_EQ(Escaped("\xe2\x82\xac 5"), "\"\xe2\x82\xac 5\"");      // 3 bytes: €
  EXPECT_EQ(Escaped("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // 4 bytes: 😀
  EXPECT_EQ(Escaped("\xef\xbf\xbf"), "\"\xef\xbf\xbf\"");          // U+FFFF
  EXPECT_EQ(Escaped("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");  // U+10FFFF
}

TEST(JsonEscapeTest, LineAndParagraphSeparatorsAreEscaped) {
  EXPECT_EQ(Escaped("a\xe2\x80\xa8"
                    "b\xe2\x80\xa9"
                    "c"),
            R"("a\u2028b\u2029c")");
  EXPECT_EQ(ParseString(Escaped("\xe2\x80\xa8")), "\xe2\x80\xa8");
  // Neighbours of U+2028 are ordinary characters.
  EXPECT_EQ(Escaped("\xe2\x80\xa7\xe2\x80\xaa"), "\"\xe2\x80\xa7\xe2\x80\xaa\"");
}

TEST(JsonEscapeTest, InvalidUtf8BecomesReplacementCharacter) {
  const std::string r = "\xef\xbf\xbd";
  struct Case {
    std::string input;
    std::string expected;  // unquoted
  };
  const std::vector<Case> cases = {
      {"\x80", r},  // lone continuation byte
      {"a\xbf"
       "b",
       "a" + r + "b"},                      // continuation in ASCII
      {"\xc0\x80", r + r},                  // overlong NUL
      {"\xc1\xbf", r + r},                  // overlong
      {"\xe0\x80\x80", r + r + r},          // overlong 3-byte
      {"\xed\xa0\x80", r + r + r},          // UTF-16 surrogate D800
      {"\xf5\x80\x80\x80", r + r + r + r},  // beyond U+10FFFF
      {"\xf4\x90\x80\x80", r + r + r + r},  // beyond U+10FFFF
      {"\xe2\x82", r},                      // truncated at the end: one replacement
      {"\xe2\x82z", r + "z"},               // truncated before ASCII
      {"\xf0\x9f\x98", r},                  // truncated 4-byte
      {"\xf0\x9f\x98\xf0\x9f\x98\x80", r + "\xf0\x9f\x98\x80"},
      {"\xff\xfe", r + r},
      {"ok\xc3", "ok" + r},
  };
  for (const auto& c : cases) {
    const std::string out = Escaped(c.input);
    EXPECT_EQ(out, "\"" + c.expected + "\"");
    EXPECT_TRUE(IsValidJson(out)) << out;
  }
}

TEST(JsonWriterTest, NestingAndCommas) {
  Writer w;
  w.BeginObject();
  w.Key("a");
  w.Int(1);
  w.Key("list");
  w.BeginArray();
  w.Int(1);
  w.String("two");
  w.BeginObject();
  w.EndObject();
  w.BeginArray();
  w.EndArray();
  w.Null();
  w.Bool(false);
  w.EndArray();
  w.Key("nested");
  w.BeginObject();
  w.Key("x");
  w.BeginObject();
  w.Key("y");
  w.Bool(true);
  w.EndObject();
  w.Key("z");
  w.UInt(7);
  w.EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(),
            R"({"a":1,"list":[1,"two",{},[],null,false],"nested":{"x":{"y":true},"z":7}})");
  EXPECT_EQ(w.depth(), 0);
  EXPECT_TRUE(IsValidJson(w.str()));
}

TEST(JsonWriterTest, EmptyContainersAndTopLevelScalars) {
  Writer w;
  w.BeginArray();
  w.EndArray();
  EXPECT_EQ(w.Take(), "[]");
  w.BeginObject();
  w.EndObject();
  EXPECT_EQ(w.Take(), "{}");
  w.String("x");
  EXPECT_EQ(w.Take(), R"("x")");
  w.Null();
  EXPECT_EQ(w.Take(), "null");
}

TEST(JsonWriterTest, DeepNestingUpToTheLimit) {
  Writer w;
  for (int i = 0; i < Writer::kMaxDepth; ++i) w.BeginArray();
  w.Int(1);
  w.Int(2);
  for (int i = 0; i < Writer::kMaxDepth; ++i) w.EndArray();
  EXPECT_EQ(w.str(), std::string(64, '[') + "1,2" + std::string(64, ']'));
}

TEST(JsonWriterTest, RawIsVerbatim) {
  Writer w;
  w.BeginArray();
  w.Raw(R"({ "k" : [1, 2.50, "\u00e9"] })");
  w.Raw("3");
  w.EndArray();
  w.Take();
  w.BeginObject();
  w.RawField("data", R"({"a" :  null})");
  w.Field("n", 1);
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"data":{"a" :  null},"n":1})");
}

TEST(JsonWriterTest, NumbersAtTheirLimits) {
  Writer w;
  w.BeginArray();
  w.Int(std::numeric_limits<int64_t>::min());
  w.Int(std::numeric_limits<int64_t>::max());
  w.UInt(std::numeric_limits<uint64_t>::max());
  w.Int(0);
  w.Double(1.5);
  w.Double(0.1);
  w.Double(-2.0);
  w.Double(1e300);
  w.Double(std::nan(""));
  w.Double(std::numeric_limits<double>::infinity());
  w.EndArray();
  EXPECT_EQ(w.str(),
            "[-9223372036854775808,9223372036854775807,18446744073709551615,0,1.5,0.1,-2,1e+300,"
            "null,null]");
  EXPECT_TRUE(IsValidJson(w.str()));
}

TEST(JsonWriterTest, FieldOverloadsPickTheRightType) {
  Writer w;
  std::optional<std::string> none;
  std::optional<std::string> some = "t1";
  std::optional<int64_t> count = 3;
  const std::string s = "str";
  w.BeginObject();
  w.Field("literal", "text");  // not Bool
  w.Field("string", s);
  w.Field("view", std::string_view("v"));
  w.Field("int", 5);
  w.Field("neg", -5L);
  w.Field("unsigned", 5u);
  w.Field("size", size_t{6});
  w.Field("bool", true);
  w.Field("double", 0.25);
  w.Field("none", none);
  w.Field("some", some);
  w.Field("count", count);
  w.Field("null", nullptr);
  w.EndObject();
  EXPECT_EQ(w.str(),
            R"({"literal":"text","string":"str","view":"v","int":5,"neg":-5,"unsigned":5,)"
            R"("size":6,"bool":true,"double":0.25,"none":null,"some":"t1","count":3,"null":null})");
}

TEST(JsonWriterTest, KeysAreEscaped) {
  Writer w;
  w.BeginObject();
  w.Field("we\"ird\n", 1);
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"we\"ird\n":1})");
}

TEST(JsonWriterTest, TakeAndClearStartANewDocument) {
  Writer w;
  w.BeginArray();
  w.Int(1);
  w.EndArray();
  EXPECT_EQ(w.Take(), "[1]");
  EXPECT_EQ(w.str(), "");
  w.BeginArray();
  w.Int(2);
  w.EndArray();
  w.Clear();
  w.BeginArray();
  w.Int(3);
  w.EndArray();
  EXPECT_EQ(w.str(), "[3]");
}

TEST(JsonWriterTest, ContinuesAGivenString) {
  std::string buf = "prefix:";
  buf.reserve(256);
  Writer w(std::move(buf));
  w.BeginArray();
  w.EndArray();
  EXPECT_EQ(w.str(), "prefix:[]");
}

// Every document the writer makes parses, and every valid string comes back unchanged.
TEST(JsonWriterTest, RoundTripThroughSimdjson) {
  std::vector<std::string> strings = {
      "",
      "plain",
      "\"\\/\b\f\n\r\t",
      std::string("nul\0inside", 10),
      "\x7f",
      "caf\xc3\xa9",
      "\xe2\x82\xac\xf0\x9f\x98\x80",
      "\xe2\x80\xa8\xe2\x80\xa9",
      "\\u0041 is not an escape",
  };
  std::string all_ascii;
  for (int c = 0; c < 0x80; ++c) all_ascii.push_back(static_cast<char>(c));
  strings.push_back(all_ascii);

  std::mt19937 rng(42);
  const char32_t ranges[][2] = {{0x20, 0x7f},     {0x80, 0x7ff},       {0x800, 0xd7ff},
                                {0xe000, 0xffff}, {0x10000, 0x10ffff}, {0, 0x1f}};
  for (int n = 0; n < 500; ++n) {
    std::string s;
    const int len = static_cast<int>(rng() % 20);
    for (int i = 0; i < len; ++i) {
      const auto& range = ranges[rng() % 6];
      const char32_t cp = range[0] + rng() % (range[1] - range[0] + 1);
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        s.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      } else if (cp < 0x10000) {
        s.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      } else {
        s.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
      }
    }
    strings.push_back(s);
  }

  Writer w;
  w.BeginObject();
  for (size_t i = 0; i < strings.size(); ++i) w.Field(strings[i], strings[i]);
  w.Key("list");
  w.BeginArray();
  for (const auto& s : strings) w.String(s);
  w.EndArray();
  w.EndObject();

  simdjson::dom::parser parser;
  simdjson::padded_string padded(w.str());
  simdjson::dom::object root;
  ASSERT_EQ(parser.parse(padded).get(root), simdjson::SUCCESS);
  size_t i = 0;
  for (auto [key, value] : root) {
    if (key == "list") break;
    ASSERT_LT(i, strings.size());
    EXPECT_EQ(std::string(key), strings[i]);
    EXPECT_EQ(std::string(value.get_string().value()), strings[i]);
    ++i;
  }
  simdjson::dom::array list;
  ASSERT_EQ(root["list"].get(list), simdjson::SUCCESS);
  i = 0;
  for (auto value : list) EXPECT_EQ(std::string(value.get_string().value()), strings[i++]);
  EXPECT_EQ(i, strings.size());
}

// Random bytes, mostly invalid UTF-8: the output is always valid JSON.
TEST(JsonWriterTest, ArbitraryBytesAlwaysGiveValidJson) {
  std::mt19937 rng(7);
  for (int n = 0; n < 2000; ++n) {
    std::string s;
    const int len = static_cast<int>(rng() % 24);
    for (int i = 0; i < len; ++i) s.push_back(static_cast<char>(rng() & 0xff));
    const std::string out = Escaped(s);
    ASSERT_TRUE(IsValidJson(out)) << out;
    if (simdjson::validate_utf8(s.data(), s.size())) {
      EXPECT_EQ(ParseString(out), s);
    }
  }
}

}  // namespace
}  // namespace ordo::json
