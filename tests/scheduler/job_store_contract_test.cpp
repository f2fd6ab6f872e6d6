// The JobStore contract (tests/scheduler/job_store_contract.h) on the embedded store: SQLite
// in a fresh directory per test.
#include <memory>

#include "scheduler/sqlite_job_store.h"
#include "tests/scheduler/job_store_contract.h"
#include "tests/scheduler/temp_dir.h"

namespace kiln::scheduler {
namespace {

class SqliteBacking final : public StoreBacking {
  public:
    std::unique_ptr<JobStore> open() override {
        return std::make_unique<SqliteJobStore>(dir_.path() / "kiln.db");
    }

  private:
    test::TempDir dir_;
};

INSTANTIATE_TEST_SUITE_P(Stores,
                         JobStoreContract,
                         ::testing::Values(StoreFactory{
                             "sqlite", [] { return std::make_unique<SqliteBacking>(); }}),
                         store_factory_name);

}  // namespace
}  // namespace kiln::scheduler
