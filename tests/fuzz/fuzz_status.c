/*
 * libFuzzer target: the `wsbeat status` JSON parser and table renderer (status_client_parse,
 * status_client_render), on input that need not be NUL-terminated (the copy has no spare byte,
 * so ASan catches a read past the end). Properties: no crash; parse and render agree on
 * whether the document is valid; an error comes with a message; the rendered table is a
 * NUL-free text ending in a newline.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/metrics.h"
#include "wsbeat/status_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct status_doc doc;
	struct mbuf out = {0};
	char *json;
	int rp, rr;

	if (size > 1 << 20)
		return 0;
	json = malloc(size ? size : 1);
	if (!json)
		return 0;
	memcpy(json, data, size);

	memset(&doc, 0, sizeof doc);
	err[0] = '\0';
	rp = status_client_parse(json, size, &doc, err, sizeof err);
	if (rp != 0 && !err[0])
		abort();
	if (rp == 0 && doc.n_feeds > 0 && !doc.feeds)
		abort();
	status_client_doc_fini(&doc);
	status_client_doc_fini(&doc); /* safe on a zeroed doc */

	err[0] = '\0';
	rr = status_client_render(json, size, (size & 1) != 0, &out, err, sizeof err);
	if ((rr == 0) != (rp == 0) && !out.oom)
		abort();
	if (rr == 0 &&
	    (!out.p || out.len == 0 || out.p[out.len - 1] != '\n' || memchr(out.p, '\0', out.len)))
		abort();
	if (rr != 0 && !err[0])
		abort();
	mbuf_free(&out);
	free(json);
	return 0;
}
