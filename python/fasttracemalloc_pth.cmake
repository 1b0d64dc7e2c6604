# Installs the start-up switch (fasttracemalloc_switch.pth) into the root of
# the wheel's platlib, i.e. site-packages, where site.py executes it.
# Included right after project() through CMAKE_PROJECT_fasttracemalloc_INCLUDE
# (set in pyproject.toml), so it needs no line in anyone's CMakeLists.txt.
# Only meaningful under scikit-build-core (SKBUILD), whose install prefix is
# the platlib directory.
if(DEFINED SKBUILD)
  install(FILES "${CMAKE_CURRENT_LIST_DIR}/fasttracemalloc_switch.pth" DESTINATION ".")
endif()
