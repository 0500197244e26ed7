# Install rules for the systemd integration: the unit and the journal message catalog.
# Included from the top-level CMakeLists.txt (include(cmake/install.cmake)), after the wsbeat
# target. The unit's paths (/usr/sbin/wsbeat, /etc/wsbeat/wsbeat.conf) are fixed, so install
# with the prefix /usr for a system package:
#   cmake --install build --prefix /usr
# then `systemctl daemon-reload` and `journalctl --update-catalog`.
#
# systemd looks for units and catalogs under lib/, never lib64/ or a multiarch directory, so
# these use a literal "lib" rather than CMAKE_INSTALL_LIBDIR.
set(WSBEAT_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
  "Where the systemd unit is installed, relative to CMAKE_INSTALL_PREFIX")
set(WSBEAT_SYSTEMD_CATALOGDIR "lib/systemd/catalog" CACHE STRING
  "Where the journal message catalog is installed, relative to CMAKE_INSTALL_PREFIX")

install(FILES ${CMAKE_CURRENT_LIST_DIR}/../systemd/wsbeat.service
  DESTINATION ${WSBEAT_SYSTEMD_UNITDIR} COMPONENT systemd)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/../systemd/wsbeat.catalog
  DESTINATION ${WSBEAT_SYSTEMD_CATALOGDIR} COMPONENT systemd)
