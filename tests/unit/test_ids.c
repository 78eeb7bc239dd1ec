/* Unit tests of ids.c: derived and random request ids, tenant names, idempotency keys
 * and record keys (DESIGN §4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/ids.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

/* ^rr_[a-z2-7]{26}$ checked with POSIX regex, independently of rr_id_valid. */
static bool matches_id_shape(const char *id)
{
    regex_t re;
    assert_int_equal(regcomp(&re, "^rr_[a-z2-7]{26}$", REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&re, id, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void test_derive_known_vectors(void **state)
{
    (void)state;
    char id[RR_ID_BUF];
    /* python3: "rr_" + base32(sha256(b"default\x00key1")).lower()[:26] */
    rr_id_derive(id, "default", "key1", 4);
    assert_string_equal(id, "rr_gz7wwakotexc2bczlwkxj5qven");
    /* python3: "rr_" + base32(sha256(b"acme\x00order-42/retry")).lower()[:26] */
    rr_id_derive(id, "acme", "order-42/retry", strlen("order-42/retry"));
    assert_string_equal(id, "rr_hz6vudvcotflvu523aauop3u2j");
}

static void test_derive_deterministic_and_shaped(void **state)
{
    (void)state;
    char a[RR_ID_BUF], b[RR_ID_BUF];
    rr_id_derive(a, "tenant-1", "some key", 8);
    rr_id_derive(b, "tenant-1", "some key", 8);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), RR_ID_LEN);
    assert_true(matches_id_shape(a));
    assert_true(rr_id_valid(a));
}

static void test_derive_tenant_scoped(void **state)
{
    (void)state;
    char a[RR_ID_BUF], b[RR_ID_BUF], c[RR_ID_BUF];
    rr_id_derive(a, "alpha", "key1", 4);
    rr_id_derive(b, "beta", "key1", 4);
    assert_string_not_equal(a, b);
    /* The 0x00 separator: ("ab", "c") and ("a", "bc") must not collide. */
    rr_id_derive(a, "ab", "c", 1);
    rr_id_derive(c, "a", "bc", 2);
    assert_string_not_equal(a, c);
    /* Another key under the same tenant. */
    rr_id_derive(a, "alpha", "key1", 4);
    rr_id_derive(b, "alpha", "key2", 4);
    assert_string_not_equal(a, b);
}

static void test_derive_uses_keylen(void **state)
{
    (void)state;
    char a[RR_ID_BUF], b[RR_ID_BUF];
    /* Only keylen bytes count, not the rest of the buffer. */
    rr_id_derive(a, "default", "key1-and-more", 4);
    rr_id_derive(b, "default", "key1", 4);
    assert_string_equal(a, b);
    assert_string_equal(a, "rr_gz7wwakotexc2bczlwkxj5qven");
}

static void test_random_ids(void **state)
{
    (void)state;
    enum { N = 200 };
    static char ids[N][RR_ID_BUF];
    for (int i = 0; i < N; i++) {
        assert_int_equal(rr_id_random(ids[i]), RR_OK);
        assert_int_equal(strlen(ids[i]), RR_ID_LEN);
        assert_true(matches_id_shape(ids[i]));
        assert_true(rr_id_valid(ids[i]));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
    /* 130 random bits: every position takes several values over 200 draws (a stuck
     * character, e.g. padding leaking in, would show up here). */
    for (int pos = 3; pos < RR_ID_LEN; pos++) {
        bool seen[256] = {false};
        int distinct = 0;
        for (int i = 0; i < N; i++) {
            unsigned char c = (unsigned char)ids[i][pos];
            if (!seen[c]) {
                seen[c] = true;
                distinct++;
            }
        }
        assert_true(distinct >= 8);
    }
}

static void test_id_valid(void **state)
{
    (void)state;
    assert_true(rr_id_valid("rr_abcdefghijklmnopqrstuvwxyz"));
    assert_true(rr_id_valid("rr_22334455667722334455667722"));
    assert_false(rr_id_valid(""));
    assert_false(rr_id_valid("rr_"));
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxy"));   /* 25 */
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxyza")); /* 27 */
    assert_false(rr_id_valid("RR_abcdefghijklmnopqrstuvwxyz"));
    assert_false(rr_id_valid("xx_abcdefghijklmnopqrstuvwxyz"));
    assert_false(rr_id_valid("rr-abcdefghijklmnopqrstuvwxyz"));
    assert_false(rr_id_valid("rr_Abcdefghijklmnopqrstuvwxyz")); /* upper case */
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxy1")); /* 1 is not base32 */
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxy8"));
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxy0"));
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxy="));
    assert_false(rr_id_valid("rr_abcdefghijklm.opqrstuvwxyz"));
    assert_false(rr_id_valid("rr_abcdefghijklmnopqrstuvwxy\n"));
}

static void test_tenant_valid(void **state)
{
    (void)state;
    assert_true(rr_tenant_valid("default"));
    assert_true(rr_tenant_valid("a"));
    assert_true(rr_tenant_valid("acme_corp-2"));
    assert_true(rr_tenant_valid("0-_"));
    char t64[65], t65[66];
    memset(t64, 'a', 64);
    t64[64] = '\0';
    memset(t65, 'a', 65);
    t65[65] = '\0';
    assert_true(rr_tenant_valid(t64));
    assert_false(rr_tenant_valid(t65));
    assert_false(rr_tenant_valid(""));
    assert_false(rr_tenant_valid("acme.corp")); /* dots are subject/key separators */
    assert_false(rr_tenant_valid("."));
    assert_false(rr_tenant_valid("Acme"));
    assert_false(rr_tenant_valid("acme corp"));
    assert_false(rr_tenant_valid("acme*"));
    assert_false(rr_tenant_valid("acme>"));
    assert_false(rr_tenant_valid("acme/x"));
    assert_false(rr_tenant_valid("caf\xc3\xa9"));
}

static void test_idem_key_valid(void **state)
{
    (void)state;
    assert_true(rr_idem_key_valid("k", 1));
    assert_true(rr_idem_key_valid(" ~", 2)); /* 0x20 and 0x7e are the bounds */
    assert_true(rr_idem_key_valid("order 42: {retry} #1", strlen("order 42: {retry} #1")));
    char k255[256], k256[257];
    memset(k255, 'x', 255);
    k255[255] = '\0';
    memset(k256, 'x', 256);
    k256[256] = '\0';
    assert_true(rr_idem_key_valid(k255, 255));
    assert_false(rr_idem_key_valid(k256, 256));
    assert_false(rr_idem_key_valid("", 0));
    assert_false(rr_idem_key_valid("a\tb", 3));
    assert_false(rr_idem_key_valid("a\nb", 3));
    assert_false(rr_idem_key_valid("a\x7f", 2));
    assert_false(rr_idem_key_valid("caf\xc3\xa9", 5));
    assert_false(rr_idem_key_valid("a\0b", 3)); /* an embedded NUL counts against it */
}

static void test_record_key(void **state)
{
    (void)state;
    char key[RR_RECORD_KEY_BUF];
    rr_record_key(key, "acme", "rr_abcdefghijklmnopqrstuvwxyz");
    assert_string_equal(key, "acme.rr_abcdefghijklmnopqrstuvwxyz");
    /* The longest tenant and an id fit the buffer without truncation. */
    char t64[65];
    memset(t64, 't', 64);
    t64[64] = '\0';
    rr_record_key(key, t64, "rr_abcdefghijklmnopqrstuvwxyz");
    assert_int_equal(strlen(key), 64 + 1 + RR_ID_LEN);
    assert_memory_equal(key, t64, 64);
    assert_string_equal(key + 64, ".rr_abcdefghijklmnopqrstuvwxyz");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_known_vectors),
        cmocka_unit_test(test_derive_deterministic_and_shaped),
        cmocka_unit_test(test_derive_tenant_scoped),
        cmocka_unit_test(test_derive_uses_keylen),
        cmocka_unit_test(test_random_ids),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_tenant_valid),
        cmocka_unit_test(test_idem_key_valid),
        cmocka_unit_test(test_record_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
