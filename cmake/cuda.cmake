# The cuda backend (src/backend/cuda/): NVIDIA GPUs through the CUDA runtime and cuBLASLt.
# PI0_CUDA=AUTO (default) builds it when nvcc is found, ON requires it, OFF leaves it out. The
# rest of pi0.c stays C; CUDA C++ is compiled only in that directory. Built for the GPUs robots
# carry and the datacenter ones: Ampere (sm_80, sm_86, Jetson Orin sm_87), Ada (sm_89),
# Hopper (sm_90), Blackwell (sm_100, sm_120); override with CMAKE_CUDA_ARCHITECTURES.
# Sets PI0_HAVE_CUDA, PI0_CUDA_SOURCES, PI0_CUDA_LIBS and PI0_CUDA_LIB_NAMES (for the installed
# package: the CUDA libraries by absolute path). Included before the library targets exist.
# Without an installed toolkit, PI0_CUDA_TOOLKIT_DIR names one unpacked from NVIDIA's PyPI wheels
# by scripts/cuda_pypi.sh (nvcc, headers, static cudart, cuBLASLt); an installed nvcc wins.
set(PI0_CUDA AUTO CACHE STRING "Build the cuda backend: AUTO (when nvcc is found), ON or OFF")
set_property(CACHE PI0_CUDA PROPERTY STRINGS AUTO ON OFF)
set(PI0_CUDA_TOOLKIT_DIR "" CACHE PATH "A CUDA toolkit folder from scripts/cuda_pypi.sh, used when no nvcc is installed")
set(PI0_HAVE_CUDA OFF)
set(PI0_CUDA_SOURCES "")
set(PI0_CUDA_LIBS "")
set(PI0_CUDA_LIB_NAMES "")
if(NOT PI0_CUDA STREQUAL "OFF")
  if(PI0_CUDA_TOOLKIT_DIR AND NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(PI0_INSTALLED_NVCC nvcc)
    if(NOT PI0_INSTALLED_NVCC)
      if(NOT EXISTS "${PI0_CUDA_TOOLKIT_DIR}/bin/nvcc")
        message(FATAL_ERROR "pi0: PI0_CUDA_TOOLKIT_DIR=${PI0_CUDA_TOOLKIT_DIR} has no bin/nvcc (make it with scripts/cuda_pypi.sh)")
      endif()
      set(ENV{CUDACXX} "${PI0_CUDA_TOOLKIT_DIR}/bin/nvcc")
      set(CUDAToolkit_ROOT "${PI0_CUDA_TOOLKIT_DIR}")
    endif()
  endif()
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
    set(PI0_CUDA_SOURCES
      ${PROJECT_SOURCE_DIR}/src/backend/cuda/cuda_backend.cu
      ${PROJECT_SOURCE_DIR}/src/backend/cuda/cuda_kernels.cu
      ${PROJECT_SOURCE_DIR}/src/backend/cuda/cuda_matmul.cu)
    # the static CUDA runtime and cuBLASLt; what the static runtime needs from the system
    set(PI0_CUDA_LIBS ${CUDA_cublasLt_LIBRARY} ${CUDA_cudart_static_LIBRARY} stdc++ dl rt pthread)
    set(PI0_CUDA_LIB_NAMES ${CUDA_cublasLt_LIBRARY} ${CUDA_cudart_static_LIBRARY} stdc++ dl rt pthread)
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
