/* Unit tests of crypto.c: SHA-256 and HMAC-SHA256 known vectors, hex, RFC 4648 base32
 * and base64, random bytes, constant-time compare, and the signed-request worked example
 * of DESIGN §6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sha256_hex(const void *data, size_t len, char out[RR_SHA256_HEX_BUF])
{
    uint8_t d[RR_SHA256_LEN];
    rr_sha256(data, len, d);
    rr_hex(d, sizeof d, out);
}

static void hmac_hex(const void *key, size_t keylen, const void *data, size_t len,
                     char out[RR_SHA256_HEX_BUF])
{
    uint8_t d[RR_SHA256_LEN];
    rr_hmac_sha256(key, keylen, data, len, d);
    rr_hex(d, sizeof d, out);
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[RR_SHA256_HEX_BUF];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    sha256_hex(million, 1000000, hex);
    free(million);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* Binary input with NUL bytes: the length counts, not strlen. */
    char a[RR_SHA256_HEX_BUF], b[RR_SHA256_HEX_BUF];
    sha256_hex("a\0b", 3, a);
    sha256_hex("a", 1, b);
    assert_string_not_equal(a, b);
}

static void test_hmac_sha256_rfc4231(void **state)
{
    (void)state;
    char hex[RR_SHA256_HEX_BUF];
    uint8_t key1[20];
    memset(key1, 0x0b, sizeof key1);
    hmac_hex(key1, sizeof key1, "Hi There", 8, hex);
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    const char *d2 = "what do ya want for nothing?";
    hmac_hex("Jefe", 4, d2, strlen(d2), hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* A key longer than the block size is hashed first. */
    uint8_t key6[131];
    memset(key6, 0xaa, sizeof key6);
    const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_hex(key6, sizeof key6, d6, strlen(d6), hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* DESIGN §6 worked example of a signed request. */
static void test_signature_worked_example(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"gpt-5-nano\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
        "\"wait\":true}";
    char body_hash[RR_SHA256_HEX_BUF];
    sha256_hex(body, strlen(body), body_hash);
    assert_string_equal(body_hash,
                        "c993df908cac4a3b24eac66b30d91c8b9cb4a09c49eb567b67e04cf9d2633e30");
    char to_sign[512];
    int n = snprintf(to_sign, sizeof to_sign, "POST\n/v1/chat/completions\n%s\n%s\n%s",
                     "2026-11-24T06:00:00.000Z", "6f1c2a9e0b7d4c3f8a5e1d2c3b4a5f60", body_hash);
    assert_true(n > 0 && (size_t)n < sizeof to_sign);
    const char *secret = "sig_test_secret";
    char sig[RR_SHA256_HEX_BUF];
    hmac_hex(secret, strlen(secret), to_sign, (size_t)n, sig);
    assert_string_equal(sig, "a394bb68d9e68b371e521103df00cd490ba0e1ef925961f734bb4af10a836c97");
}

static void test_hex_and_unhex(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char hex[2 * sizeof in + 1];
    memset(hex, 'Z', sizeof hex);
    rr_hex(in, sizeof in, hex);
    assert_string_equal(hex, "00017f80abff");
    rr_hex(in, 0, hex);
    assert_string_equal(hex, "");

    uint8_t out[6];
    assert_true(rr_unhex("00017f80abff", out, sizeof out));
    assert_memory_equal(out, in, sizeof in);
    assert_true(rr_unhex("00017F80ABFF", out, sizeof out)); /* upper case accepted */
    assert_memory_equal(out, in, sizeof in);
    assert_false(rr_unhex("00017f80abf", out, sizeof out));   /* short */
    assert_false(rr_unhex("00017f80abff00", out, sizeof out)); /* long */
    assert_false(rr_unhex("00017f80abfg", out, sizeof out));   /* not hex */
    assert_false(rr_unhex("0x017f80abff", out, sizeof out));
    assert_false(rr_unhex(" 0017f80abff", out, sizeof out));
    assert_false(rr_unhex("", out, 1));
    assert_true(rr_unhex("", out, 0));
}

static void test_base32_rfc4648(void **state)
{
    (void)state;
    /* RFC 4648 §10 vectors, lower-cased, padding removed. */
    static const struct {
        const char *in, *out;
    } v[] = {
        {"", ""},         {"f", "my"},          {"fo", "mzxq"},          {"foo", "mzxw6"},
        {"foob", "mzxw6yq"}, {"fooba", "mzxw6ytb"}, {"foobar", "mzxw6ytboi"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char out[32];
        memset(out, 'Z', sizeof out);
        rr_base32_lower((const uint8_t *)v[i].in, strlen(v[i].in), out, sizeof out);
        assert_string_equal(out, v[i].out);
    }
    /* All 32 symbols appear, in order, for a bit pattern that walks 0..31. */
    const uint8_t walk[] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
                            0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf};
    char out[40];
    rr_base32_lower(walk, sizeof walk, out, sizeof out);
    assert_string_equal(out, "abcdefghijklmnopqrstuvwxyz234567");
    /* A short output buffer is never overrun and stays NUL-terminated. */
    char small[5];
    memset(small, 'Z', sizeof small);
    rr_base32_lower((const uint8_t *)"foobar", 6, small, sizeof small);
    assert_string_equal(small, "mzxw");
}

static void test_base64_rfc4648_and_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } v[] = {
        {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char enc[32];
        size_t n = rr_base64_encode((const uint8_t *)v[i].in, strlen(v[i].in), enc, sizeof enc);
        assert_int_equal(n, strlen(v[i].out));
        assert_string_equal(enc, v[i].out);
        uint8_t dec[32];
        size_t dlen = 999;
        assert_int_equal(rr_base64_decode(enc, dec, sizeof dec, &dlen), RR_OK);
        assert_int_equal(dlen, strlen(v[i].in));
        assert_memory_equal(dec, v[i].in, dlen);
    }
    /* Every byte value, at every length modulo 3. */
    uint8_t bin[258];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 1; len <= sizeof bin; len += 1) {
        char enc[400];
        size_t n = rr_base64_encode(bin, len, enc, sizeof enc);
        assert_int_equal(n, 4 * ((len + 2) / 3));
        uint8_t dec[300];
        size_t dlen = 0;
        assert_int_equal(rr_base64_decode(enc, dec, sizeof dec, &dlen), RR_OK);
        assert_int_equal(dlen, len);
        assert_memory_equal(dec, bin, len);
    }
    /* Output buffer too small for the encoding: 0, nothing claimed. */
    char tiny[4];
    assert_int_equal(rr_base64_encode((const uint8_t *)"foo", 3, tiny, sizeof tiny), 0);
}

static void test_base64_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "Zg=",       /* not a multiple of 4 */
        "Zm9vY",     /* not a multiple of 4 */
        "Zm9v!A==",  /* character outside the alphabet */
        "Zm9v\n",    /* trailing newline */
        " Zm9",      /* whitespace */
        "Zm 9",      /* whitespace inside */
        "Zm9-",      /* base64url, not standard */
        "Zm9_",      /* base64url, not standard */
        "Zm=v",      /* padding before data */
        "Z===",      /* three padding characters */
        "====",      /* padding only */
        "Zg==Zg==",  /* padding in the middle */
        "Zm9\x80",   /* non-ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t out[64];
        size_t n = 0;
        rr_status s = rr_base64_decode(bad[i], out, sizeof out, &n);
        if (s != RR_INVALID)
            fail_msg("rr_base64_decode(\"%s\") = %d, want RR_INVALID", bad[i], (int)s);
    }
    /* A short output buffer is refused, not overrun. */
    uint8_t out[5];
    size_t n = 0;
    assert_int_equal(rr_base64_decode("Zm9vYmFy", out, sizeof out, &n), RR_TOO_LARGE);
}

static void test_random_bytes(void **state)
{
    (void)state;
    uint8_t a[32], b[32], zero[32];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    memset(zero, 0, sizeof zero);
    assert_int_equal(rr_random_bytes(a, sizeof a), RR_OK);
    assert_int_equal(rr_random_bytes(b, sizeof b), RR_OK);
    assert_memory_not_equal(a, b, sizeof a);
    assert_memory_not_equal(a, zero, sizeof a);
}

static void test_consttime_eq(void **state)
{
    (void)state;
    const uint8_t a[] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t b[sizeof a];
    memcpy(b, a, sizeof a);
    assert_true(rr_consttime_eq(a, b, sizeof a));
    b[0] ^= 1;
    assert_false(rr_consttime_eq(a, b, sizeof a));
    b[0] ^= 1;
    b[sizeof b - 1] ^= 0x80;
    assert_false(rr_consttime_eq(a, b, sizeof a));
    /* Only len bytes are compared. */
    assert_true(rr_consttime_eq(a, b, sizeof a - 1));
    assert_true(rr_consttime_eq(a, b, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_sha256_rfc4231),
        cmocka_unit_test(test_signature_worked_example),
        cmocka_unit_test(test_hex_and_unhex),
        cmocka_unit_test(test_base32_rfc4648),
        cmocka_unit_test(test_base64_rfc4648_and_round_trip),
        cmocka_unit_test(test_base64_invalid),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_consttime_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
