# The layering check (docs/decisions.md, "Layers"): every library of src/ shares the include root
# src/, so the compiler cannot stop a wrong include; this script does, and src/CMakeLists.txt
# runs it before any layer library compiles. Usage:
#   cmake -DSOURCE_DIR=<src> [-DSTAMP=<file>] -P check_layers.cmake
# Fails, naming each file, line and forbidden include, when
# - a file of a layer (the first folder under src/) includes a header of a layer it may not use;
# - a file of http/ reaches store/ through the headers it includes, at any depth;
# - a folder under src/ is in no layer.
# Files directly in src/ (main.cpp) wire everything together and may include anything.

cmake_minimum_required(VERSION 3.25)

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "check_layers.cmake: set -DSOURCE_DIR=<the src folder>")
endif()

# The layers and what each may include directly (its own folder always).
set(layers util core store provider app http config)
set(may_include_util)
set(may_include_core)
set(may_include_store core util)
set(may_include_provider core util)
set(may_include_app core store provider util)
set(may_include_http app core util)
set(may_include_config core util store provider http)
# Layers a file may not reach even through other layers' headers: http sees app only through
# app headers free of store types.
set(never_reaches_http store)

get_filename_component(SOURCE_DIR "${SOURCE_DIR}" ABSOLUTE)  # a relative one: from here
file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/*.hpp" "${SOURCE_DIR}/*.cpp")
if(NOT files)
  # A wrong path must not pass as a clean tree.
  message(FATAL_ERROR "check_layers.cmake: no .hpp or .cpp files under ${SOURCE_DIR}")
endif()
list(SORT files)

# The project includes ("layer/...") of each file, as written.
foreach(file IN LISTS files)
  string(MAKE_C_IDENTIFIER "${file}" id)
  file(STRINGS "${SOURCE_DIR}/${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]+\"")
  set(includes_${id})
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" included "${line}")
    list(APPEND includes_${id} "${included}")
  endforeach()
endforeach()

# The line of `file` that includes `included`, for the message.
function(line_of file included out)
  file(READ "${SOURCE_DIR}/${file}" content)
  string(FIND "${content}" "\"${included}\"" at)
  set(line "?")
  if(at GREATER -1)
    string(SUBSTRING "${content}" 0 ${at} before)
    string(REGEX MATCHALL "\n" newlines "${before}")
    list(LENGTH newlines count)
    math(EXPR line "${count} + 1")
  endif()
  set(${out} ${line} PARENT_SCOPE)
endfunction()

function(layer_of path out)
  string(FIND "${path}" "/" slash)
  if(slash EQUAL -1)
    set(${out} "" PARENT_SCOPE)
  else()
    string(SUBSTRING "${path}" 0 ${slash} first)
    set(${out} "${first}" PARENT_SCOPE)
  endif()
endfunction()

set(violations)
foreach(file IN LISTS files)
  layer_of("${file}" layer)
  if(layer STREQUAL "")
    continue()  # the composition root
  endif()
  if(NOT layer IN_LIST layers)
    list(APPEND violations "src/${file}: src/${layer}/ is in no layer; add it to cmake/check_layers.cmake and docs/decisions.md")
    continue()
  endif()
  string(MAKE_C_IDENTIFIER "${file}" id)
  set(allowed ${layer} ${may_include_${layer}})
  foreach(included IN LISTS includes_${id})
    layer_of("${included}" target)
    if(target STREQUAL "" OR NOT target IN_LIST layers)
      continue()  # not a project header (e.g. a generated one next to the file)
    endif()
    if(NOT target IN_LIST allowed)
      line_of("${file}" "${included}" line)
      string(REPLACE ";" ", " allowed_text "${allowed}")
      list(APPEND violations "src/${file}:${line}: includes \"${included}\": ${layer}/ may include only ${allowed_text}")
    endif()
  endforeach()

  # Everything this file reaches through project headers, breadth first, with the path to it.
  if(NOT never_reaches_${layer})
    continue()
  endif()
  set(queue)
  set(seen)
  foreach(included IN LISTS includes_${id})
    if(EXISTS "${SOURCE_DIR}/${included}" AND NOT included IN_LIST seen)
      list(APPEND queue "${included}")
      list(APPEND seen "${included}")
      string(MAKE_C_IDENTIFIER "${included}" qid)
      set(via_${qid} "${included}")
    endif()
  endforeach()
  while(queue)
    list(POP_FRONT queue header)
    string(MAKE_C_IDENTIFIER "${header}" hid)
    layer_of("${header}" target)
    list(LENGTH via_${hid} depth)
    if(target IN_LIST never_reaches_${layer} AND depth GREATER 1)  # depth 1: reported above
      string(REGEX REPLACE ";.*" "" first "${via_${hid}}")
      line_of("${file}" "${first}" line)
      string(REPLACE ";" " -> " chain "${via_${hid}}")
      list(APPEND violations "src/${file}:${line}: reaches \"${header}\" (${chain}): ${layer}/ must not see ${target}/, not even through another layer's header")
      continue()
    endif()
    foreach(next IN LISTS includes_${hid})
      if(EXISTS "${SOURCE_DIR}/${next}" AND NOT next IN_LIST seen)
        list(APPEND queue "${next}")
        list(APPEND seen "${next}")
        string(MAKE_C_IDENTIFIER "${next}" nid)
        set(via_${nid} ${via_${hid}} "${next}")
      endif()
    endforeach()
  endwhile()
endforeach()

if(violations)
  list(LENGTH violations count)
  set(text "")
  foreach(v IN LISTS violations)
    string(APPEND text "  ${v}\n")
  endforeach()
  message(FATAL_ERROR
    "Layering violated (${count}); the rule is in docs/decisions.md, \"Layers\":\n${text}")
endif()

if(STAMP)
  file(TOUCH "${STAMP}")
endif()
