/*
 * Preloaded by test_metrics: getifaddrs() fails as it does under the shipped unit, whose
 * RestrictAddressFamilies= has no AF_NETLINK. libwebsockets 4.1 then bound its listeners to
 * every interface; the metrics endpoint must still listen on exactly the configured address.
 */
#include <errno.h>
#include <ifaddrs.h>

int getifaddrs(struct ifaddrs **ifap)
{
	(void)ifap;
	errno = EAFNOSUPPORT;
	return -1;
}
