/*
 * status_page: the HTML status page (GET /), rendered from the template src/status_page.html
 * (embedded at build time) a slice at a time like /status. Readable without JavaScript: the
 * summary and one row per feed are rendered here, problem feeds (every state but open) first;
 * the page's own script then polls /status. Pure apart from a one-time hash of the template.
 */
#ifndef WSBEAT_STATUS_PAGE_H
#define WSBEAT_STATUS_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "wsbeat/feed.h"
#include "wsbeat/mbuf.h"
#include "wsbeat/metrics.h"

/* The Content-Security-Policy the page is served with: nothing but its own inline script and
 * style (by SHA-256) and fetches of its own origin. NULL if the template lacks either element. */
const char *status_page_csp(void);

/* Rows rendered into the page itself (problem feeds first); the rest are counted in one last
 * row. The page's script shows them all from /status. */
#define STATUS_PAGE_MAX_ROWS 1000

struct status_page_cursor {
	size_t pos;    /* next byte of the template */
	size_t i;      /* next feed of this pass */
	unsigned pass; /* rows: 0 = problem feeds, 1 = open feeds, 2 = done */
	bool in_rows;
	size_t rows, left_out; /* rendered, and left out beyond STATUS_PAGE_MAX_ROWS */
};

/* Appends the next slice (at most budget feeds' rows): 1 when complete, 0 when more remains,
 * -1 on allocation failure. Start with a zeroed cursor; feeds must stay valid until done. */
int status_page_step(struct status_page_cursor *c, struct mbuf *out, struct feed *const *feeds,
                     size_t n, const struct metrics_now *now, size_t budget);

/* The template in use and its length (for tests). */
const char *status_page_template(size_t *len);

/* Human durations as the page shows them: "12.3 s", "4 min", "2.5 h", "3.1 d". */
void status_page_duration(double secs, char *buf, size_t len);

#endif
