# Runs the layering check on SOURCE_DIR and passes only if the check fails with a message that
# contains EXPECT_FILE and EXPECT_DETAIL (the file and line, and what it included or reached).
execute_process(
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${SOURCE_DIR} -P ${CHECK}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "the layering check accepted ${SOURCE_DIR}, which breaks the rule")
endif()
foreach(expected IN ITEMS "${EXPECT_FILE}" "${EXPECT_DETAIL}")
  string(FIND "${out}${err}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the layering check failed without naming '${expected}':\n${out}${err}")
  endif()
endforeach()
