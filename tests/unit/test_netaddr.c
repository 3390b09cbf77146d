/* netaddr_is_public over addresses written as text, one of each range
 * it refuses and public neighbours just outside them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <cmocka.h>

#include "common/netaddr.h"

static bool
is_public(const char *text)
{
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in in = { .sin_family = AF_INET };

	if (inet_pton(AF_INET, text, &in.sin_addr) == 1) {
		return netaddr_is_public((const struct sockaddr *)&in);
	}
	assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
	return netaddr_is_public((const struct sockaddr *)&in6);
}

static void
test_not_public(void **state)
{
	static const char *const addrs[] = {
		"0.0.0.0", "0.255.255.255", "10.0.0.1", "10.255.255.255",
		"100.64.0.1", "100.127.255.255", "127.0.0.1", "127.1.2.3",
		"169.254.169.254", "172.16.0.1", "172.31.255.255",
		"192.0.0.8", "192.0.2.1", "192.168.1.1", "198.18.0.1",
		"198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1",
		"239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1",
		"ff02::1", "2001:db8::1", "::ffff:127.0.0.1",
		"::ffff:10.1.2.3", "::ffff:169.254.169.254",
		/* IPv4 carried in IPv6 forms */
		"::10.0.0.1", "::127.0.0.1", "::169.254.169.254",
		"64:ff9b::10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",
		"64:ff9b:1::8.8.8.8", "2002:0a00:0001::1", "2002:7f00:1::",
		"2002:a9fe:a9fe:1::1", "2002:c0a8:0101::1",
		/* Teredo: a private client (10.0.0.1 inverted is f5ff:fffe),
		 * then a private server with a public client */
		"2001:0:4136:e378:8000:63bf:f5ff:fffe",
		"2001:0:0a00:0001:8000:63bf:f7f7:f7f7",
		"100::1", "2001:2::1", "2001:10::1", "2001:20::1", "3fff::1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		if (is_public(addrs[i])) {
			fail_msg("%s is not public", addrs[i]);
		}
	}
}

static void
test_public(void **state)
{
	static const char *const addrs[] = {
		"1.1.1.1", "8.8.8.8", "9.255.255.255", "11.0.0.1",
		"100.63.255.255", "100.128.0.1", "126.255.255.255",
		"128.0.0.1", "169.253.255.255", "169.255.0.1", "172.15.255.255",
		"172.32.0.1", "192.0.1.1", "192.167.255.255", "192.169.0.1",
		"198.17.255.255", "198.20.0.1", "223.255.255.255",
		"2606:4700::1111", "2a00:1450:4001::1",
		"::ffff:8.8.8.8", "2001:db9::1",
		"::8.8.8.8", "64:ff9b::808:808", "64:ff9b::1.1.1.1",
		"2002:0808:0808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
		"100:0:0:1::1", "2001:3::1", "2001:30::1",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		if (!is_public(addrs[i])) {
			fail_msg("%s is public", addrs[i]);
		}
	}
}

static void
test_other_families(void **state)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };

	(void)state;
	assert_false(netaddr_is_public(&sa));
	assert_false(netaddr_is_public(NULL));
}

static void
expect_key(const char *text, const char *want)
{
	char key[NETADDR_KEY_LEN];

	assert_true(netaddr_client_key(text, key));
	assert_string_equal(key, want);
}

/* One bucket per IPv4 address, per IPv6 /64, and an IPv4-mapped address
 * in the bucket of the IPv4 address it carries. */
static void
test_client_key(void **state)
{
	char key[NETADDR_KEY_LEN];

	(void)state;
	expect_key("203.0.113.9", "203.0.113.9");
	expect_key("2001:db8:1:2::1", "2001:db8:1:2::/64");
	expect_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64");
	expect_key("2001:db8:1:3::1", "2001:db8:1:3::/64");
	expect_key("2001:DB8:0:0:1::", "2001:db8::/64");
	expect_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffff:ffff:ffff:ffff::/64");
	expect_key("::ffff:203.0.113.9", "203.0.113.9");
	expect_key("::ffff:cb00:7109", "203.0.113.9");
	expect_key("::1", "::/64");
	assert_false(netaddr_client_key("", key));
	assert_false(netaddr_client_key("example.com", key));
	assert_false(netaddr_client_key("2001:db8::1/64", key));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_public),
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_other_families),
		cmocka_unit_test(test_client_key),
	};

	return cmocka_run_group_tests_name("netaddr", tests, NULL, NULL);
}
