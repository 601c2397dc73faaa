# The cuda backend (src/backend/cuda/): NVIDIA GPUs through the CUDA runtime and cuBLASLt.
# PI0_CUDA=AUTO (default) builds it when nvcc is found, ON requires it, OFF leaves it out. The
# rest of pi0.c stays C; CUDA C++ is compiled only in that directory. Built for the GPUs robots
# carry and the datacenter ones: Ampere (sm_80, sm_86, Jetson Orin sm_87), Ada (sm_89),
# Hopper (sm_90), Blackwell (sm_100, sm_120); override with CMAKE_CUDA_ARCHITECTURES.
set(PI0_CUDA AUTO CACHE STRING "Build the cuda backend: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE PI0_CUDA PROPERTY STRINGS AUTO ON OFF)
set(PI0_HAVE_CUDA OFF)
if(NOT PI0_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80 86 87 89 90 100 120)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    target_sources(libpi0 PRIVATE
      src/backend/cuda/cuda_backend.cu
      src/backend/cuda/cuda_kernels.cu
      src/backend/cuda/cuda_matmul.cu)
    set_property(TARGET libpi0 PROPERTY CUDA_ARCHITECTURES ${CMAKE_CUDA_ARCHITECTURES})
    target_compile_definitions(libpi0 PUBLIC PI0_HAVE_CUDA)
    target_compile_options(libpi0 PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
    target_link_libraries(libpi0 PUBLIC CUDA::cudart_static CUDA::cublasLt stdc++)
    set(PI0_HAVE_CUDA ON)
    message(STATUS "pi0: cuda backend: yes (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures ${CMAKE_CUDA_ARCHITECTURES})")
  elseif(PI0_CUDA STREQUAL "ON")
    message(FATAL_ERROR "pi0: PI0_CUDA=ON but no CUDA compiler (nvcc) was found")
  else()
    message(STATUS "pi0: cuda backend: no (nvcc not found)")
  endif()
else()
  message(STATUS "pi0: cuda backend: no (PI0_CUDA=OFF)")
endif()
