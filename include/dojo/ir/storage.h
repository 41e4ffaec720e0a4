/** \file
 * The elements of a tensor: contiguous T that a Buffer either owns (the reference interpreter, tests, anything built
 * on its own) or that live at a fixed place in someone else's memory (the runtime executor's arena: one allocation per
 * graph, every node's value an offset into it, runtime/arena_plan.h).
 *
 * Contract: a Storage reads and writes like a std::vector<T> of fixed size (data(), size(), begin()/end(),
 * operator[]). A bound storage keeps its place for good: copying or moving a tensor into it copies the elements (the
 * sizes must agree, or dojo::Error), and assign() fills it; so a kernel writing `out.data = ...` writes into the arena.
 * An owned storage takes the other's elements (or storage, when moved). Copy-constructing always makes an owned copy;
 * move-constructing takes over the other's elements or binding. The memory a storage is bound to must outlive it.
 * A storage is a contiguous range, so it converts to std::span<T> and std::span<const T>.
 */
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <vector>

#include "dojo/util/error.h"

namespace dojo::ir {

template <typename T>
class Storage {
public:
    using value_type = T;
    using iterator = T*;
    using const_iterator = const T*;
    using size_type = std::size_t;

    Storage() = default;
    Storage(std::size_t count, T fill) : owned_(count, fill) { point_at_owned(); }
    Storage(std::vector<T> values) : owned_(std::move(values)) { point_at_owned(); }  // NOLINT: a vector is elements
    Storage(std::initializer_list<T> values) : owned_(values) { point_at_owned(); }

    /// Elements at `elements`, `count` of them, owned by someone else (who keeps them alive while this is used).
    static Storage bound_to(T* elements, std::size_t count) {
        Storage s;
        s.bound_ = true;
        s.begin_ = elements;
        s.size_ = count;
        return s;
    }

    Storage(const Storage& other) : owned_(other.begin(), other.end()) { point_at_owned(); }
    Storage(Storage&& other) noexcept { take(other); }
    Storage& operator=(const Storage& other) {
        if (this != &other) {
            copy_from(other.begin(), other.size());
        }
        return *this;
    }
    Storage& operator=(Storage&& other) noexcept(false) {
        if (this == &other) {
            return *this;
        }
        if (bound_) {
            copy_from(other.begin(), other.size());
        } else {
            take(other);
        }
        return *this;
    }
    Storage& operator=(const std::vector<T>& values) {
        copy_from(values.data(), values.size());
        return *this;
    }
    Storage& operator=(std::initializer_list<T> values) {
        copy_from(values.begin(), values.size());
        return *this;
    }

    /// Fills with `count` copies of `value`; a bound storage must already hold `count` elements.
    void assign(std::size_t count, T value) {
        if (bound_) {
            require_size(count);
            std::fill(begin_, begin_ + size_, value);
            return;
        }
        owned_.assign(count, value);
        point_at_owned();
    }

    bool bound() const { return bound_; }
    T* data() { return begin_; }
    const T* data() const { return begin_; }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    T* begin() { return begin_; }
    T* end() { return begin_ + size_; }
    const T* begin() const { return begin_; }
    const T* end() const { return begin_ + size_; }
    T& operator[](std::size_t i) { return begin_[i]; }
    const T& operator[](std::size_t i) const { return begin_[i]; }
    T& at(std::size_t i) { return begin_[checked(i)]; }
    const T& at(std::size_t i) const { return begin_[checked(i)]; }

    std::vector<T> to_vector() const { return std::vector<T>(begin(), end()); }

    friend bool operator==(const Storage& a, const Storage& b) { return std::ranges::equal(a, b); }
    friend bool operator==(const Storage& a, const std::vector<T>& b) { return std::ranges::equal(a, b); }

private:
    void point_at_owned() {
        begin_ = owned_.data();
        size_ = owned_.size();
    }
    void take(Storage& other) {
        bound_ = other.bound_;
        if (bound_) {
            owned_.clear();
            begin_ = other.begin_;
            size_ = other.size_;
        } else {
            owned_ = std::move(other.owned_);
            point_at_owned();
        }
        other.bound_ = false;
        other.owned_.clear();
        other.point_at_owned();
    }
    void copy_from(const T* from, std::size_t count) {
        if (bound_) {
            require_size(count);
            std::copy(from, from + count, begin_);
            return;
        }
        owned_.assign(from, from + count);
        point_at_owned();
    }
    void require_size(std::size_t count) const {
        if (count != size_) {
            throw Error("cannot put " + std::to_string(count) + " elements into a tensor's storage of " +
                        std::to_string(size_) + " at a fixed place (the runtime's arena): the sizes must agree");
        }
    }
    std::size_t checked(std::size_t i) const {
        if (i >= size_) {
            throw Error("element " + std::to_string(i) + " of a tensor of " + std::to_string(size_));
        }
        return i;
    }

    std::vector<T> owned_;
    bool bound_ = false;
    T* begin_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace dojo::ir
