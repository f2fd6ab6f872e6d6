// KILN_HD marks a function that runs on the host and on a CUDA device: plain C++ outside
// nvcc, so the CPU code and the CPU tests use the very functions the kernels use.
#pragma once

#if defined(__CUDACC__)
#define KILN_HD __host__ __device__
#else
#define KILN_HD
#endif
