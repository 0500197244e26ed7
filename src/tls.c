/* Client TLS contexts built from the feed's tls settings. */
#include "wsbeat/tls.h"
#include "wsbeat/url.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void on_info(const SSL *cssl, int where, int ret);

static void ssl_error(char *err, size_t errlen, const char *what, const char *path)
{
	char reason[160] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, path, reason);
}

static int load_trust(SSL_CTX *ctx, const struct cfg_tls *t, char *err, size_t errlen)
{
	if (!t->ca_file && !t->ca_path) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			ssl_error(err, errlen, "tls:", "cannot load the system trust store");
			return -1;
		}
		return 0;
	}
	if (SSL_CTX_load_verify_locations(ctx, t->ca_file, t->ca_path) != 1) {
		ssl_error(err, errlen, t->ca_file ? "tls.ca_file" : "tls.ca_path",
		          t->ca_file ? t->ca_file : t->ca_path);
		return -1;
	}
	return 0;
}

static int load_client_cert(SSL_CTX *ctx, const struct cfg_tls *t, char *err, size_t errlen)
{
	if (!t->cert_file)
		return 0;
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
		ssl_error(err, errlen, "tls.cert_file", t->cert_file);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1) {
		ssl_error(err, errlen, "tls.key_file", t->key_file);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, "tls.key_file", t->key_file);
		return -1;
	}
	return 0;
}

SSL_CTX *tls_client_ctx_new(const struct cfg_tls *t, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		ssl_error(err, errlen, "tls:", "cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* Idle connections give their read/write buffers back: most of a wss feed's memory. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	if (load_trust(ctx, t, err, errlen) < 0 || load_client_cert(ctx, t, err, errlen) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* At the start of each handshake: the SNI, and the session to offer (on_info). */
	SSL_CTX_set_info_callback(ctx, on_info);
	return ctx;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool tls_same_profile(const struct cfg_tls *a, const struct cfg_tls *b)
{
	/* verify too: a context's remembered sessions must never cross from feeds that do not
	 * check certificates to feeds that do (see session resumption below). */
	return a->verify == b->verify && same_str(a->ca_file, b->ca_file) &&
	       same_str(a->ca_path, b->ca_path) && same_str(a->cert_file, b->cert_file) &&
	       same_str(a->key_file, b->key_file);
}

/*
 * Session resumption. Each context keeps, per server, the last session the server gave it (a
 * TLS 1.3 ticket or a TLS 1.2 session), and a new connection to the same server offers it: the
 * server may then skip sending its certificate and the client decoding and verifying it, most
 * of a handshake's CPU on both sides (a reconnect storm of thousands of feeds, or the start).
 * A resumed session carries the verification result of the handshake that made it, so sessions
 * never cross contexts, and a context's feeds all verify or all do not (tls_same_profile); the
 * server key is the name the certificate is checked against (or the SNI when none is) and the
 * port (see server_key). A server that declines gets a full handshake. The entries live as
 * long as the context: one per distinct server, never per connection.
 */
struct remembered {
	struct remembered *next;
	SSL_SESSION *session; /* NULL until the server gave one */
	char key[];
};

struct session_cache {
	struct remembered **buckets;
	size_t n, n_buckets; /* n_buckets: a power of two */
};

static int ctx_index = -1, ssl_index = -1;

static void cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct session_cache *c = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (!c)
		return;
	for (size_t i = 0; i < c->n_buckets; i++)
		for (struct remembered *r = c->buckets[i], *next; r; r = next) {
			next = r->next;
			SSL_SESSION_free(r->session);
			free(r);
		}
	free(c->buckets);
	free(c);
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static int grow(struct session_cache *c)
{
	size_t nb = c->n_buckets ? 2 * c->n_buckets : 16;
	struct remembered **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < c->n_buckets; i++)
		for (struct remembered *r = c->buckets[i], *next; r; r = next) {
			size_t j = hash(r->key) & (nb - 1);
			next = r->next;
			r->next = b[j];
			b[j] = r;
		}
	free(c->buckets);
	c->buckets = b;
	c->n_buckets = nb;
	return 0;
}

static struct remembered *find_or_add(struct session_cache *c, const char *key)
{
	struct remembered *r;
	size_t len = strlen(key), i;
	uint64_t h = hash(key);

	if (c->n_buckets) {
		for (r = c->buckets[h & (c->n_buckets - 1)]; r; r = r->next)
			if (strcmp(r->key, key) == 0)
				return r;
	}
	if (c->n >= c->n_buckets && grow(c) < 0)
		return NULL;
	r = calloc(1, sizeof(*r) + len + 1);
	if (!r)
		return NULL;
	memcpy(r->key, key, len + 1);
	i = h & (c->n_buckets - 1);
	r->next = c->buckets[i];
	c->buckets[i] = r;
	c->n++;
	return r;
}

/*
 * OpenSSL hands over each new session of a connection attached to an entry. A TLS 1.3 ticket
 * is kept as a copy: the connection's own session object is marked not resumable when the
 * connection ends without a close_notify, which servers often skip, and RFC 8446 (unlike TLS
 * 1.2's RFC 5246) does not ask for that. A TLS 1.2 session is kept as is, under 1.2's rule.
 */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
	struct remembered *r = SSL_get_ex_data(ssl, ssl_index);
	SSL_SESSION *keep;

	if (!r || !SSL_SESSION_is_resumable(session))
		return 0; /* not kept: OpenSSL drops its reference */
	keep = SSL_version(ssl) == TLS1_3_VERSION ? SSL_SESSION_dup(session) : session;
	if (!keep)
		return 0;
	SSL_SESSION_free(r->session);
	r->session = keep;
	return keep == session; /* 1: the reference passed to us is now ours */
}

/*
 * The server a connection is for, as browsers and curl key their sessions: the name the
 * certificate is checked against (else the SNI) and the port, and the peer's address only when
 * there is no name. Another address of the same name can only accept the session if it holds
 * the ticket key of the server that issued it (the same operator's fleet); anyone else gets a
 * full handshake and must show a certificate for the name. Keyed by name, the entries are
 * bounded by the names configured, not by every address they ever resolve to.
 */
static void server_key(const SSL *ssl, char *key, size_t len)
{
	const char *name = X509_VERIFY_PARAM_get0_host(SSL_get0_param((SSL *)ssl), 0);
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	char addr[INET6_ADDRSTRLEN] = "";
	unsigned port = 0;
	int fd = SSL_get_fd(ssl);

	if (!name)
		name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (fd >= 0 && getpeername(fd, (struct sockaddr *)&sa, &sl) == 0) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&sa;
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&sa;
		bool is6 = sa.ss_family == AF_INET6;

		if (!name)
			inet_ntop(sa.ss_family,
			          is6 ? (const void *)&v6->sin6_addr : (const void *)&v4->sin_addr,
			          addr, sizeof(addr));
		port = ntohs(is6 ? v6->sin6_port : v4->sin_port);
	}
	snprintf(key, len, "%s|%u", name ? name : addr, port);
}

/*
 * libwebsockets 4.1.6 sets the URL's host as the SNI whatever it is, and RFC 6066 section 3
 * says a literal IPv4 or IPv6 address is not permitted in it: such a name (or an empty one)
 * is taken back before the ClientHello is built. The certificate is still checked against the
 * address (lws sets it with X509_VERIFY_PARAM_set1_ip_asc).
 */
bool tls_sni_allowed(const char *name)
{
	char v6[INET6_ADDRSTRLEN + 2];
	size_t n = name ? strlen(name) : 0;

	if (!n || url_ip_literal(name))
		return false;
	if (name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof(v6)) {
		memcpy(v6, name + 1, n - 2);
		v6[n - 2] = '\0';
		return !(url_ip_literal(v6) && strchr(v6, ':'));
	}
	return true;
}

/*
 * Called by OpenSSL as the handshake starts, before the ClientHello is built: the one moment the
 * SNI can be dropped and a session can still be offered. The SSL is ours to change (OpenSSL
 * passes it as const to every info callback). Only for the first handshake: never
 * mid-connection (TLS 1.2 renegotiation).
 */
static void on_info(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)cssl;
	struct session_cache *c;
	struct remembered *r;
	char key[300];

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START) || !SSL_in_before(ssl))
		return;
	c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	r = NULL;
	if (c) {
		/* Keyed before the SNI goes: an address is then keyed as it always was. */
		server_key(ssl, key, sizeof(key));
		r = find_or_add(c, key);
	}
	if (!tls_sni_allowed(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)))
		SSL_set_tlsext_host_name(ssl, NULL);
	if (!r)
		return; /* no resumption (out of memory): a full handshake */
	SSL_set_ex_data(ssl, ssl_index, r);
	if (r->session && SSL_SESSION_is_resumable(r->session))
		SSL_set_session(ssl, r->session);
}

int tls_resumption_enable(SSL_CTX *ctx)
{
	struct session_cache *c;

	if (ctx_index < 0)
		ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, cache_free);
	if (ssl_index < 0)
		ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (ctx_index < 0 || ssl_index < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c || SSL_CTX_set_ex_data(ctx, ctx_index, c) != 1) {
		free(c);
		return -1;
	}
	/* Sessions go to on_new_session only: OpenSSL's own client cache is never consulted. */
	SSL_CTX_set_session_cache_mode(ctx,
	                               SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	return 0;
}
