// Most wrappers are static inline in include/COpenSSL.h; the ticket-key callback needs state.
#include "COpenSSL.h"
#include <pthread.h>
#include <stdlib.h>

struct bindery_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int valid;
};

static pthread_mutex_t ticket_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bindery_ticket_key ticket_current, ticket_previous;

static int make_key(struct bindery_ticket_key *key) {
    if (RAND_bytes(key->name, sizeof key->name) != 1) return 0;
    if (RAND_bytes(key->aes, sizeof key->aes) != 1) return 0;
    if (RAND_bytes(key->hmac, sizeof key->hmac) != 1) return 0;
    key->valid = 1;
    return 1;
}

int bindery_tls_rotate_ticket_keys(void) {
    struct bindery_ticket_key fresh;
    if (!make_key(&fresh)) return 0;
    pthread_mutex_lock(&ticket_lock);
    ticket_previous = ticket_current;
    ticket_current = fresh;
    pthread_mutex_unlock(&ticket_lock);
    OPENSSL_cleanse(&fresh, sizeof fresh);
    return 1;
}

static int set_hmac(EVP_MAC_CTX *hctx, unsigned char *key) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

static int ticket_callback(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                           EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int encrypt) {
    (void)ssl;
    struct bindery_ticket_key key;
    int result = 1;
    pthread_mutex_lock(&ticket_lock);
    if (!ticket_current.valid) {
        pthread_mutex_unlock(&ticket_lock);
        return encrypt ? -1 : 0;
    }
    if (encrypt) {
        key = ticket_current;
    } else if (memcmp(key_name, ticket_current.name, 16) == 0) {
        key = ticket_current;
    } else if (ticket_previous.valid && memcmp(key_name, ticket_previous.name, 16) == 0) {
        key = ticket_previous;
        result = 2;  // valid, but issue a ticket under the current key
    } else {
        pthread_mutex_unlock(&ticket_lock);
        return 0;    // unknown key: full handshake
    }
    pthread_mutex_unlock(&ticket_lock);
    if (encrypt) {
        memcpy(key_name, key.name, 16);
        if (RAND_bytes(iv, 16) != 1) return -1;
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv) != 1) return -1;
    } else if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv) != 1) {
        return -1;
    }
    if (!set_hmac(hctx, key.hmac)) return -1;
    OPENSSL_cleanse(&key, sizeof key);
    return result;
}

int bindery_tls_enable_rotating_tickets(SSL_CTX *ctx) {
    pthread_mutex_lock(&ticket_lock);
    int have = ticket_current.valid;
    pthread_mutex_unlock(&ticket_lock);
    if (!have && !bindery_tls_rotate_ticket_keys()) return 0;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_callback) == 1;
}

// ---- development PKI -------------------------------------------------------------------

static char *bio_to_string(BIO *bio) {
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    char *copy = malloc((size_t)length + 1);
    if (copy == NULL) return NULL;
    memcpy(copy, data, (size_t)length);
    copy[length] = 0;
    return copy;
}

static int add_extension(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (extension == NULL) return 0;
    int ok = X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
    return ok;
}

int bindery_pki_issue(const char *ca_cert_pem, const char *ca_key_pem, const char *common_name, const char *san,
                      int usage, int days, char **cert_pem, char **key_pem) {
    int ok = 0;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = X509_new(), *ca_cert = NULL;
    EVP_PKEY *ca_key = NULL;
    BIO *cert_out = BIO_new(BIO_s_mem()), *key_out = BIO_new(BIO_s_mem());
    if (key == NULL || cert == NULL || cert_out == NULL || key_out == NULL) goto done;
    if (ca_cert_pem != NULL) {
        BIO *in = BIO_new_mem_buf(ca_cert_pem, -1);
        ca_cert = PEM_read_bio_X509(in, NULL, NULL, NULL);
        BIO_free(in);
        in = BIO_new_mem_buf(ca_key_pem, -1);
        ca_key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
        BIO_free(in);
        if (ca_cert == NULL || ca_key == NULL) goto done;
    }
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) goto done;
    serial[0] &= 0x7f;
    BIGNUM *number = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert));
    BN_free(number);
    X509_set_version(cert, 2);
    // notBefore is five minutes back, for clocks a little behind; the validity period
    // (notAfter - notBefore) is still exactly `days`.
    X509_gmtime_adj(X509_getm_notBefore(cert), -300);
    X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400 - 300);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Bindery development", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)common_name, -1, -1, 0);
    X509_set_issuer_name(cert, ca_cert ? X509_get_subject_name(ca_cert) : name);
    X509_set_pubkey(cert, key);
    X509 *issuer = ca_cert ? ca_cert : cert;
    if (!add_extension(cert, issuer, NID_subject_key_identifier, "hash")) goto done;
    if (!add_extension(cert, issuer, NID_authority_key_identifier, "keyid:always")) goto done;
    if (usage == 0) {
        if (!add_extension(cert, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) goto done;
        if (!add_extension(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign")) goto done;
    } else {
        if (!add_extension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE")) goto done;
        if (!add_extension(cert, issuer, NID_key_usage, "critical,digitalSignature")) goto done;
        if (!add_extension(cert, issuer, NID_ext_key_usage, usage == 1 ? "serverAuth" : "clientAuth")) goto done;
    }
    if (san != NULL && san[0] != 0 && !add_extension(cert, issuer, NID_subject_alt_name, san)) goto done;
    if (X509_sign(cert, ca_key ? ca_key : key, EVP_sha256()) == 0) goto done;
    if (PEM_write_bio_X509(cert_out, cert) != 1) goto done;
    if (PEM_write_bio_PrivateKey(key_out, key, NULL, NULL, 0, NULL, NULL) != 1) goto done;
    *cert_pem = bio_to_string(cert_out);
    *key_pem = bio_to_string(key_out);
    ok = *cert_pem != NULL && *key_pem != NULL;
done:
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    X509_free(cert);
    X509_free(ca_cert);
    BIO_free(cert_out);
    BIO_free(key_out);
    return ok;
}

// ---- revocation against the CRLs in force now ---------------------------------------------

int bindery_tls_peer_revoked(SSL_CTX *current, SSL *ssl) {
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL) return -1;
    X509_STORE *store = SSL_CTX_get_cert_store(current);
    if (store == NULL || !X509_STORE_lock(store)) return 0;
    int revoked = 0;
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);
    for (int i = 0; objects != NULL && i < sk_X509_OBJECT_num(objects) && !revoked; i++) {
        X509_OBJECT *object = sk_X509_OBJECT_value(objects, i);
        if (X509_OBJECT_get_type(object) != X509_LU_CRL) continue;
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(object);
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(peer)) != 0) continue;
        X509_REVOKED *entry = NULL;
        if (X509_CRL_get0_by_cert(crl, &entry, peer) == 1) revoked = 1;
    }
    X509_STORE_unlock(store);
    return revoked;
}

// ------------------------------------------------------------------------------------
// Ed25519, for signed audit checkpoints.
// ------------------------------------------------------------------------------------

int bindery_ed25519_public_key(const unsigned char seed[32], unsigned char public_key[32]) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    if (!key) return 0;
    size_t length = 32;
    int ok = EVP_PKEY_get_raw_public_key(key, public_key, &length) == 1 && length == 32;
    EVP_PKEY_free(key);
    return ok;
}

int bindery_ed25519_sign(const unsigned char seed[32], const void *message, size_t length, unsigned char signature[64]) {
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    size_t written = 64;
    int ok = key && context && EVP_DigestSignInit(context, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(context, signature, &written, message, length) == 1 && written == 64;
    EVP_MD_CTX_free(context);
    EVP_PKEY_free(key);
    return ok;
}

int bindery_ed25519_verify(const unsigned char public_key[32], const void *message, size_t length, const unsigned char signature[64]) {
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, public_key, 32);
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int ok = key && context && EVP_DigestVerifyInit(context, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestVerify(context, signature, 64, message, length) == 1;
    EVP_MD_CTX_free(context);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
}

// ------------------------------------------------------------------------------------
// SHA-256 without a fetch or an allocation per call.
// ------------------------------------------------------------------------------------

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

int bindery_sha256(const void *data, size_t length, unsigned char digest[32]) {
    static __thread EVP_MD_CTX *context;
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md) return 0;
    if (!context && !(context = EVP_MD_CTX_new())) return 0;
    unsigned int written = 0;
    return EVP_DigestInit_ex2(context, sha256_md, NULL) == 1 && EVP_DigestUpdate(context, data, length) == 1 &&
           EVP_DigestFinal_ex(context, digest, &written) == 1 && written == 32;
}
