/* netaddr.h - what kind of network address a socket address is. */
#ifndef MILEPOST_COMMON_NETADDR_H
#define MILEPOST_COMMON_NETADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/* True when sa is an IPv4 or IPv6 address of the public internet: false
 * for loopback, private (RFC 1918, IPv6 unique local and site-local),
 * link-local (with the clouds' metadata services at 169.254.169.254),
 * shared (100.64/10), unspecified, multicast, reserved and documentation
 * ranges, and for any other family. IPv6 forms that carry an IPv4 address
 * (IPv4-mapped and IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16,
 * Teredo 2001::/32) are judged by the IPv4 address they carry. Used to
 * keep webhooks, whose URLs come from the API, off the internal network. */
bool netaddr_is_public(const struct sockaddr *sa);

/* Room for any netaddr_client_key: a /64 prefix with its suffix, or an
 * address (INET6_ADDRSTRLEN). */
#define NETADDR_KEY_LEN 50

/* The rate-limit key of a client address given as text (an IPv4 or IPv6
 * address, as inet_ntop or a proxy's header writes it) into out: an IPv4
 * address is itself; an IPv6 address is its /64 prefix
 * ("2001:db8:1:2::/64"), because a client is given a whole /64 and can
 * take any address in it for each request; an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, as a dual-stack socket shows IPv4 peers) is the IPv4
 * address it carries, so that one client has one bucket either way. False,
 * out undefined, when text is neither. */
bool netaddr_client_key(const char *text, char out[NETADDR_KEY_LEN]);

#endif
