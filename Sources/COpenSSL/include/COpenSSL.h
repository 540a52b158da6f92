// OpenSSL 3 for Swift: the headers Bindery uses, plus static inline wrappers for
// what OpenSSL exposes only as macros (which Swift cannot call).
#ifndef BINDERY_COPENSSL_H
#define BINDERY_COPENSSL_H

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

/// SHA-256 of `length` bytes at `data` into `digest` (32 bytes). Returns 1 on success.
static inline int bindery_sha256(const void *data, size_t length, unsigned char digest[32]) {
    unsigned int written = 0;
    return EVP_Digest(data, length, digest, &written, EVP_sha256(), NULL) == 1 && written == 32;
}

#endif
