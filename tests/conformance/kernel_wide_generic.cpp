// Test-only: the kernel source at the AVX-512 width (64-byte vectors, 16 lanes) but compiled without AVX-512, so
// that its two intrinsic helpers (Philox's widening multiply, the all-lanes test) take their generic fallbacks.
// On CPUs without AVX-512 this runs every other line of the 16-lane code that the avx512 path executes.
#define DOJO_KERNEL_NAMESPACE wide_generic
#define DOJO_KERNEL_TABLE_FUNCTION wide_generic_kernels
#define DOJO_KERNEL_VECTOR_BYTES 64
#include "kernels/encode_kernel.inc"
