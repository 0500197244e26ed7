/* Rendezvous hashing of feed names onto shards. */
#include "wsbeat/shard.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsbeat/url.h"

/* 64-bit FNV-1a over the name, then the shard number, finished with a splitmix64 mix so
 * that weights of neighbouring shards are independent. Stable across builds and machines. */
static uint64_t weight(const char *name, unsigned shard)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((shard >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

unsigned shard_of(const char *name, unsigned n)
{
	unsigned best = 0;
	uint64_t best_w = 0;

	for (unsigned k = 0; k < n; k++) {
		uint64_t w = weight(name, k);
		if (k == 0 || w > best_w) {
			best = k;
			best_w = w;
		}
	}
	return best;
}

bool shard_owns(const char *name, unsigned k, unsigned n)
{
	return n == 0 || shard_of(name, n) == k;
}

static int parse_uint(const char *s, const char *end, unsigned *out)
{
	unsigned long v = 0;

	if (s == end || end - s > 5)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	*out = (unsigned)v;
	return 0;
}

int shard_parse(const char *text, unsigned *k, unsigned *n)
{
	const char *slash = strchr(text, '/');

	if (!slash || parse_uint(text, slash, k) < 0 ||
	    parse_uint(slash + 1, slash + strlen(slash), n) < 0)
		return -1;
	return *n >= 1 && *n <= SHARD_MAX && *k < *n ? 0 : -1;
}

int shard_listen(const char *listen, unsigned k, char *out, size_t outlen, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;

	if (url_parse_hostport(listen, host, sizeof(host), &port, err, errlen) < 0)
		return -1;
	if ((unsigned)port + k > 65535) {
		snprintf(err, errlen, "port %u plus shard %u is beyond 65535", port, k);
		return -1;
	}
	snprintf(out, outlen, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port + k);
	return 0;
}
