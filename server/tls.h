/* tls.h - the certificate and private key HTTPS is served with.
 *
 * Reads the PEM files named by tls_cert_file and tls_key_file once, at
 * start (a new certificate takes a restart), and checks that the
 * libmicrohttpd linked in can serve TLS at all. */
#ifndef MILEPOST_SERVER_TLS_H
#define MILEPOST_SERVER_TLS_H

#include <stdbool.h>

#include "common/config.h"
#include "common/error.h"

struct tls_pem {
	char *cert;	/* NUL-terminated PEM, NULL: plain HTTP */
	char *key;
};

/* Fills pem from cfg's files, or leaves both NULL when TLS is not
 * configured. False with err set (ERR_CONFIG) when a file cannot be read
 * or libmicrohttpd was built without TLS; pem must still be finished. */
bool tls_pem_load(const struct config *cfg, struct tls_pem *pem,
    struct error *err);

/* Frees pem's text, wiping the private key first. */
void tls_pem_finish(struct tls_pem *pem);

#endif
