# Project-wide compiler settings: warnings, portable baseline ISA, sanitizers.

add_library(qlink_build_flags INTERFACE)
add_library(qlink::build_flags ALIAS qlink_build_flags)

target_compile_options(qlink_build_flags INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wno-missing-field-initializers)
if(QLINK_WERROR)
  target_compile_options(qlink_build_flags INTERFACE -Werror)
endif()

# A shipped binary runs on any x86-64-v2 machine (SSE4.2, POPCNT). Faster paths
# are compiled per file with their own -m flags and chosen at run time; never
# -march=native: the terminal computer is not the build machine.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(QLINK_X86 ON)
  add_compile_options(-march=x86-64-v2 -mtune=generic)
else()
  set(QLINK_X86 OFF)
endif()

if(QLINK_ENABLE_ASAN)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Adds each listed sub-folder that has a CMakeLists.txt. Parts of a module are
# written by different people at different times; a part that is not there yet
# is simply not built.
function(qlink_add_parts)
  foreach(part ${ARGN})
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${part}/CMakeLists.txt)
      add_subdirectory(${part})
    endif()
  endforeach()
endfunction()

# qlink_module(<name> [DEPS targets...]): the STATIC library qlink_<name> with
# alias qlink::<name>, public headers in include/, private ones in src/.
function(qlink_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  add_library(qlink_${name} STATIC)
  add_library(qlink::${name} ALIAS qlink_${name})
  target_include_directories(qlink_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                           PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(qlink_${name} PUBLIC ${M_DEPS} PRIVATE qlink::build_flags)
  set_target_properties(qlink_${name} PROPERTIES OUTPUT_NAME qlink_${name} POSITION_INDEPENDENT_CODE ON)
endfunction()

# Call at the end of a module's CMakeLists: a module whose parts are not written
# yet still gets a (empty) library, so the targets that link to it configure.
function(qlink_module_finish name)
  get_target_property(srcs qlink_${name} SOURCES)
  if(NOT srcs)
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${name}_empty.cpp "// qlink::${name} has no sources yet\n")
    target_sources(qlink_${name} PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/${name}_empty.cpp)
  endif()
endfunction()
