/** \file
 * A prefetch thread for mini-batches: while the executor runs step b, one background thread fills batch b + 1
 * into its own pair of buffers; take() waits for it and copies them into the caller's (the executor's arena: a copy
 * of one batch, no allocation after construction). The batches, and so the training, are exactly those of filling on the caller's
 * thread.
 *
 * Use: set_order(the epoch's order), request(b) once, then for each step take(x, y) and request(b + 1) before running
 * the step. An exception thrown while filling is rethrown by take(). The prefetcher owns the order it reads, so a
 * request still outstanding when the caller unwinds (an exception) reads nothing freed.
 */
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "dojo/data/batches.h"
#include "dojo/data/dataset.h"

namespace dojo::data {

class BatchPrefetcher {
public:
    /// Batches of `batch_size` samples of `dataset` (which must outlive the prefetcher), in one-hot form as
    /// fill_batch writes them; buffers of `sample_floats` and `target_floats` elements.
    BatchPrefetcher(const Dataset& dataset, std::size_t batch_size, std::size_t sample_floats,
                    std::size_t target_floats, TargetLayout layout = TargetLayout::OneHot);
    ~BatchPrefetcher();
    BatchPrefetcher(const BatchPrefetcher&) = delete;
    BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

    /// The sample order batches are cut from from now on (data/batches.h). Precondition: no request outstanding.
    void set_order(std::vector<std::uint32_t> order);
    /// Starts filling batch `batch` in the background. Precondition: no request is outstanding.
    void request(std::size_t batch);
    /// Waits for the outstanding request and copies its batch into `samples` and `targets` (which must have the
    /// constructor's sizes). Returns the number of samples filled.
    std::size_t take(std::span<float> samples, std::span<float> targets);

private:
    void work();

    const Dataset& dataset_;
    const std::size_t batch_size_;
    TargetLayout layout_;
    std::vector<float> samples_, targets_;  // the batch being filled, or ready
    std::vector<std::uint32_t> order_;
    std::size_t batch_ = 0;
    std::size_t filled_ = 0;
    bool requested_ = false;  // a request waits for the worker
    bool ready_ = false;      // the worker has filled it
    bool stop_ = false;
    std::exception_ptr error_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::thread worker_;  // last: starts after the members above exist
};

}  // namespace dojo::data
