/* Hashes, MACs, random bytes and encodings over OpenSSL (plus RFC 4648 base32, which
 * OpenSSL lacks). */
#ifndef RR_CRYPTO_H
#define RR_CRYPTO_H

#include "reqrun/status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RR_SHA256_LEN 32
#define RR_SHA256_HEX_BUF 65

void rr_sha256(const void *data, size_t len, uint8_t out[RR_SHA256_LEN]);
void rr_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[RR_SHA256_LEN]);
/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void rr_hex(const uint8_t *in, size_t len, char *out);
/* Parses exactly 2*len hex digits; false on anything else. */
bool rr_unhex(const char *hex, uint8_t *out, size_t len);
/* Cryptographically random bytes; RR_ERR if the generator fails. */
rr_status rr_random_bytes(void *out, size_t len);
/* RFC 4648 base32, lower case, no padding; writes ceil(len*8/5) chars plus NUL. */
void rr_base32_lower(const uint8_t *in, size_t len, char *out, size_t outlen);
/* Standard base64 with padding. Returns the length written (NUL-terminated), 0 if the
 * output buffer is too small. */
size_t rr_base64_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
/* Decodes standard base64; returns RR_INVALID on bad input, RR_TOO_LARGE if out is short. */
rr_status rr_base64_decode(const char *in, uint8_t *out, size_t outcap, size_t *outlen);
/* Constant-time comparison of two equal-length buffers. */
bool rr_consttime_eq(const void *a, const void *b, size_t len);

#endif
