// Most wrappers are static inline in include/COpenSSL.h; the ticket-key callback needs state.
#include "COpenSSL.h"
#include <pthread.h>

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
