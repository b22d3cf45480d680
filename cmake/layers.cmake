# runnel_layer(NAME [PUBLIC deps...] [PRIVATE deps...])
#
# One static library per folder of src/. Each layer's headers are reachable only as
# "<layer>/header.h" through an include directory that holds just that layer (a symlink in the
# build tree), so including a header of a layer you do not link fails at compile time.
function(runnel_layer name)
  cmake_parse_arguments(L "" "" "PUBLIC;PRIVATE" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  set(inc ${CMAKE_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${inc})
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${inc}/${name} SYMBOLIC)
  if(srcs)
    add_library(runnel_${name} STATIC ${srcs})
    target_include_directories(runnel_${name} PUBLIC ${inc})
    target_link_libraries(runnel_${name} PUBLIC ${L_PUBLIC} PRIVATE ${L_PRIVATE})
  else()
    add_library(runnel_${name} INTERFACE)
    target_include_directories(runnel_${name} INTERFACE ${inc})
    target_link_libraries(runnel_${name} INTERFACE ${L_PUBLIC})
  endif()
endfunction()

# runnel_test(NAME SOURCES... LIBS libs...): one GoogleTest executable, registered with CTest.
function(runnel_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} runnel_testing GTest::gtest GTest::gtest_main)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)
endfunction()
