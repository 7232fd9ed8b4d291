# CMake toolchain for libFLAC (libflac-sys's CMake build) in the wasm32-wasip2 plugin build;
# the Makefile points CMAKE_TOOLCHAIN_FILE_wasm32_wasip2 here for codec-flac's build alone.
# The compilers are .cargo/config.toml's CC/CXX_wasm32_wasip2 (cmake-rs names none when there is
# a toolchain file), their flags its CFLAGS/CXXFLAGS (which cmake-rs passes on). WASI has no
# C++ runtime and no threads: try-compiles build static libraries (nothing is linked), and
# libFLAC's multithreaded encoder is left out. The archive holds LLVM bitcode (-flto), so it is
# written by llvm-ar, whose symbol index wasm-ld reads.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER "$ENV{CC_wasm32_wasip2}")
set(CMAKE_CXX_COMPILER "$ENV{CXX_wasm32_wasip2}")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
find_program(CMAKE_AR NAMES llvm-ar-14 llvm-ar REQUIRED)
find_program(CMAKE_RANLIB NAMES llvm-ranlib-14 llvm-ranlib REQUIRED)
set(ENABLE_MULTITHREADING OFF CACHE BOOL "no threads in the plugin sandbox")
set(WITH_STACK_PROTECTOR OFF CACHE BOOL "no libssp for wasm")
set(WITH_FORTIFY_SOURCE OFF CACHE BOOL "no fortified libc for wasm")
