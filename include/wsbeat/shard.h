/*
 * shard: which feeds this instance keeps when one configuration is shared by N instances.
 * Rendezvous (highest random weight) hashing of the feed name: each feed belongs to exactly
 * one shard, and going from N to N+1 shards moves only the feeds the new shard wins, about
 * 1/(N+1) of them. Pure.
 */
#ifndef WSBEAT_SHARD_H
#define WSBEAT_SHARD_H

#include <stdbool.h>
#include <stddef.h>

#define SHARD_MAX 1024

/* Parses "K/N" (0 <= K < N <= SHARD_MAX). 0, or -1 if malformed. */
int shard_parse(const char *text, unsigned *k, unsigned *n);

/* The shard (0..n-1) that owns name. */
unsigned shard_of(const char *name, unsigned n);

/* True when shard k of n owns name; n == 0 means no sharding (owns everything). */
bool shard_owns(const char *name, unsigned k, unsigned n);

/*
 * metrics.port_per_shard: the address shard k serves on, "ADDR:PORT" with k added to PORT
 * (IPv6 in brackets). 0, or -1 with a reason in err (a malformed address, or a port beyond
 * 65535).
 */
int shard_listen(const char *listen, unsigned k, char *out, size_t outlen, char *err,
                 size_t errlen);

#endif
