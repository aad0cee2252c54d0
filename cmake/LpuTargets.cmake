# Shared settings applied per target (no global flags).
# lpu_component(<target>): warnings, sanitizer, and the SystemC-compatible C++ level.
function(lpu_component target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -ffp-contract=off)
  if(LPU_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(LPU_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# Test executables: doctest, discovered by CTest.
function(lpu_test name)
  cmake_parse_arguments(T "" "LABEL" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  # CTest discovery splits doctest names at ';' and reads '[' ']' as filters: refuse them here.
  foreach(src ${T_SOURCES})
    file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/${src} bad REGEX "TEST_CASE\\(\"[^\"]*[][;]")
    if(bad)
      message(FATAL_ERROR "${CMAKE_CURRENT_SOURCE_DIR}/${src}: a TEST_CASE name contains ';', '[' or ']', which CTest discovery cannot handle")
    endif()
  endforeach()
  lpu_component(${name})
  target_link_libraries(${name} PRIVATE doctest::doctest ${T_LIBS})
  # GCC 12 reports false -Wrestrict positives inside std::string concatenation (GCC PR 105329).
  target_compile_options(${name} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
  target_compile_definitions(${name} PRIVATE
    LPU_SOURCE_DIR="${PROJECT_SOURCE_DIR}" LPU_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set(labels unit)
  if(T_LABEL)
    set(labels ${T_LABEL})
  endif()
  doctest_discover_tests(${name} PROPERTIES LABELS "${labels}"
                         WORKING_DIRECTORY ${PROJECT_BINARY_DIR})
endfunction()
