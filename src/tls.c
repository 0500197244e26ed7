/* Client TLS contexts built from the feed's tls settings. */
#include "wsbeat/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

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
	return ctx;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool tls_same_profile(const struct cfg_tls *a, const struct cfg_tls *b)
{
	return same_str(a->ca_file, b->ca_file) && same_str(a->ca_path, b->ca_path) &&
	       same_str(a->cert_file, b->cert_file) && same_str(a->key_file, b->key_file);
}
