/* netaddr.h - what kind of network address a socket address is. */
#ifndef MILEPOST_COMMON_NETADDR_H
#define MILEPOST_COMMON_NETADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/* True when sa is an IPv4 or IPv6 address of the public internet: false
 * for loopback, private (RFC 1918, IPv6 unique local and site-local),
 * link-local (with the clouds' metadata services at 169.254.169.254),
 * shared (100.64/10), unspecified, multicast, reserved and documentation
 * ranges, and for any other family. An IPv4-mapped IPv6 address is judged as its IPv4. Used
 * to keep webhooks, whose URLs come from the API, off the internal
 * network. */
bool netaddr_is_public(const struct sockaddr *sa);

#endif
