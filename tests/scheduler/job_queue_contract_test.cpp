// The JobQueue contract (job_queue_contract.h) run against the in-memory FairQueue;
// tests/redis runs it against RedisJobQueue.
#include <memory>

#include "scheduler/fair_queue.h"
#include "tests/scheduler/job_queue_contract.h"

namespace kiln::scheduler {
namespace {

INSTANTIATE_TEST_SUITE_P(Queues,
                         JobQueueContract,
                         ::testing::Values(QueueFactory{
                             "InMemory", [] { return std::make_unique<FairQueue>(); }}),
                         factory_name);

}  // namespace
}  // namespace kiln::scheduler
