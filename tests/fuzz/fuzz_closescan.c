/*
 * libFuzzer target: closescan over a server's byte stream. Properties: no crash; the code does
 * not depend on how the stream is cut into reads (the first byte picks a read size, the rest
 * is the stream); once a code is found, more bytes do not change it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "wsbeat/closescan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct closescan whole = {0}, cut = {0};
	size_t step;
	unsigned code;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;

	closescan_start(&whole);
	closescan_feed(&whole, data, size);
	closescan_start(&cut);
	for (size_t i = 0; i < size; i += step) {
		unsigned before = closescan_code(&cut);
		closescan_feed(&cut, data + i, size - i < step ? size - i : step);
		if (before != CLOSESCAN_NONE && closescan_code(&cut) != before)
			abort();
	}
	code = closescan_code(&whole);
	if (code != closescan_code(&cut))
		abort();
	closescan_feed(&whole, data, size);
	if (code != CLOSESCAN_NONE && closescan_code(&whole) != code)
		abort();
	return 0;
}
