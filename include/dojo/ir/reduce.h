/** \file
 * The geometry of a ReduceSum node, for passes and kernels that compute reductions outside the op table's kernel
 * (the elementwise fusion pass and its runtime kernel): which input elements add into which output element.
 */
#pragma once

#include <algorithm>
#include <cstdint>

#include "dojo/ir/graph.h"

namespace dojo::ir {

/// The ReduceSum node `node`'s input shape with its reduced axes set to 1: input element i adds into the output
/// element its broadcast from this shape would come from (the output's elements in the same order, whatever
/// keep_dims says). Precondition: node.op == OpKind::ReduceSum.
Shape reduce_kept_shape(const Graph& graph, NodeId node);

/// The sum of one contiguous row of `length` elements in ReduceSum's fixed order, which vectorises: kLanes
/// interleaved partial sums (lane k takes elements k, k + kLanes, ...), combined by a fixed tree, plus the last
/// length % kLanes elements in index order. The row may arrive in pieces (add(), in order, at any offsets that are
/// multiples of kLanes); the total is the same bits however it is cut.
template <typename T>
class RowSum {
public:
    static constexpr std::int64_t kLanes = 8;
    explicit RowSum(std::int64_t length) : main_end_(length - length % kLanes) {}
    /// Elements [first, first + count) of the row; `first` a multiple of kLanes, pieces in order.
    void add(const T* piece, std::int64_t first, std::int64_t count) {
        std::int64_t j = 0;
        const std::int64_t main = std::max<std::int64_t>(0, std::min(count, main_end_ - first));
        // The lanes in locals: `piece` may alias the members as far as the compiler knows, which would keep them
        // in memory (a store and a reload per element) instead of in vector registers.
        T lanes[kLanes];
        std::copy(lane_, lane_ + kLanes, lanes);
        for (; j + kLanes <= main; j += kLanes) {
            for (std::int64_t k = 0; k < kLanes; ++k) {
                lanes[k] += piece[j + k];
            }
        }
        std::copy(lanes, lanes + kLanes, lane_);
        for (; j < count; ++j) {
            tail_ += piece[j];
        }
    }
    T total() const { return combine(lane_, 1, tail_); }
    /// The total of lanes lane[0], lane[stride], ... lane[7 * stride] and a tail, in total()'s fixed tree: for a
    /// kernel that keeps several rows' lanes interleaved.
    static T combine(const T* lane, std::int64_t stride, T tail) {
        auto l = [&](std::int64_t k) { return lane[k * stride]; };
        return (((l(0) + l(4)) + (l(1) + l(5))) + ((l(2) + l(6)) + (l(3) + l(7)))) + tail;
    }

private:
    std::int64_t main_end_;
    T lane_[kLanes] = {};
    T tail_ = 0;
};

}  // namespace dojo::ir
