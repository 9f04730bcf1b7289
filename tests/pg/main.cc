// pg_tests: every broker these tests start runs on PostgreSQL (the harness reads ORDO_TEST_DB),
// whatever the environment says; without ORDO_TEST_PG_URL every test skips.
#include <cstdlib>

#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::setenv("ORDO_TEST_DB", "postgres", /*overwrite=*/1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
