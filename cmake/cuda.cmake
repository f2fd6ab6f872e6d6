# Decides whether the CUDA backend is built. KILN_CUDA=AUTO builds it when nvcc is
# found; OFF never looks; ON fails the configure when CUDA is missing. Whenever CUDA is
# built (ON, or AUTO with nvcc), cuDNN and cuBLASLt are required: the configure fails naming
# what is missing.
set(KILN_HAVE_CUDA OFF)
if(NOT KILN_CUDA STREQUAL "OFF")
    if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
        set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
    endif()
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
            set(CMAKE_CUDA_ARCHITECTURES 90)
        endif()
        enable_language(CUDA)
        # CMake 3.25 does not know nvcc's C++20 flag.
        if(CMAKE_VERSION VERSION_LESS 3.26)
            set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION -std=c++20)
            set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION -std=c++20)
        endif()
        set(CMAKE_CUDA_STANDARD 20)
        set(CMAKE_CUDA_STANDARD_REQUIRED ON)
        # Debian 12's CMake (3.25.1) sets a property on CUDA::nvToolsExt without checking that
        # the target exists, in a branch taken only when the project's minimum version is 3.25;
        # CUDA 13 has no libnvToolsExt (NVTX3 is header-only), so the configure fails. Fixed
        # in CMake 3.25.2: until then the toolkit is found as a 3.24 project would find it.
        if(CMAKE_VERSION VERSION_LESS 3.25.2)
            set(kiln_min_version ${CMAKE_MINIMUM_REQUIRED_VERSION})
            set(CMAKE_MINIMUM_REQUIRED_VERSION 3.24)
            find_package(CUDAToolkit REQUIRED)
            set(CMAKE_MINIMUM_REQUIRED_VERSION ${kiln_min_version})
        else()
            find_package(CUDAToolkit REQUIRED)
        endif()
        # Building CUDA means building the CUDA backend and its tests: a toolkit without
        # cuDNN or cuBLASLt fails here, loudly, instead of quietly leaving them out.
        find_path(KILN_CUDNN_INCLUDE cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
        find_library(KILN_CUDNN_LIB cudnn HINTS ${CUDAToolkit_LIBRARY_DIR})
        set(kiln_cuda_missing "")
        if(NOT KILN_CUDNN_INCLUDE)
            list(APPEND kiln_cuda_missing "cuDNN header (cudnn.h)")
        endif()
        if(NOT KILN_CUDNN_LIB)
            list(APPEND kiln_cuda_missing "cuDNN library (libcudnn)")
        endif()
        if(NOT TARGET CUDA::cublasLt)
            list(APPEND kiln_cuda_missing "cuBLASLt (libcublasLt, CUDA::cublasLt)")
        endif()
        if(kiln_cuda_missing)
            list(JOIN kiln_cuda_missing ", " kiln_cuda_missing_text)
            message(FATAL_ERROR
                "kiln: building CUDA (KILN_CUDA=${KILN_CUDA}, nvcc ${CMAKE_CUDA_COMPILER}) but "
                "missing: ${kiln_cuda_missing_text} (searched ${CUDAToolkit_INCLUDE_DIRS} and "
                "${CUDAToolkit_LIBRARY_DIR}). Install them into the CUDA toolkit, point "
                "KILN_CUDNN_INCLUDE / KILN_CUDNN_LIB at cuDNN, or configure with -DKILN_CUDA=OFF "
                "for a CPU-only build.")
        endif()
        add_library(kiln_cudnn INTERFACE IMPORTED)
        target_include_directories(kiln_cudnn INTERFACE ${KILN_CUDNN_INCLUDE})
        target_link_libraries(kiln_cudnn INTERFACE ${KILN_CUDNN_LIB})
        # The architectures the binary carries, for the startup check against the device
        # (engine/cuda/arch_check.h): commas, since a definition cannot hold a ';'.
        string(REPLACE ";" "," KILN_CUDA_ARCH_LIST "${CMAKE_CUDA_ARCHITECTURES}")
        set(KILN_CUDA_WARNINGS -Xcompiler=-Wall,-Wextra --Werror=all-warnings)
        if(NOT KILN_WERROR)
            set(KILN_CUDA_WARNINGS -Xcompiler=-Wall,-Wextra)
        endif()
        set(KILN_HAVE_CUDA ON)
        message(STATUS "kiln: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, archs ${CMAKE_CUDA_ARCHITECTURES})")
    elseif(KILN_CUDA STREQUAL "ON")
        message(FATAL_ERROR "KILN_CUDA=ON but no CUDA compiler was found")
    else()
        message(STATUS "kiln: no nvcc found, building the CPU backend only")
    endif()
else()
    message(STATUS "kiln: CUDA backend OFF (KILN_CUDA=OFF)")
endif()
