// The activity engine (sim/activity_engine.h): per-resource order, dependencies, causes, and a cycle refused.
#include "dojo/sim/activity_engine.h"

#include <gtest/gtest.h>

#include "dojo/util/error.h"

namespace dojo::sim {
namespace {

constexpr std::size_t kNone = ActivityTiming::kNoCause;

TEST(ActivityEngine, AResourceRunsItsActivitiesOneAtATimeInTheOrderAdded) {
    ActivityEngine engine;
    const std::size_t a = engine.add(0, 2.0);
    const std::size_t b = engine.add(0, 3.0);
    const std::size_t c = engine.add(1, 1.0);  // another resource: runs at once, beside them
    const std::vector<ActivityTiming> t = engine.run();
    EXPECT_EQ(t[a].start_s, 0.0);
    EXPECT_EQ(t[a].cause, kNone);
    EXPECT_EQ(t[b].start_s, 2.0);
    EXPECT_EQ(t[b].end_s, 5.0);
    EXPECT_EQ(t[b].cause, a);
    EXPECT_EQ(t[c].start_s, 0.0);
    EXPECT_EQ(t[c].end_s, 1.0);
}

TEST(ActivityEngine, AnActivityWaitsForItsLatestDependencyAndNamesItAsItsCause) {
    // Two devices and a link: device 0 computes (4 s), the link sends its output (1.5 s), device 1 computes on it
    // (2 s) after a task of its own (1 s) that it does not wait for.
    ActivityEngine engine;
    const std::size_t produce = engine.add(0, 4.0);
    const std::size_t own = engine.add(1, 1.0);
    const std::size_t consume = engine.add(1, 2.0);
    const std::size_t send = engine.add(2, 1.5);
    engine.depend(send, produce);
    engine.depend(consume, send);
    const std::vector<ActivityTiming> t = engine.run();
    EXPECT_EQ(t[send].start_s, 4.0);
    EXPECT_EQ(t[send].cause, produce);
    EXPECT_EQ(t[consume].start_s, 5.5);
    EXPECT_EQ(t[consume].end_s, 7.5);
    EXPECT_EQ(t[consume].cause, send);  // not its resource's previous activity, which ended at 1
    EXPECT_EQ(t[own].end_s, 1.0);
}

TEST(ActivityEngine, OnATieTheResourcesPreviousActivityIsTheCauseThenTheFirstDependency) {
    ActivityEngine engine;
    const std::size_t first = engine.add(0, 2.0);
    const std::size_t other = engine.add(1, 2.0);
    const std::size_t third = engine.add(2, 2.0);
    const std::size_t next = engine.add(0, 1.0);
    engine.depend(next, other);
    engine.depend(next, third);
    const std::vector<ActivityTiming> t = engine.run();
    EXPECT_EQ(t[next].start_s, 2.0);
    EXPECT_EQ(t[next].cause, first);
    ActivityEngine deps_only;
    const std::size_t x = deps_only.add(0, 2.0);
    const std::size_t y = deps_only.add(1, 2.0);
    const std::size_t z = deps_only.add(2, 1.0);
    deps_only.depend(z, y);
    deps_only.depend(z, x);
    EXPECT_EQ(deps_only.run()[z].cause, y);
}

TEST(ActivityEngine, TimingDoesNotDependOnTheOrderResourcesAreNumbered) {
    // The same three-activity chain across resources numbered both ways round.
    for (const bool reversed : {false, true}) {
        ActivityEngine engine;
        const std::size_t r0 = reversed ? 2 : 0, r2 = reversed ? 0 : 2;
        const std::size_t a = engine.add(r2, 1.0);
        const std::size_t b = engine.add(1, 2.0);
        const std::size_t c = engine.add(r0, 3.0);
        engine.depend(c, b);
        engine.depend(b, a);
        const std::vector<ActivityTiming> t = engine.run();
        EXPECT_EQ(t[c].start_s, 3.0);
        EXPECT_EQ(t[c].end_s, 6.0);
    }
}

TEST(ActivityEngine, ACycleThroughAResourcesOrderIsAnError) {
    // b waits on c, but c runs after b on the same resource.
    ActivityEngine engine;
    const std::size_t b = engine.add(0, 1.0);
    const std::size_t c = engine.add(0, 1.0);
    engine.depend(b, c);
    EXPECT_THROW(engine.run(), Error);
}

}  // namespace
}  // namespace dojo::sim
