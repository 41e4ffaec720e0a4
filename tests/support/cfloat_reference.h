/** \file
 * An independent, deliberately simple reference for the numerics: it shares no code with src/numerics (only the
 * scalar Philox of philox.h, whose known-answer vectors are tested separately) and follows the semantics of
 * cfloat.md Part 1 literally:
 *   - decode from the formula (ldexp), into a sorted table of every non-negative value;
 *   - nearest: binary search for the neighbours of |x| and compare with their midpoint;
 *   - stochastic: round up iff r < floor(2^32 (|x| - lo) / (hi - lo)), computed in exact integer arithmetic;
 *   - tininess: round |x| to m+1 significant bits with an unbounded exponent and compare with the smallest normal.
 * Every double operation used is exact: values have at most 24 significant bits and neighbours are close in
 * magnitude, so sums, differences and midpoints fit in 53 bits; the code asserts this where it relies on it.
 */
#pragma once

#include <cstdint>
#include <vector>

#include "dojo/numerics/flags.h"
#include "dojo/numerics/format.h"

namespace dojo::test {

struct ReferenceResult {
    std::uint32_t code = 0;
    numerics::ConversionFlags flags;
};

class CfloatReference {
public:
    explicit CfloatReference(const numerics::FormatSpec& spec);

    /// The exact value of `code` (Inf/NaN for bf16 specials).
    double decode(std::uint32_t code) const;

    /// FP32 -> format by nearest-even.
    ReferenceResult encode_nearest(float x) const;
    /// FP32 -> format by stochastic rounding with random word `r`.
    ReferenceResult encode_stochastic(float x, std::uint32_t r) const;

    /// floor(2^32 * (a - lo) / (hi - lo)) for the neighbours lo <= a < hi of a non-exact magnitude `a`.
    std::uint64_t stochastic_threshold(double a) const;

private:
    struct Neighbours {
        double lo;
        double hi;
        std::uint32_t lo_code;
        std::uint32_t hi_code;  // for hi above max: max_code + 1 (the unbounded-exponent successor)
        bool exact;
    };
    Neighbours neighbours(double a) const;
    bool tiny(double a, bool stochastic, std::uint32_t r) const;
    ReferenceResult finish(float x, double a, bool round_up, const Neighbours& n, bool stochastic,
                           std::uint32_t r) const;

    numerics::FormatSpec spec_;
    int mantissa_bits_;
    std::uint32_t max_code_;           // largest finite magnitude code
    std::vector<double> values_;       // values_[c] = value of magnitude code c, c = 0..max_code_
    double above_max_;                 // the value an unbounded exponent would place after max
    double min_normal_;
};

}  // namespace dojo::test
