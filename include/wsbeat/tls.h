/*
 * tls: client TLS contexts, one per distinct TLS profile (trust anchors and client
 * certificate). lws keeps TLS settings per vhost, so the shell creates one client vhost per
 * profile and hands it the context built here. OpenSSL only; no lws.
 */
#ifndef WSBEAT_TLS_H
#define WSBEAT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "wsbeat/cfg.h"

typedef struct ssl_ctx_st SSL_CTX;

/*
 * Builds a client context: TLS 1.2 or later; trust from tls.ca_file / tls.ca_path, which
 * replace the system store (as curl's --cacert does), else the system store; the client
 * certificate chain and key when given; OpenSSL's buffers released while a connection is idle;
 * no SNI for a host that is an IP address (tls_sni_allowed).
 * Returns NULL with a reason naming the file in err.
 */
SSL_CTX *tls_client_ctx_new(const struct cfg_tls *t, char *err, size_t errlen);

/* False for what RFC 6066 keeps out of the SNI: an IPv4 or IPv6 literal (bracketed or not),
 * and an empty or missing name. */
bool tls_sni_allowed(const char *name);

/* True when a and b can share one context: same trust anchors, client certificate, verify. */
bool tls_same_profile(const struct cfg_tls *a, const struct cfg_tls *b);

/*
 * Session resumption (TLS 1.3 tickets, TLS 1.2 sessions): the context remembers the last
 * session each server gave it and offers it to the next connection to that server (see
 * tls.c). 0, or -1 when out of memory (then connections just do full handshakes).
 */
int tls_resumption_enable(SSL_CTX *ctx);

#endif
