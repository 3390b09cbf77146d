/* netaddr.c - classifying socket addresses. */
#include "common/netaddr.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct range4 {
	uint32_t net;
	unsigned bits;
};

/* IANA's special-purpose IPv4 registry, the parts no public host is in. */
static const struct range4 not_public4[] = {
	{ 0x00000000, 8 },	/* "this network" */
	{ 0x0a000000, 8 },	/* private */
	{ 0x64400000, 10 },	/* shared address space (carrier NAT) */
	{ 0x7f000000, 8 },	/* loopback */
	{ 0xa9fe0000, 16 },	/* link-local, cloud metadata */
	{ 0xac100000, 12 },	/* private */
	{ 0xc0000000, 24 },	/* IETF protocol assignments */
	{ 0xc0000200, 24 },	/* documentation */
	{ 0xc0a80000, 16 },	/* private */
	{ 0xc6120000, 15 },	/* benchmarking */
	{ 0xc6336400, 24 },	/* documentation */
	{ 0xcb007100, 24 },	/* documentation */
	{ 0xe0000000, 4 },	/* multicast */
	{ 0xf0000000, 4 },	/* reserved, broadcast */
};

static bool
public4(uint32_t a)
{
	for (size_t i = 0; i < sizeof(not_public4) / sizeof(not_public4[0]);
	    i++) {
		uint32_t mask = 0xffffffffu << (32 - not_public4[i].bits);
		if ((a & mask) == not_public4[i].net) {
			return false;
		}
	}
	return true;
}

static bool
public6(const uint8_t b[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	static const uint8_t zero[15] = { 0 };

	if (memcmp(b, mapped, sizeof(mapped)) == 0) {
		return public4((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
		    (uint32_t)b[14] << 8 | b[15]);
	}
	if (memcmp(b, zero, sizeof(zero)) == 0) {
		return false;		/* :: and ::1 */
	}
	return (b[0] & 0xfe) != 0xfc &&			/* fc00::/7 */
	    /* link-local fe80::/10, and the deprecated site-local fec0::/10 */
	    !(b[0] == 0xfe && (b[1] & 0x80) == 0x80) &&
	    b[0] != 0xff &&				/* multicast */
	    !(b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d &&
	    b[3] == 0xb8);				/* 2001:db8::/32 */
}

bool
netaddr_is_public(const struct sockaddr *sa)
{
	if (sa == NULL) {
		return false;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return public4(ntohl(in->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		return public6(in6->sin6_addr.s6_addr);
	}
	return false;
}
