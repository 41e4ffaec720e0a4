// The conversion kernels compiled for the avx2 path; flags come from src/numerics/CMakeLists.txt.
#define DOJO_KERNEL_NAMESPACE avx2
#define DOJO_KERNEL_TABLE_FUNCTION avx2_kernels
#define DOJO_KERNEL_VECTOR_BYTES 32
#include "encode_kernel.inc"
