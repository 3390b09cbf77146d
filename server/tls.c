/* tls.c - the PEM files of HTTPS, read once. */
#include "server/tls.h"

#include <errno.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far more than a certificate chain and its key take. */
#define PEM_MAX_BYTES (1u << 20)

/* The whole file at path as a NUL-terminated string. */
static char *
read_pem(const char *key, const char *path, struct error *err)
{
	FILE *f = fopen(path, "rb");
	char *text = NULL;
	size_t n;

	if (f == NULL) {
		error_set(err, ERR_CONFIG, "%s: cannot open %s: %s", key, path,
		    strerror(errno));
		return NULL;
	}
	text = malloc(PEM_MAX_BYTES + 1);
	if (text == NULL) {
		error_set(err, ERR_NOMEM, "out of memory");
		goto fail;
	}
	n = fread(text, 1, PEM_MAX_BYTES + 1, f);
	if (ferror(f) || n > PEM_MAX_BYTES || n == 0) {
		error_set(err, ERR_CONFIG, "%s: cannot read %s (empty, or "
		    "longer than %u bytes)", key, path, PEM_MAX_BYTES);
		goto fail;
	}
	text[n] = '\0';
	if (strstr(text, "-----BEGIN ") == NULL) {
		error_set(err, ERR_CONFIG, "%s: %s is not a PEM file", key,
		    path);
		goto fail;
	}
	fclose(f);
	return text;
fail:
	free(text);
	fclose(f);
	return NULL;
}

bool
tls_pem_load(const struct config *cfg, struct tls_pem *pem,
    struct error *err)
{
	pem->cert = NULL;
	pem->key = NULL;
	if (cfg->tls_cert_file[0] == '\0' && cfg->tls_key_file[0] == '\0') {
		return true;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		error_set(err, ERR_CONFIG, "tls_cert_file is set but this "
		    "libmicrohttpd was built without TLS support");
		return false;
	}
	pem->cert = read_pem("tls_cert_file", cfg->tls_cert_file, err);
	pem->key = pem->cert != NULL ? read_pem("tls_key_file",
	    cfg->tls_key_file, err) : NULL;
	return pem->key != NULL;
}

void
tls_pem_finish(struct tls_pem *pem)
{
	if (pem->key != NULL) {
		sodium_memzero(pem->key, strlen(pem->key));
	}
	free(pem->key);
	free(pem->cert);
	pem->key = NULL;
	pem->cert = NULL;
}
