// UUIDs as lower-case canonical text ("0190f5c8-3a4e-7b1c-9d2f-0123456789ab").
//
// NewUuidV7 (RFC 9562, section 5.7) carries the time: 48 bits of Unix milliseconds, then 12 bits
// of sub-millisecond precision taken from the microseconds (RFC 9562 6.2, method 3), then 62
// random bits. Ids made by one thread are strictly increasing, also when the clock steps back or
// several ids share a microsecond: the thread keeps its last id and, when the new one would not
// sort after it, takes last + 1 instead. Ids from different threads are unique (random bits) and
// sort by time to within the clocks' agreement.
//
// The random bits come from a fast thread_local PRNG seeded from std::random_device: unique, not
// secret. Any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"

namespace ordo {

std::string NewUuidV7(Micros now);
// Random (version 4) UUID from OpenSSL's CSPRNG: unguessable, used for lease ids.
std::string NewUuidV4();

// 8-4-4-4-12 hex digits, either case; any version.
bool IsUuid(std::string_view s);

// The creation time stored in a version-7 UUID, to the microsecond for ids made by NewUuidV7
// (ids taken as last + 1 may read up to a few microseconds later). 0 if s is not a v7 UUID.
Micros UuidV7Time(std::string_view s);

}  // namespace ordo
