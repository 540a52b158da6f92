// OpenSSL 3 for Swift: the headers Bindery uses, plus static inline wrappers for
// what OpenSSL exposes only as macros (which Swift cannot call).
#ifndef BINDERY_COPENSSL_H
#define BINDERY_COPENSSL_H

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/core_names.h>
#include <string.h>

/// SHA-256 of `length` bytes at `data` into `digest` (32 bytes). Returns 1 on success. The
/// algorithm is fetched once and each thread reuses one context: `EVP_Digest` with
/// `EVP_sha256()` fetched it and allocated a context per call, most of the cost for short inputs.
int bindery_sha256(const void *data, size_t length, unsigned char digest[32]);

// ------------------------------------------------------------------------------------
// TLS server context settings (macros in OpenSSL, so wrapped here).
// ------------------------------------------------------------------------------------

/// TLS 1.2 minimum, no renegotiation, no compression, server cipher preference, and a
/// fresh ECDHE key per handshake. Records are read ahead: one read(2) takes a record's header
/// and body (and any records behind it) instead of two, so the event loop must read on while
/// `SSL_has_pending` says OpenSSL holds input. A peer that shuts down its side without
/// close_notify is read as a clean end (SSL_OP_IGNORE_UNEXPECTED_EOF), so the requests it sent
/// before are answered: HTTP's own framing (Content-Length, chunked) finds a truncated body,
/// which is never dispatched. Returns 1 on success.
static inline int bindery_tls_configure_server(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE
                             | SSL_OP_SINGLE_ECDH_USE | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_SSLv3
                             | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_read_ahead(ctx, 1);
    return 1;
}

/// Limits a client context to protocol versions [min, max] (0: library bound), for tests.
static inline int bindery_tls_set_versions(SSL_CTX *ctx, int min, int max) {
    return SSL_CTX_set_min_proto_version(ctx, min) == 1 && SSL_CTX_set_max_proto_version(ctx, max) == 1;
}

/// SSL_CTX_set1_groups_list: the key exchange groups a context offers or accepts, in OpenSSL's
/// colon-separated syntax (e.g. "X25519:P-256:P-384"). Returns 1 on success.
static inline int bindery_tls_set_groups(SSL_CTX *ctx, const char *groups) {
    return (int)SSL_CTX_set1_groups_list(ctx, groups);
}

/// Require and verify a client certificate.
static inline void bindery_tls_require_client_certificate(SSL_CTX *ctx) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE, NULL);
}

/// Loads a PEM CRL file into the context's store and turns on CRL checking of the leaf.
static inline int bindery_tls_load_crl(SSL_CTX *ctx, const char *path) {
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == NULL || X509_load_crl_file(lookup, path, X509_FILETYPE_PEM) <= 0) return 0;
    return X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
}

/// 1 when the peer certificate of `ssl` is listed as revoked by a CRL that `current`'s store
/// holds for its issuer, 0 when not (or no CRL is loaded), -1 when there is no peer
/// certificate. Resumed sessions skip chain verification, and connections outlive CRL
/// reloads, so the server asks this per connection against the context in force now.
int bindery_tls_peer_revoked(SSL_CTX *current, SSL *ssl);

/// SSL_set_tlsext_host_name for clients (SNI).
static inline int bindery_tls_set_server_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

// ------------------------------------------------------------------------------------
// Peer identity: first URI SAN, else first DNS SAN, else subject CN.
// ------------------------------------------------------------------------------------

#define BINDERY_IDENTITY_NONE 0
#define BINDERY_IDENTITY_URI 1
#define BINDERY_IDENTITY_DNS 2
#define BINDERY_IDENTITY_CN 3

/// Writes the identity of `cert` into `out` (NUL-terminated) and returns its kind.
static inline int bindery_certificate_identity(X509 *cert, char *out, size_t capacity) {
    if (cert == NULL || capacity == 0) return BINDERY_IDENTITY_NONE;
    out[0] = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    int kinds[2] = { GEN_URI, GEN_DNS };
    int results[2] = { BINDERY_IDENTITY_URI, BINDERY_IDENTITY_DNS };
    for (int k = 0; names != NULL && k < 2; k++) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
            const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
            if (name->type != kinds[k]) continue;
            const ASN1_IA5STRING *text = kinds[k] == GEN_URI ? name->d.uniformResourceIdentifier : name->d.dNSName;
            int length = ASN1_STRING_length(text);
            if (length <= 0 || (size_t)length >= capacity || memchr(ASN1_STRING_get0_data(text), 0, (size_t)length)) continue;
            memcpy(out, ASN1_STRING_get0_data(text), (size_t)length);
            out[length] = 0;
            GENERAL_NAMES_free(names);
            return results[k];
        }
    }
    if (names != NULL) GENERAL_NAMES_free(names);
    int length = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out, (int)capacity);
    return length > 0 ? BINDERY_IDENTITY_CN : BINDERY_IDENTITY_NONE;
}

// ------------------------------------------------------------------------------------
// Session ticket keys that rotate: the current key encrypts, the previous one still
// decrypts (and asks the client to renew). Shared by every context in the process, so a
// SIGHUP reload keeps resumption working.
// ------------------------------------------------------------------------------------

// ------------------------------------------------------------------------------------
// A small certificate authority for the development PKI.
// ------------------------------------------------------------------------------------

/// Issues a P-256 key and an X.509 certificate for `common_name` with subjectAltName `san`
/// (OpenSSL syntax, e.g. "DNS:localhost,IP:127.0.0.1"; may be NULL), valid for `days` from five
/// minutes ago.
/// Signed by the CA given as PEM (`ca_cert_pem`, `ca_key_pem`), or self-signed as a CA when
/// those are NULL. `usage`: 0 CA, 1 server, 2 client. On success returns 1 and sets
/// `*cert_pem` and `*key_pem` to NUL-terminated PEM that the caller frees with free().
int bindery_pki_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *common_name, const char *san,
                      int usage, int days, char **cert_pem, char **key_pem);

/// Installs the rotating ticket-key callback on `ctx`.
int bindery_tls_enable_rotating_tickets(SSL_CTX *ctx);
/// Makes a new current key; the old current becomes the previous. Returns 1 on success.
int bindery_tls_rotate_ticket_keys(void);

/// The Ed25519 public key of the private key `seed`. Returns 1 on success.
int bindery_ed25519_public_key(const unsigned char seed[32], unsigned char public_key[32]);
/// Signs `length` bytes at `message` with the Ed25519 key `seed`. Returns 1 on success.
int bindery_ed25519_sign(const unsigned char seed[32], const void *message, size_t length, unsigned char signature[64]);
/// 1 when `signature` is `public_key`'s Ed25519 signature of the message, else 0.
int bindery_ed25519_verify(const unsigned char public_key[32], const void *message, size_t length, const unsigned char signature[64]);

#endif
