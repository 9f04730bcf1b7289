// Start-up work on a plain (blocking) libpq connection: applying the schema migrations.
// Runs before the broker serves, never on the request path.
//
// Migrations are applied in one transaction under a transaction-level advisory lock, so two
// instances starting at once on an empty database are safe: one applies, the other waits for the
// lock, then finds every version recorded and applies nothing.
//
// Thread contract: any thread; blocking.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ordo::db::pg {

// Connects with the keyword/value pairs (see ConnectOptions::params) and applies what is missing.
// `applied` (optional) receives how many migrations this call applied. `connected` (optional)
// tells a failure to connect (false: the server was not reached or refused the session, which a
// later attempt may get past) from a failure of the migrations themselves (true).
Status Migrate(const std::vector<std::pair<std::string, std::string>>& params, int* applied,
               bool* connected = nullptr);

}  // namespace ordo::db::pg
