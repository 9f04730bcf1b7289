// The `ordo` command.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/bench/bench_command.h"
#include "cli/serve.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Ordo: a durable message broker with ordered partitions, consumer groups and "
      "leases, on SQLite or PostgreSQL"};
  app.require_subcommand(1);
  ordo::cli::ServeConfig serve_config;
  CLI::App* serve = app.add_subcommand("serve", "Run the broker (HTTP/JSON API)");
  ordo::cli::AddServeOptions(*serve, serve_config);
  ordo::cli::bench::BenchConfig bench_config;
  CLI::App* bench = ordo::cli::bench::AddBenchCommand(app, bench_config);
  app.add_subcommand("version", "Print the version")->callback([] {
    std::printf("ordo %s\n", ORDO_VERSION);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (serve->parsed()) return ordo::cli::RunServe(serve_config);
    if (bench->parsed()) return ordo::cli::bench::RunBench(bench_config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ordo: %s\n", e.what());
    return 1;
  }
  return 0;
}
