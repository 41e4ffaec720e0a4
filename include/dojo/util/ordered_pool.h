/** \file
 * OrderedPool: runs make(i) for i = 0..count-1 on worker threads and hands the results back in index order, with
 * at most `lookahead` results made ahead of the consumer (bounded memory). The results, and their order, do not
 * depend on the number of threads. An exception thrown by make(i) is rethrown by the next() that would have
 * returned result i; the workers stop.
 */
#pragma once

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace dojo {

template <typename Result>
class OrderedPool {
public:
    OrderedPool(int count, int threads, int lookahead, std::function<Result(int)> make)
        : count_(count), lookahead_(std::max(1, lookahead)), make_(std::move(make)) {
        for (int t = 0; t < std::max(1, std::min(threads, count)); ++t) {
            workers_.emplace_back([this] { work(); });
        }
    }
    ~OrderedPool() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        changed_.notify_all();
        for (std::thread& t : workers_) {
            t.join();
        }
    }
    OrderedPool(const OrderedPool&) = delete;
    OrderedPool& operator=(const OrderedPool&) = delete;

    /// Waits for the next result in order; false once all `count` results have been taken.
    bool next(Result& out) {
        std::unique_lock lock(mutex_);
        if (taken_ >= count_) {
            return false;
        }
        changed_.wait(lock, [&] { return ready_.count(taken_) || failed_.count(taken_); });
        if (const auto f = failed_.find(taken_); f != failed_.end()) {
            stop_ = true;
            changed_.notify_all();
            std::rethrow_exception(f->second);
        }
        out = std::move(ready_.at(taken_));
        ready_.erase(taken_++);
        lock.unlock();
        changed_.notify_all();
        return true;
    }

private:
    void work() {
        while (true) {
            int index = 0;
            {
                std::unique_lock lock(mutex_);
                changed_.wait(lock, [&] { return stop_ || claimed_ >= count_ || claimed_ < taken_ + lookahead_; });
                if (stop_ || claimed_ >= count_) {
                    return;
                }
                index = claimed_++;
            }
            try {
                Result result = make_(index);
                std::lock_guard lock(mutex_);
                ready_.emplace(index, std::move(result));
            } catch (...) {
                std::lock_guard lock(mutex_);
                failed_.emplace(index, std::current_exception());
            }
            changed_.notify_all();
        }
    }

    const int count_, lookahead_;
    std::function<Result(int)> make_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::map<int, Result> ready_;
    std::map<int, std::exception_ptr> failed_;
    int claimed_ = 0, taken_ = 0;
    bool stop_ = false;
    std::vector<std::thread> workers_;  // last: they start once the members above exist
};

}  // namespace dojo
