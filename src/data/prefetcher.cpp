#include "dojo/data/prefetcher.h"

#include <algorithm>

#include <utility>

#include "dojo/data/batches.h"
#include "dojo/util/check.h"

namespace dojo::data {

BatchPrefetcher::BatchPrefetcher(const Dataset& dataset, std::size_t batch_size, std::size_t sample_floats,
                                 std::size_t target_floats, TargetLayout layout)
    : dataset_(dataset),
      batch_size_(batch_size),
      layout_(layout),
      samples_(sample_floats, 0.0f),
      targets_(target_floats, 0.0f),
      worker_([this] { work(); }) {}

BatchPrefetcher::~BatchPrefetcher() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    changed_.notify_all();
    worker_.join();
}

void BatchPrefetcher::set_order(std::vector<std::uint32_t> order) {
    const std::lock_guard lock(mutex_);
    DOJO_CHECK(!requested_ && !ready_) << "BatchPrefetcher::set_order with a batch outstanding";
    order_ = std::move(order);
}

void BatchPrefetcher::request(std::size_t batch) {
    {
        const std::lock_guard lock(mutex_);
        DOJO_CHECK(!requested_ && !ready_) << "BatchPrefetcher::request with a batch outstanding";
        batch_ = batch;
        requested_ = true;
    }
    changed_.notify_all();
}

std::size_t BatchPrefetcher::take(std::span<float> samples, std::span<float> targets) {
    std::unique_lock lock(mutex_);
    DOJO_CHECK(requested_ || ready_) << "BatchPrefetcher::take without a request";
    changed_.wait(lock, [this] { return ready_; });
    ready_ = false;
    if (error_) {
        std::exception_ptr error = std::exchange(error_, nullptr);
        std::rethrow_exception(error);
    }
    DOJO_CHECK(samples.size() == samples_.size() && targets.size() == targets_.size())
        << "BatchPrefetcher::take into buffers of another size";
    std::copy(samples_.begin(), samples_.end(), samples.begin());
    std::copy(targets_.begin(), targets_.end(), targets.begin());
    return filled_;
}

void BatchPrefetcher::work() {
    std::unique_lock lock(mutex_);
    while (true) {
        changed_.wait(lock, [this] { return stop_ || requested_; });
        if (stop_) {
            return;
        }
        // Fill outside the lock: take() may be waiting, request() may not come until this one is taken.
        const std::size_t batch = batch_;  // order_ changes only when no request is outstanding
        lock.unlock();
        std::size_t filled = 0;
        std::exception_ptr error;
        try {
            filled = fill_batch(dataset_, order_, batch, batch_size_, samples_, targets_, layout_);
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        filled_ = filled;
        error_ = error;
        requested_ = false;
        ready_ = true;
        changed_.notify_all();
    }
}

}  // namespace dojo::data
