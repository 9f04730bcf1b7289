// Micro-benchmarks of ordo::http::RequestParser against libhttp-parser 2.9 on the same bytes:
// a typical push (250-byte POST with a 100-byte JSON body), 16 pipelined GETs in one read, and a
// chunked upload. Both parsers produce the same information zero-copy: ours as views, libhttp-
// parser through callbacks that record pointer/length pairs into a fixed array.
//
//   micro_bench --benchmark_filter=HttpParser
#include <http_parser.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "http/parser.h"

namespace {

using ordo::http::RequestParser;

std::string PushRequest() {
  // 100 bytes of JSON, as a small push of one message.
  std::string body =
      R"({"messages":[{"key":"order-4711","payload":{"sku":"A-1001","qty":3,"note":"x"}}]})";
  body.resize(100, ' ');
  return "POST /api/v1/push/orders HTTP/1.1\r\n"
         "Host: ordo:6632\r\n"
         "User-Agent: ordo-go/0.3\r\n"
         "Accept: application/json\r\n"
         "Content-Type: application/json\r\n"
         "Content-Length: 100\r\n"
         "\r\n" +
         body;
}

std::string PipelinedGets() {
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += "GET /api/v1/pop/queue/orders?batch=10&wait_ms=0&id=" + std::to_string(i) +
           " HTTP/1.1\r\nHost: ordo:6632\r\nAccept: application/json\r\n\r\n";
  }
  return out;
}

std::string ChunkedUpload() {
  std::string out =
      "POST /api/v1/push/events HTTP/1.1\r\nHost: ordo:6632\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(1024, 'x');
  for (int i = 0; i < 8; ++i) out += "400;seq=" + std::to_string(i) + "\r\n" + chunk + "\r\n";
  out += "0\r\n\r\n";
  return out;
}

// Parses every request in buf; returns how many.
int ParseAllOrdo(RequestParser& parser, std::string_view buf) {
  int n = 0;
  while (!buf.empty()) {
    parser.Reset();
    if (parser.Parse(buf) != RequestParser::State::kComplete) std::abort();
    benchmark::DoNotOptimize(parser.request().body.data());
    buf.remove_prefix(parser.consumed());
    ++n;
  }
  return n;
}

void RunOrdo(benchmark::State& state, const std::string& input) {
  RequestParser parser;
  int requests = 0;
  for (auto _ : state) requests += ParseAllOrdo(parser, input);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(input.size()));
  state.SetItemsProcessed(requests);
  state.counters["input_bytes"] = static_cast<double>(input.size());
}

// libhttp-parser, collecting what RequestParser exposes: URL, header name/value spans, body spans.
struct Span {
  const char* at;
  size_t len;
};
struct LibSink {
  Span url{};
  Span fields[64]{};
  Span values[64]{};
  int headers = 0;
  bool in_value = false;
  size_t body_bytes = 0;
  int complete = 0;
};

LibSink* Sink(http_parser* p) { return static_cast<LibSink*>(p->data); }

int OnMessageBegin(http_parser* p) {
  LibSink* s = Sink(p);
  s->headers = 0;
  s->in_value = false;
  s->body_bytes = 0;
  return 0;
}
int OnUrl(http_parser* p, const char* at, size_t len) {
  Sink(p)->url = {at, len};
  return 0;
}
int OnHeaderField(http_parser* p, const char* at, size_t len) {
  LibSink* s = Sink(p);
  if (s->headers < 64) s->fields[s->headers] = {at, len};
  s->in_value = false;
  return 0;
}
int OnHeaderValue(http_parser* p, const char* at, size_t len) {
  LibSink* s = Sink(p);
  if (s->headers < 64) s->values[s->headers] = {at, len};
  ++s->headers;
  return 0;
}
int OnBody(http_parser* p, const char* at, size_t len) {
  Sink(p)->body_bytes += len;
  return 0;
}
int OnMessageComplete(http_parser* p) {
  ++Sink(p)->complete;
  return 0;
}

void RunLib(benchmark::State& state, const std::string& input) {
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_message_begin = OnMessageBegin;
  settings.on_url = OnUrl;
  settings.on_header_field = OnHeaderField;
  settings.on_header_value = OnHeaderValue;
  settings.on_body = OnBody;
  settings.on_message_complete = OnMessageComplete;
  LibSink sink;
  http_parser parser;
  int requests = 0;
  for (auto _ : state) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = &sink;
    sink.complete = 0;
    const size_t n = http_parser_execute(&parser, &settings, input.data(), input.size());
    if (n != input.size() || HTTP_PARSER_ERRNO(&parser) != HPE_OK) std::abort();
    benchmark::DoNotOptimize(sink.body_bytes);
    requests += sink.complete;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(input.size()));
  state.SetItemsProcessed(requests);
}

void BM_HttpParser_Ordo_Push(benchmark::State& state) { RunOrdo(state, PushRequest()); }
void BM_HttpParser_Lib_Push(benchmark::State& state) { RunLib(state, PushRequest()); }
void BM_HttpParser_Ordo_Pipelined16(benchmark::State& state) { RunOrdo(state, PipelinedGets()); }
void BM_HttpParser_Lib_Pipelined16(benchmark::State& state) { RunLib(state, PipelinedGets()); }
void BM_HttpParser_Ordo_Chunked8K(benchmark::State& state) { RunOrdo(state, ChunkedUpload()); }
void BM_HttpParser_Lib_Chunked8K(benchmark::State& state) { RunLib(state, ChunkedUpload()); }

// The push request arriving one byte per read: linear, not quadratic, in the request size.
void BM_HttpParser_Ordo_PushByteByByte(benchmark::State& state) {
  const std::string input = PushRequest();
  RequestParser parser;
  for (auto _ : state) {
    parser.Reset();
    RequestParser::State s = RequestParser::State::kIncomplete;
    for (size_t i = 1; i <= input.size(); ++i)
      s = parser.Parse(std::string_view(input).substr(0, i));
    if (s != RequestParser::State::kComplete) std::abort();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(input.size()));
}

BENCHMARK(BM_HttpParser_Ordo_Push);
BENCHMARK(BM_HttpParser_Lib_Push);
BENCHMARK(BM_HttpParser_Ordo_Pipelined16);
BENCHMARK(BM_HttpParser_Lib_Pipelined16);
BENCHMARK(BM_HttpParser_Ordo_Chunked8K);
BENCHMARK(BM_HttpParser_Lib_Chunked8K);
BENCHMARK(BM_HttpParser_Ordo_PushByteByByte);

}  // namespace
