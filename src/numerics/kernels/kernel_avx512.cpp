// The conversion kernels compiled for the avx512 path; flags come from src/numerics/CMakeLists.txt.
#define DOJO_KERNEL_NAMESPACE avx512
#define DOJO_KERNEL_TABLE_FUNCTION avx512_kernels
#define DOJO_KERNEL_VECTOR_BYTES 64
#include "encode_kernel.inc"
