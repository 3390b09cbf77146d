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

#endif
