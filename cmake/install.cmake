# Install rules for the systemd integration (the units and the journal message catalog) and the
# man pages. Included from the top-level CMakeLists.txt (include(cmake/install.cmake)), after
# the wsbeat target. The units' paths (/usr/sbin/wsbeat, /etc/wsbeat/wsbeat.conf) are fixed, so
# install with the prefix /usr for a system package:
#   cmake --install build --prefix /usr
# then `systemctl daemon-reload` and `journalctl --update-catalog`. (cmake/cpack.cmake builds
# a .deb from the same rules, and its maintainer scripts do both.)
#
# systemd looks for units and catalogs under lib/, never lib64/ or a multiarch directory, so
# these use a literal "lib" rather than CMAKE_INSTALL_LIBDIR.
set(WSBEAT_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where the systemd units are installed, relative to CMAKE_INSTALL_PREFIX")
set(WSBEAT_SYSTEMD_CATALOGDIR "lib/systemd/catalog" CACHE STRING
  "Where the journal message catalog is installed, relative to CMAKE_INSTALL_PREFIX")

# wsbeat.service runs every feed; wsbeat@K-N.service runs shard K of N (see wsbeat(8)).
install(FILES ${CMAKE_CURRENT_LIST_DIR}/../systemd/wsbeat.service
  ${CMAKE_CURRENT_LIST_DIR}/../systemd/wsbeat@.service
  DESTINATION ${WSBEAT_SYSTEMD_UNITDIR} COMPONENT systemd)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/../systemd/wsbeat.catalog
  DESTINATION ${WSBEAT_SYSTEMD_CATALOGDIR} COMPONENT systemd)

# The connect_command helpers (contrib/helpers/: python3, openssl), where the README's recipes
# and the unit expect them. Architecture-independent scripts: lib/, like the units.
set(WSBEAT_HELPERDIR "lib/wsbeat/helpers" CACHE STRING
  "Where the connect_command helpers are installed, relative to CMAKE_INSTALL_PREFIX")
install(PROGRAMS ${CMAKE_CURRENT_LIST_DIR}/../contrib/helpers/kucoin-token
  ${CMAKE_CURRENT_LIST_DIR}/../contrib/helpers/binance-listenkey
  ${CMAKE_CURRENT_LIST_DIR}/../contrib/helpers/coinbase-jwt
  DESTINATION ${WSBEAT_HELPERDIR} COMPONENT helpers)

# Man pages, installed gzip-compressed (gzip -n: no name or time stamp, so builds reproduce).
set(WSBEAT_MAN_PAGES wsbeat.8 wsbeat.conf.5)
set(_wsbeat_man_gz "")
foreach(page IN LISTS WSBEAT_MAN_PAGES)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" _section "${page}")
  set(_src ${CMAKE_CURRENT_LIST_DIR}/../man/${page})
  set(_out ${CMAKE_BINARY_DIR}/man/${page})
  add_custom_command(OUTPUT ${_out}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${CMAKE_COMMAND} -E copy ${_src} ${_out}
    COMMAND gzip -9nf ${_out}
    DEPENDS ${_src}
    COMMENT "Compressing man page ${page}"
    VERBATIM)
  list(APPEND _wsbeat_man_gz ${_out}.gz)
  install(FILES ${_out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section} COMPONENT doc)
endforeach()
add_custom_target(wsbeat_man ALL DEPENDS ${_wsbeat_man_gz})
