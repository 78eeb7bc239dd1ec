/* Crypto helpers: thin wrappers over OpenSSL so no other module includes it. */
#include "reqrun/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

void rr_sha256(const void *data, size_t len, uint8_t out[RR_SHA256_LEN])
{
    unsigned int n = RR_SHA256_LEN;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void rr_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    uint8_t out[RR_SHA256_LEN])
{
    unsigned int n = RR_SHA256_LEN;
    HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n);
}

void rr_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool rr_unhex(const char *hex, uint8_t *out, size_t len)
{
    if (strlen(hex) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

rr_status rr_random_bytes(void *out, size_t len)
{
    return RAND_bytes(out, (int)len) == 1 ? RR_OK : RR_ERR;
}

void rr_base32_lower(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && o + 1 < outlen; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5 && o + 1 < outlen) {
            out[o++] = alphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0 && o + 1 < outlen)
        out[o++] = alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
}

size_t rr_base64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    size_t need = 4 * ((len + 2) / 3) + 1;
    if (outlen < need)
        return 0;
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

static bool is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

rr_status rr_base64_decode(const char *in, uint8_t *out, size_t outcap, size_t *outlen)
{
    size_t len = strlen(in);
    if (len == 0 || len % 4 != 0)
        return RR_INVALID;
    /* EVP_DecodeBlock reads '=' anywhere as a zero digit ("Zm=v", "====" decode), so
     * check the shape first: alphabet characters, then at most two '=' at the end. */
    size_t pad = in[len - 1] == '=' ? (in[len - 2] == '=' ? 2 : 1) : 0;
    for (size_t i = 0; i < len - pad; i++) {
        if (!is_base64_char(in[i]))
            return RR_INVALID;
    }
    if (outcap < len / 4 * 3)
        return RR_TOO_LARGE;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return RR_INVALID;
    /* EVP_DecodeBlock counts padding as zero bytes. */
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    *outlen = (size_t)n;
    return RR_OK;
}

bool rr_consttime_eq(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}
