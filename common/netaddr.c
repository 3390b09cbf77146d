/* netaddr.c - classifying socket addresses. */
#include "common/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
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

static uint32_t
ipv4_at(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	    (uint32_t)b[2] << 8 | b[3];
}

struct range6 {
	uint8_t net[16];
	unsigned bits;
};

/* IANA's special-purpose IPv6 registry, the parts that are neither
 * globally reachable nor a carrier of an IPv4 address (those are judged by
 * that address below). */
static const struct range6 not_public6[] = {
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48 },	/* local NAT64 */
	{ { 0x01 }, 64 },			/* discard-only */
	{ { 0x20, 0x01, 0x00, 0x02 }, 48 },	/* benchmarking */
	{ { 0x20, 0x01, 0x00, 0x10 }, 28 },	/* ORCHID (deprecated) */
	{ { 0x20, 0x01, 0x00, 0x20 }, 28 },	/* ORCHIDv2 */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32 },	/* documentation */
	{ { 0x3f, 0xff }, 20 },			/* documentation */
	{ { 0xfc }, 7 },			/* unique local */
	{ { 0xfe, 0x80 }, 10 },			/* link-local */
	{ { 0xfe, 0xc0 }, 10 },			/* site-local (deprecated) */
	{ { 0xff }, 8 },			/* multicast */
};

static bool
in_range6(const uint8_t b[16], const struct range6 *r)
{
	unsigned whole = r->bits / 8, rest = r->bits % 8;

	if (memcmp(b, r->net, whole) != 0) {
		return false;
	}
	return rest == 0 ||
	    ((b[whole] ^ r->net[whole]) & (0xff00u >> rest)) == 0;
}

/* Translation and tunnelling forms reach an IPv4 host: a webhook to
 * 64:ff9b::10.0.0.1 is a webhook to 10.0.0.1 wherever a NAT64 gateway or
 * a 6to4 relay sits on the path, so each is judged by what it embeds. */
static bool
public6(const uint8_t b[16])
{
	static const uint8_t zero[10] = { 0 };
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };

	if (memcmp(b, zero, sizeof(zero)) == 0 &&
	    ((b[10] == 0xff && b[11] == 0xff) ||	/* IPv4-mapped */
	    (b[10] == 0 && b[11] == 0))) {	/* IPv4-compatible, ::, ::1 */
		return public4(ipv4_at(b + 12));
	}
	if (memcmp(b, nat64, sizeof(nat64)) == 0) {	/* 64:ff9b::/96 */
		return public4(ipv4_at(b + 12));
	}
	if (b[0] == 0x20 && b[1] == 0x02) {		/* 6to4, 2002::/16 */
		return public4(ipv4_at(b + 2));
	}
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
		/* Teredo, 2001::/32: the server's address, then the client's
		 * with every bit inverted. */
		return public4(ipv4_at(b + 4)) && public4(~ipv4_at(b + 12));
	}
	for (size_t i = 0; i < sizeof(not_public6) / sizeof(not_public6[0]);
	    i++) {
		if (in_range6(b, &not_public6[i])) {
			return false;
		}
	}
	return true;
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

bool
netaddr_client_key(const char *text, char out[NETADDR_KEY_LEN])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	uint8_t b[16];
	char prefix[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, text, b) == 1) {
		return inet_ntop(AF_INET, b, out, NETADDR_KEY_LEN) != NULL;
	}
	if (inet_pton(AF_INET6, text, b) != 1) {
		return false;
	}
	if (memcmp(b, mapped, sizeof(mapped)) == 0) {
		return inet_ntop(AF_INET, b + 12, out, NETADDR_KEY_LEN) != NULL;
	}
	memset(b + 8, 0, 8);
	if (inet_ntop(AF_INET6, b, prefix, sizeof(prefix)) == NULL) {
		return false;
	}
	return snprintf(out, NETADDR_KEY_LEN, "%s/64", prefix) <
	    NETADDR_KEY_LEN;
}
