/*
 * libFuzzer target: url_parse and url_parse_hostport. Properties: no crash; a parsed URL has a
 * host, a path starting with '/', a port > 0, and a display form without the query or userinfo
 * (display never contains '?' or '@' unless the host or path before the query did); parsing the
 * display form again succeeds and gives the same host, port and scheme.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], host[256];
	char *text;
	struct url u, v;
	uint16_t port = 0;

	if (size > 8192)
		return 0;
	text = strndup((const char *)data, size); /* the parsers read a C string: up to a NUL */
	if (!text)
		return 0;

	memset(&u, 0, sizeof u);
	if (url_parse(text, &u, err, sizeof err) == 0) {
		if (!u.host || !u.host[0] || !u.path || u.path[0] != '/' || u.port == 0 ||
		    !u.display || !u.host_header)
			abort();
		if (strchr(u.display, '?'))
			abort(); /* the query is never in the loggable form */
		(void)url_host_is_numeric(&u);
		memset(&v, 0, sizeof v);
		if (url_parse(u.display, &v, err, sizeof err) != 0)
			abort();
		if (strcmp(u.host, v.host) != 0 || u.port != v.port || u.tls != v.tls)
			abort();
		url_fini(&v);
	} else if (!err[0]) {
		abort();
	}
	url_fini(&u); /* also after a failed parse: url.h says it is safe on a zeroed struct */

	err[0] = '\0';
	if (url_parse_hostport(text, host, sizeof host, &port, err, sizeof err) == 0) {
		if (port == 0 || strnlen(host, sizeof host) == sizeof host)
			abort();
	} else if (!err[0]) {
		abort();
	}
	free(text);
	return 0;
}
