// Start-up work on a plain (blocking) libpq connection: applying the schema migrations.
// Runs before the broker serves, never on the request path.
//
// Migrations are applied in one transaction under a transaction-level advisory lock, so two
// instances starting at once on an empty database are safe: one applies, the other waits for the
// lock, then finds every version recorded and applies nothing. That transaction runs without the
// connection's statement_timeout: an instance waits for another's migrations however long they
// take, and a migration of a large table is not cut short.
//
// Thread contract: any thread; blocking.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ordo::db::pg {

// The oldest PostgreSQL the schema runs on: 13, the first with gen_random_uuid() in core (the
// migrations call it). Tested on 15, the version Debian bookworm ships.
inline constexpr int kMinServerVersion = 130000;

// Ok for a server whose PQserverVersion() is `server_version_num` when it is kMinServerVersion or
// later; else an error naming the version needed and the server's own (0: not known).
Status CheckServerVersion(int server_version_num);

// Connects with the keyword/value pairs (see ConnectOptions::params) and applies what is missing.
// `applied` (optional) receives how many migrations this call applied. `connected` (optional)
// tells a failure to connect (false: the server was not reached or refused the session, which a
// later attempt may get past) from a failure of the migrations themselves (true). A server older
// than kMinServerVersion fails the call before anything is written (connected: true).
// `unknown` (optional) receives the versions recorded in the database that this build does not
// ship: a newer build migrated it (a rolling upgrade in progress, or a downgrade).
Status Migrate(const std::vector<std::pair<std::string, std::string>>& params, int* applied,
               bool* connected = nullptr, std::vector<int>* unknown = nullptr);

}  // namespace ordo::db::pg
