/* rng: a small fast generator (xoshiro256**) for jitter and phases; not for secrets. */
#ifndef WSBEAT_RNG_H
#define WSBEAT_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

/* Seeds from seed (tests) or, when seed is 0, from getrandom(2). */
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1). */
double rng_unit(struct rng *r);

#endif
