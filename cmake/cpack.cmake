# Debian package (.deb) of wsbeat, built with CPack:
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
#   -> build-deb/wsbeat_<version>_<arch>.deb
#
# Included last from the top-level CMakeLists.txt (include(cmake/cpack.cmake)), after every
# install() rule. The package holds /usr/sbin/wsbeat, /etc/wsbeat/wsbeat.conf (a conffile), the
# units wsbeat.service and wsbeat@.service, the journal catalog, the connect_command helpers,
# the man pages and the docs.
# Runtime dependencies come from dpkg-shlibdeps (package dpkg-dev) on the installed binary,
# plus the libev event-loop plugin of libwebsockets, which is dlopen()ed and so invisible to it.
# The maintainer scripts (packaging/deb/) reload systemd and the journal catalog when systemd
# runs; they never enable or start the service (the shipped configuration lists demo feeds).

set(CPACK_GENERATOR "DEB" CACHE STRING "CPack generators (cpack -G overrides)")
set(CPACK_PACKAGE_NAME "wsbeat")
set(CPACK_PACKAGE_VENDOR "The wsbeat authors")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "keeps many WebSocket feeds connected and alive")
set(CPACK_PACKAGE_CONTACT "The wsbeat authors <wsbeat@localhost>")
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
# The unit's ExecStart= is /usr/sbin/wsbeat whatever CMAKE_INSTALL_PREFIX the tree was configured
# with (configure with -DCMAKE_INSTALL_PREFIX=/usr so that GNUInstallDirs agrees).
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
# The install rules put /etc/wsbeat at an absolute path; a .deb may, other generators may not.
set(CPACK_WARN_ON_ABSOLUTE_INSTALL_DESTINATION OFF)

set(CPACK_DEBIAN_PACKAGE_NAME "wsbeat")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # wsbeat_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# The first line of Description: is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "wsbeat is a small single-threaded daemon that keeps a fleet of WebSocket client
connections (feeds) open: it connects, sends each feed's subscribe messages,
sends heartbeats (PING frames or application messages), declares a connection
dead when the answer does not come in time and reconnects with capped
exponential backoff and jitter. Every state change is one structured journal
record; optional Prometheus metrics, capture files and sharding of one
configuration over several instances.")
# Computed from the ELF dependencies of /usr/sbin/wsbeat: libwebsockets17, libconfig9,
# libc-ares2, libsystemd0, libssl3, libc6.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Added to the computed list: libwebsockets loads its libev event-loop plugin with dlopen().
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libwebsockets-evlib-ev")
# The connect_command helpers in /usr/lib/wsbeat/helpers are python3 scripts (coinbase-jwt also
# runs openssl); wsbeat itself needs neither.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "logrotate, python3, openssl")

# conffiles: dpkg keeps local edits of these across upgrades and removes them only on purge.
set(WSBEAT_DEB_CONTROL_DIR "${PROJECT_BINARY_DIR}/deb-control")
file(MAKE_DIRECTORY "${WSBEAT_DEB_CONTROL_DIR}")
file(WRITE "${WSBEAT_DEB_CONTROL_DIR}/conffiles" "${WSBEAT_SYSCONFDIR}/wsbeat.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${WSBEAT_DEB_CONTROL_DIR}/conffiles"
  "${PROJECT_SOURCE_DIR}/packaging/deb/postinst"
  "${PROJECT_SOURCE_DIR}/packaging/deb/prerm"
  "${PROJECT_SOURCE_DIR}/packaging/deb/postrm")
# Scripts 0755, conffiles 0644, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
